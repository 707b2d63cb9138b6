"""Invitations: an owner invites by e-mail or username; the link's holder joins the review."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from ..models import Invitation, Membership, Review
from ..selectors.invitations import InvitationState, invitation_state, invitation_token
from .audit import audit_event_record

STATE_MESSAGES = {
    InvitationState.INVALID: "This invitation link is not valid: it may have been copied "
    "incompletely. Ask the review's owner to send a new one.",
    InvitationState.EXPIRED: "This invitation has expired. Ask the review's owner to invite "
    "you again.",
    InvitationState.REVOKED: "This invitation was withdrawn by the review's owner. Ask them "
    "if you should still join.",
    InvitationState.ACCEPTED: "This invitation has already been used. Log in to open the review.",
}


def invitation_days() -> int:
    return int(getattr(settings, "SLRWEB_INVITATION_DAYS", 14))


@dataclass(frozen=True)
class Invitee:
    """Whom the owner named: an e-mail address, or a username (with the account, if any)."""

    email: str
    username: str
    user: User | None

    @property
    def mail_to(self) -> str:
        """Where the invitation is mailed: the address typed, or the named account's own."""
        return self.email or str(getattr(self.user, "email", "") or "")


def _invitee(invitee: str) -> Invitee:
    """What the owner typed: an e-mail address or a username.

    A username no active account has is kept as it is, with no account: the owner's answer
    must not tell whether a username exists.
    """
    users = get_user_model().objects.filter(is_active=True)
    invitee = invitee.strip()
    if "@" in invitee:
        return Invitee(invitee, "", users.filter(email__iexact=invitee).order_by("pk").first())
    return Invitee("", invitee, users.filter(username=invitee).first())


def invitation_link(*, invitation: Invitation, site_url: str) -> str:
    path = reverse("screening:invitation_open", args=[invitation_token(invitation)])
    return site_url.rstrip("/") + path


def _send(*, invitation: Invitation, link: str, to: str) -> None:
    context = {"invitation": invitation, "link": link, "days": invitation_days()}
    subject = render_to_string("registration/invitation_subject.txt", context).strip()
    body = render_to_string("registration/invitation_email.txt", context)
    send_mail(subject, body, None, [to])


@transaction.atomic
def invitation_create(
    *, review: Review, by: User, invitee: str, role: str, site_url: str
) -> Invitation:
    """Invite someone; an earlier open invitation of the same person is replaced.

    By username, the invitation is stored whether or not such an account exists, and the
    owner's view of it is the same either way; an existing account sees it on its review list.
    The e-mail (to the address typed, or the named account's address) is sent once the
    invitation is committed.
    """
    named = _invitee(invitee)
    user = named.user
    if user is not None and Membership.objects.filter(review=review, user=user).exists():
        # Members are listed on the team section already: this tells the owner nothing new.
        raise ValidationError(
            {"invitee": f"{user.get_username()} is already in the team: change their role there."}
        )
    earlier = Invitation.objects.filter(
        review=review, accepted_at__isnull=True, revoked_at__isnull=True
    )
    if named.username:
        earlier = earlier.filter(username=named.username)
    elif user is not None:
        earlier = earlier.filter(user=user)
    else:
        earlier = earlier.filter(email=named.email)
    earlier.update(revoked_at=timezone.now())
    invitation = Invitation.objects.create(
        review=review,
        email=named.email,
        username=named.username,
        user=user,
        role=role,
        invited_by=by,
        expires_at=timezone.now() + timedelta(days=invitation_days()),
    )
    audit_event_record(
        review=review,
        actor=by,
        action="invitation.create",
        obj=invitation,
        after={
            "email": named.email,
            "user": named.username or (user.get_username() if user else None),
            "role": role,
        },
    )
    if named.mail_to:
        link = invitation_link(invitation=invitation, site_url=site_url)
        to = named.mail_to
        transaction.on_commit(lambda: _send(invitation=invitation, link=link, to=to))
    return invitation


@transaction.atomic
def invitation_revoke(*, review: Review, invitation: Invitation, by: User) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk, review=review)
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation has already been accepted: remove the member.")
    if invitation.revoked_at is not None:
        return
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_event_record(review=review, actor=by, action="invitation.revoke", obj=invitation)


def invitation_names_nobody(invitation: Invitation) -> bool:
    """An invitation by a username no account had: its link lets nobody in (nobody may take
    it by signing up under that name, nor accept it with another account)."""
    return invitation.user_id is None and not invitation.email


def _check_open(invitation: Invitation) -> None:
    if invitation_names_nobody(invitation):
        raise ValidationError(STATE_MESSAGES[InvitationState.INVALID])
    state = invitation_state(invitation)
    if state != InvitationState.OPEN:
        raise ValidationError(STATE_MESSAGES[state])


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the review with the invited role (a member already keeps the role they have)."""
    invitation = (
        Invitation.objects.select_for_update().select_related("review").get(pk=invitation.pk)
    )
    _check_open(invitation)
    if invitation.user_id is not None and invitation.user_id != user.pk:
        raise ValidationError(
            "This invitation is for another account. Log out and log in as the invited person."
        )
    membership, created = Membership.objects.get_or_create(
        review=invitation.review,
        user=user,
        defaults={
            "role": invitation.role,
            "can_import": invitation.role != Membership.Role.VIEWER,
        },
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_event_record(
        review=invitation.review,
        actor=user,
        action="invitation.accept",
        obj=invitation,
        after={"role": membership.role, "joined": created},
    )
    return membership


@transaction.atomic
def invitation_sign_up(
    *, invitation: Invitation, username: str, password: str
) -> tuple[User, Membership]:
    """Create the invitee's account (with the invitation's e-mail) and accept the invitation."""
    Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitation.refresh_from_db()
    _check_open(invitation)
    if invitation.user_id is not None:
        raise ValidationError("This invitation is for an existing account: log in to accept it.")
    user = get_user_model().objects.create_user(
        username=username, email=invitation.email, password=password
    )
    return user, invitation_accept(invitation=invitation, user=user)
