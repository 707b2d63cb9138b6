"""/api/: the token page (session login) and the token-authenticated endpoints."""

from django.urls import path

from ..views import tokens
from .endpoints import api

urlpatterns = [
    path("tokens/", tokens.token_list, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="api_token_revoke"),
    path("", api.urls),
]
