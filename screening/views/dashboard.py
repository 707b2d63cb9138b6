"""Views of this stage; screening.urls includes its patterns under /r/<slug>/."""

urlpatterns: list = []
