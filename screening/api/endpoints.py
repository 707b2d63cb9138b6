"""Read-only endpoints for scripts and dashboards around a review.

Every request carries a personal token (`Authorization: Bearer slrw_...`); the token's user then
goes through the same access helper as the pages, so a review the user is not (or no longer) a
member of answers 404, and blind mode hides the same things: only the caller's own decisions
are served, and resolutions without the decisions behind them.
"""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, NinjaAPI, Query, Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate
from ninja.security import HttpBearer

from ..access import Need, ReviewAccess, review_access
from ..models import Study
from ..selectors import reports as report_selectors
from ..selectors.prisma_s import prisma_s_report
from ..selectors.protocol import reviews_for_user
from ..selectors.screening import outcomes_visible
from ..selectors.studies import decisions_own, resolutions_settled, studies_filtered
from ..services.tokens import api_token_authenticate

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        found = api_token_authenticate(raw=token)
        if found is None:
            return None
        # The access helper reads the user from the request, as it does for the pages.
        request.user = found.user
        return found


api = NinjaAPI(
    title="slrweb API",
    version="1",
    description=__doc__,
    auth=TokenAuth(),
    urls_namespace="api",
)


def _access(request, slug: str) -> ReviewAccess:
    return review_access(request, slug, Need.READ)


class ReviewOut(Schema):
    slug: str
    title: str
    role: str


class StageOut(Schema):
    key: str
    name: str
    kind: str
    reviewers_required: int


class CriterionOut(Schema):
    kind: str
    code: str
    text: str


class ReviewDetailOut(ReviewOut):
    objectives: str
    screening_mode: str
    blind_mode: bool
    sources: list[str]
    search_strings: list[str]
    stages: list[StageOut]
    criteria: list[CriterionOut]


class StudyOut(Schema):
    id: int
    title: str
    abstract: str
    authors: list
    year: int | None
    venue: str
    doi: str
    url: str
    publication_type: str
    stage: str | None = Field(None, alias="current_stage.key")
    status: str = Field(..., alias="outcome")


class StudyFilters(Schema):
    stage: str | None = Field(None, description="Key of the stage the study waits in.")
    status: Study.Outcome | None = Field(None, description="screening, included, excluded...")
    year: int | None = None
    search: str | None = Field(None, max_length=200, description="Words of title or abstract.")


class DecisionOut(Schema):
    study: int = Field(..., alias="study_id")
    stage: str = Field(..., alias="stage.key")
    verdict: str
    reasons: list[str]
    note: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_reasons(obj) -> list[str]:
        return [reason.code for reason in obj.reasons.all()]


class ResolutionOut(Schema):
    study: int = Field(..., alias="study_id")
    stage: str = Field(..., alias="stage.key")
    verdict: str
    method: str
    reasons: list[str]
    decided_by: str | None
    note: str
    created_at: datetime

    @staticmethod
    def resolve_reasons(obj) -> list[str]:
        return [reason.code for reason in obj.reasons.all()]

    @staticmethod
    def resolve_decided_by(obj) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by else None


class PrismaSItemOut(Schema):
    number: int
    item: str
    text: str
    source: str


class PrismaSOut(Schema):
    items: list[PrismaSItemOut]


class ErrorOut(Schema):
    detail: str


router = Router(tags=["reviews"])


@router.get("", response=list[ReviewOut], summary="The reviews you are a member of")
def review_list(request):
    return [
        {"slug": m.review.slug, "title": m.review.title, "role": m.role}
        for m in reviews_for_user(user=request.user)
    ]


@router.get("/{slug}", response=ReviewDetailOut, summary="A review and its protocol")
def review_detail(request, slug: str):
    access = _access(request, slug)
    review = access.review
    return {
        "slug": review.slug,
        "title": review.title,
        "role": access.role,
        "objectives": review.objectives,
        "screening_mode": review.screening_mode,
        "blind_mode": review.blind_mode,
        "sources": [source.name for source in review.sources.all()],
        "search_strings": [string.text for string in review.search_strings.all()],
        "stages": list(review.stages.all()),
        "criteria": list(review.criteria.all()),
    }


@router.get("/{slug}/studies", response=list[StudyOut], summary="The review's studies, paged")
@paginate(PageNumberPagination, page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def study_list(request, slug: str, filters: Query[StudyFilters]):
    access = _access(request, slug)
    return studies_filtered(review=access.review, **filters.dict())


@router.get("/{slug}/decisions", response=list[DecisionOut], summary="Your own decisions, paged")
@paginate(PageNumberPagination, page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def decision_list(request, slug: str):
    access = _access(request, slug)
    return decisions_own(review=access.review, user=request.user)


@router.get("/{slug}/resolutions", response=list[ResolutionOut], summary="Stage outcomes, paged")
@paginate(PageNumberPagination, page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def resolution_list(request, slug: str):
    access = _access(request, slug)
    return resolutions_settled(review=access.review)


@router.get(
    "/{slug}/funnel",
    response={200: dict, 403: ErrorOut, 409: ErrorOut},
    summary="The PRISMA 2020 funnel (latest computed snapshot)",
    description="In blind mode only the review's owners and adjudicators get it (403 otherwise): "
    "its counts move when another reviewer agrees or disagrees.",
)
def funnel(request, slug: str):
    review = _access(request, slug).review
    if not outcomes_visible(review=review, user=request.user):
        return Status(403, {"detail": report_selectors.BLIND_OUTCOMES_NOTE})
    snapshot = report_selectors.funnel_latest(review=review)
    if snapshot is None:
        return Status(
            409,
            {
                "detail": "No funnel has been computed for this review yet: press Recompute on "
                "the reports page and ask again when it is done."
            },
        )
    return report_selectors.snapshot_funnel(review=review, snapshot=snapshot)


@router.get("/{slug}/table1", response=dict, summary="Table 1: searches, hits and imports")
def table1(request, slug: str):
    return report_selectors.table1(review=_access(request, slug).review)


@router.get("/{slug}/prisma-s", response=PrismaSOut, summary="The PRISMA-S search report")
def prisma_s(request, slug: str):
    items = prisma_s_report(review=_access(request, slug).review)
    return {"items": [item.as_dict() for item in items]}


api.add_router("/reviews", router)
