"""Personal API tokens: made and revoked by their user; only a digest is stored."""

import hashlib
import secrets

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ApiToken
from .audit import audit_event_record

TOKEN_PREFIX = "slrw_"


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenNameTaken(ValueError):
    pass


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and the raw token, which is never stored."""
    name = name.strip()
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        try:
            token = ApiToken.objects.create(
                user=user, name=name, prefix=raw[: len(TOKEN_PREFIX) + 6], digest=token_digest(raw)
            )
        except IntegrityError as error:
            raise TokenNameTaken(
                f"You already have a live token named {name!r}: pick another name."
            ) from error
        audit_event_record(
            review=None,
            actor=user,
            action="api_token.create",
            obj=token,
            after={"name": name, "prefix": token.prefix},
        )
    return token, raw


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (revoking twice changes nothing)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_event_record(
                review=None,
                actor=user,
                action="api_token.revoke",
                obj=token,
                before={"name": token.name, "prefix": token.prefix, "revoked": False},
                after={"revoked": True},
            )
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token matching `raw` (its use time noted), or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
