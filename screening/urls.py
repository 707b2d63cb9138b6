"""URLs of the screening app: each stage's view module owns its patterns under /r/<slug>/."""

from django.urls import include, path

from .views import invitations, reviews

app_name = "screening"

urlpatterns = [
    path("", reviews.review_list, name="review_list"),
    path("reviews/new/", reviews.review_create, name="review_create"),
    path("r/<slug:slug>/", reviews.review_home, name="review_home"),
    path("r/<slug:slug>/protocol/", include("screening.views.protocol")),
    path("r/<slug:slug>/imports/", include("screening.views.imports")),
    path("r/<slug:slug>/duplicates/", include("screening.views.dedup")),
    path("r/<slug:slug>/screen/", include("screening.views.screening")),
    path("r/<slug:slug>/conflicts/", include("screening.views.conflicts")),
    path("r/<slug:slug>/fulltext/", include("screening.views.fulltext")),
    path("r/<slug:slug>/dashboard/", include("screening.views.dashboard")),
    path("r/<slug:slug>/quality/", include("screening.views.quality")),
    path("r/<slug:slug>/extraction/", include("screening.views.extraction")),
    path("r/<slug:slug>/reports/", include("screening.views.reports")),
    path("r/<slug:slug>/ranking/", include("screening.views.ranking")),
    path("r/<slug:slug>/prisma-s/", include("screening.views.prisma_s")),
    path("r/<slug:slug>/rounds/", include("screening.views.rounds")),
    path("r/<slug:slug>/studies/", include("screening.views.studies")),
    path("r/<slug:slug>/invitations/", include("screening.views.invitations")),
    path("invitations/<str:token>/", invitations.invitation_open, name="invitation_open"),
]
