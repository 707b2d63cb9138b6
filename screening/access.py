"""The one access helper for review-scoped views.

Membership and role come from the review slug in the URL, never from the request body.
An outsider gets 404 (the review's existence is not revealed); a member whose role is too low
for the action gets 403.
"""

from dataclasses import dataclass
from enum import IntEnum

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, Review


class Need(IntEnum):
    READ = 1  # any member, viewers included
    WRITE = 2  # reviewers and owners (screen, import, assess)
    OWN = 3  # owners only (protocol, team, adjudication)


ROLE_LEVEL: dict[str, Need] = {
    Membership.Role.VIEWER: Need.READ,
    Membership.Role.REVIEWER: Need.WRITE,
    Membership.Role.OWNER: Need.OWN,
}


@dataclass(frozen=True)
class ReviewAccess:
    review: Review
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def is_owner(self) -> bool:
        return self.membership.role == Membership.Role.OWNER

    @property
    def can_write(self) -> bool:
        return ROLE_LEVEL[self.membership.role] >= Need.WRITE

    @property
    def can_import(self) -> bool:
        return self.is_owner or (self.can_write and self.membership.can_import)


def review_access(request, slug: str, need: Need = Need.READ) -> ReviewAccess:
    """Return the review and the requesting user's membership, or refuse."""
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such review.")
    membership = (
        Membership.objects.select_related("review").filter(review__slug=slug, user=user).first()
    )
    if membership is None:
        raise Http404("No such review.")
    if ROLE_LEVEL[membership.role] < need:
        raise PermissionDenied("Your role in this review does not allow this action.")
    return ReviewAccess(review=membership.review, membership=membership)
