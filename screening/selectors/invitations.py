"""Invitation reads: the row a link names and its state, the open invitations of a review or
of a user."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone

from ..models import Invitation, Review

TOKEN_SALT = "slrweb.invitation"


class InvitationState:
    OPEN = "open"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class InvitationLookup:
    invitation: Invitation | None
    state: str


def invitation_token(invitation: Invitation) -> str:
    """The signed token of an invitation's link (its expiry is the row's `expires_at`)."""
    return signing.dumps(invitation.pk, salt=TOKEN_SALT)


def invitation_state(invitation: Invitation) -> str:
    if invitation.revoked_at is not None:
        return InvitationState.REVOKED
    if invitation.accepted_at is not None:
        return InvitationState.ACCEPTED
    if invitation.expires_at <= timezone.now():
        return InvitationState.EXPIRED
    return InvitationState.OPEN


def invitation_from_token(token: str) -> InvitationLookup:
    """The invitation a link names, or INVALID for a forged, mangled or deleted one."""
    try:
        pk = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return InvitationLookup(None, InvitationState.INVALID)
    invitation = (
        Invitation.objects.select_related("review", "user", "invited_by")
        .filter(pk=pk if isinstance(pk, int) else -1)
        .first()
    )
    if invitation is None:
        return InvitationLookup(None, InvitationState.INVALID)
    return InvitationLookup(invitation, invitation_state(invitation))


def invitations_open(*, review: Review) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        review=review, accepted_at__isnull=True, revoked_at__isnull=True
    ).select_related("user", "invited_by")


def invitations_for_user(*, user: User) -> QuerySet[Invitation]:
    """Open, unexpired invitations naming this account (shown on the review list)."""
    return Invitation.objects.filter(
        user=user,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("review", "invited_by")
