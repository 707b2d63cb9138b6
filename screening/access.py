"""The one access helper for review-scoped views.

Membership and role come from the review slug in the URL, never from the request body.
An outsider gets 404 (the review's existence is not revealed); a member whose role is too low
for the action gets 403.
"""

from dataclasses import dataclass
from enum import IntEnum

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404

from .models import Membership, Review
from .selectors.rows import model_columns, model_rows


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
    membership = _membership_read(slug=slug, user_id=user.pk)
    if membership is None:
        raise Http404("No such review.")
    if ROLE_LEVEL[membership.role] < need:
        raise PermissionDenied("Your role in this review does not allow this action.")
    return ReviewAccess(review=membership.review, membership=membership)


def _membership_read(*, slug: str, user_id: int) -> Membership | None:
    """The user's membership of the review `slug`, its review attached, in one statement.

    Every review page asks this first; through the ORM's compiler (a join) it cost the web
    process ~0.9 ms of CPU per request, read by `model_rows` ~0.1 ms (docs/benchmarks.md,
    "HTTP latency"). The membership's other fields load if asked.
    """
    rows = model_rows(
        Review,
        f"SELECT {model_columns(Review, 'r')}, m.id, m.role, m.can_import"
        f" FROM {Membership._meta.db_table} m JOIN {Review._meta.db_table} r ON r.id = m.review_id"
        " WHERE r.slug = %s AND m.user_id = %s",
        [slug, user_id],
    )
    if not rows:
        return None
    review, (membership_id, role, can_import) = rows[0]
    membership = Membership.from_db(
        connection.alias,
        ["id", "review_id", "user_id", "role", "can_import"],
        [membership_id, review.pk, user_id, role, bool(can_import)],  # SQLite: 0/1
    )
    membership.review = review
    return membership
