from django.contrib.auth.models import User
from django.db.models import QuerySet

from ..models import ApiToken


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at", "-id")
