"""Invitations: an owner asks someone (by e-mail or username) to join a review with a role."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .reviews import Membership


class Invitation(models.Model):
    """One invitation; its link is a signed token naming this row (services/invitations.py).

    The link is good once: accepting it stamps `accepted_at`; an owner may revoke it before.
    `user` is set when the invitation names an existing account (by username, or an e-mail
    address an account already has); otherwise the invitee creates an account from the link.
    An invitation by a username no account has keeps only `username`: it is shown to the owner
    like any other and its link lets nobody in.
    """

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(blank=True)
    # The username the owner typed, kept whether or not such an account exists, so that the
    # owner's view of the invitation never tells the two apart.
    username = models.CharField(max_length=150, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitations",
    )
    role = models.CharField(
        max_length=20, choices=Membership.Role.choices, default=Membership.Role.REVIEWER
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(email="") | Q(user__isnull=False) | ~Q(username=""),
                name="invitation_has_invitee",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.user or self.email} to {self.review} as {self.role}"
