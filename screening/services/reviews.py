from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from ..models import Criterion, Membership, Review, Stage
from .audit import audit_event_record

# The seed's routing (DESIGN.md): title include -> full text, uncertain -> abstract;
# abstract include or uncertain -> full text; full text include -> included.
STAGED_DEFAULT: list[dict[str, Any]] = [
    dict(
        key="title",
        name="Title screening",
        kind=Stage.Kind.TITLE,
        is_entry=True,
        route_include="full_text",
        route_uncertain="abstract",
        route_exclude=Stage.EXCLUDED,
    ),
    dict(
        key="abstract",
        name="Abstract screening",
        kind=Stage.Kind.ABSTRACT,
        route_include="full_text",
        route_uncertain="full_text",
        route_exclude=Stage.EXCLUDED,
    ),
    dict(
        key="full_text",
        name="Full-text reading",
        kind=Stage.Kind.FULL_TEXT,
        reasons_required=True,
        route_include=Stage.INCLUDED,
        route_uncertain=Stage.EXCLUDED,
        route_exclude=Stage.EXCLUDED,
    ),
]
COMBINED_DEFAULT: list[dict[str, Any]] = [
    dict(
        key="title_abstract",
        name="Title and abstract screening",
        kind=Stage.Kind.TITLE_ABSTRACT,
        is_entry=True,
        route_include="full_text",
        route_uncertain="full_text",
        route_exclude=Stage.EXCLUDED,
    ),
    STAGED_DEFAULT[2],
]
# Reasons offered beside the protocol's exclusion criteria at full text (seed: 3 and 1).
OTHER_REASONS = [
    ("INVALID-TYPE", "Invalid publication type"),
    ("DUPLICATE", "Duplicate of another study"),
]


def stages_default(*, mode: str) -> list[dict[str, Any]]:
    template = COMBINED_DEFAULT if mode == Review.ScreeningMode.COMBINED else STAGED_DEFAULT
    return [dict(spec, position=index) for index, spec in enumerate(template)]


@transaction.atomic
def review_create(
    *,
    slug: str,
    title: str,
    owner: User | None = None,
    objectives: str = "",
    screening_mode: str = Review.ScreeningMode.STAGED,
) -> Review:
    """Create a review with the default stages, the extra exclusion reasons and its owner."""
    review = Review.objects.create(
        slug=slug,
        title=title,
        objectives=objectives,
        screening_mode=screening_mode,
        created_by=owner,
    )
    for spec in stages_default(mode=screening_mode):
        Stage.objects.create(review=review, **spec)
    for position, (code, text) in enumerate(OTHER_REASONS):
        Criterion.objects.create(
            review=review, kind=Criterion.Kind.OTHER, code=code, text=text, position=position
        )
    if owner is not None:
        Membership.objects.create(review=review, user=owner, role=Membership.Role.OWNER)
    audit_event_record(
        review=review,
        actor=owner,
        action="review.create",
        obj=review,
        after={"slug": slug, "title": title, "screening_mode": screening_mode},
    )
    return review


def user_get_or_create(
    *, username: str, password: str | None = None, **extra: Any
) -> tuple[User, bool]:
    """Fetch a user, creating it (with the password, if given) when missing."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username, defaults=extra)
    if created and password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created
