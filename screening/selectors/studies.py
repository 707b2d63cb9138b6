"""Reads of a review's studies and of the decisions a member may see, for the API."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from ..models import Decision, Resolution, Review, Study


def studies_filtered(
    *,
    review: Review,
    stage: str | None = None,
    status: str | None = None,
    year: int | None = None,
    search: str | None = None,
) -> QuerySet[Study]:
    """Studies of the review, filtered by current stage key, outcome, year and a text search."""
    studies = Study.objects.filter(review=review).select_related("current_stage")
    if stage:
        studies = studies.filter(current_stage__key=stage)
    if status:
        studies = studies.filter(outcome=status)
    if year is not None:
        studies = studies.filter(year=year)
    if search:
        studies = studies.filter(
            Q(title__icontains=search) | Q(abstract__icontains=search) | Q(doi__iexact=search)
        )
    return studies.order_by("id")


def decisions_own(*, review: Review, user: User) -> QuerySet[Decision]:
    """The user's own decisions: never anybody else's, whatever the blind mode."""
    return (
        Decision.objects.filter(review=review, reviewer=user)
        .select_related("stage")
        .prefetch_related("reasons")
        .order_by("id")
    )


def resolutions_settled(*, review: Review) -> QuerySet[Resolution]:
    """Stage outcomes: settled results every member may see, without the decisions behind
    them (those stay blind; only an adjudicator's name is told, as the conflicts page does)."""
    return (
        Resolution.objects.filter(review=review)
        .select_related("stage", "decided_by")
        .prefetch_related("reasons")
        .order_by("id")
    )
