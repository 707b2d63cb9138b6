"""URLs of the screening app: one module per workflow stage, each owning its patterns."""

from django.urls import path

from .views import protocol, reviews

app_name = "screening"

urlpatterns = [
    path("", reviews.review_list, name="review_list"),
    path("reviews/new/", reviews.review_create, name="review_create"),
    path("r/<slug:slug>/", reviews.review_home, name="review_home"),
    path("r/<slug:slug>/protocol/", protocol.protocol_detail, name="protocol_detail"),
]
