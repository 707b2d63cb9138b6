"""Reads for the studies page and the study page: search, filters, notes and tags a member may see.

Blind mode rules: a filter on verdicts only ever looks at the caller's own decisions; another
reviewer's note stays hidden until the study is resolved at the stage it was written in (an
adjudicator sees it once all that stage's decisions are in, as decisions on the conflicts page).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils.functional import cached_property

from ..domain.normalise import normalise_doi
from ..models import (
    Decision,
    Record,
    Resolution,
    Review,
    Stage,
    Study,
    StudyMerge,
    StudyNote,
    StudyTag,
    Tag,
)
from .screening import can_adjudicate, decisions_visible

PAGE_SIZE = 50
COUNT_CAP = 10_000
SEARCH_CONFIG = "english"
# Sort keys offered on the page -> ordering; "relevance" only means something with a search.
SORTS = {
    "relevance": None,
    "id": ("id",),
    "title": ("title", "id"),
    "year_desc": (F("year").desc(nulls_last=True), "id"),
    "year_asc": (F("year").asc(nulls_last=True), "id"),
    # The study's predicted relevance in its current stage's queue (unranked there: last),
    # through the `ranked` relation `studies_listed` adds for this sort.
    "priority": (F("ranked__priority").desc(nulls_last=True), "id"),
}
MY_VERDICT_NONE = "none"


@dataclass(frozen=True)
class StudyFilters:
    search: str = ""
    stage: Stage | None = None
    status: str = ""
    source_id: int | None = None
    year: int | None = None
    tag: Tag | None = None
    my_verdict: str = ""  # a Verdict value, MY_VERDICT_NONE, or "" for any
    sort: str = "relevance"

    @property
    def by_relevance(self) -> bool:
        """Whether the matches are ranked by relevance (`studies_page` ranks them while the
        count stays under its cap)."""
        return bool(self.search) and self.sort == "relevance"


def studies_search(studies: QuerySet[Study], text: str) -> QuerySet[Study]:
    """Studies matching `text` in title, abstract, authors or DOI, annotated with `rank`.

    PostgreSQL: full-text search (stemmed, web-search syntax: quotes, OR, -word). Elsewhere
    (the embedded SQLite default) every word must appear somewhere, case-insensitively.
    """
    text = text.strip()
    # A DOI (with or without its resolver prefix) also finds the study by its stored DOI.
    by_doi = Q(doi=doi) if (doi := normalise_doi(text)) else Q(pk__in=[])
    if connection.vendor == "postgresql":
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        # The stored column of migrations 0013 and 0023 (title and DOI weight A, authors B,
        # abstract C), GIN-indexed; the model does not declare it (SQLite has no tsvector).
        table = connection.ops.quote_name(Study._meta.db_table)
        document = RawSQL(f"{table}.search_document", [], output_field=SearchVectorField())
        return studies.annotate(search=document, rank=SearchRank(F("search"), query)).filter(
            Q(search=query) | by_doi
        )
    matches = Q()
    for word in text.split():
        matches &= (
            Q(title__icontains=word)
            | Q(abstract__icontains=word)
            | Q(authors__icontains=word)
            | Q(doi__icontains=word)
        )
    return studies.filter(matches | by_doi).annotate(rank=Value(0.0))


@dataclass(frozen=True)
class NotSearchable:
    """How many of a review's studies full-text search cannot find yet, counted up to a cap
    (`more`: there are more than `count`)."""

    count: int
    more: bool

    def __bool__(self) -> bool:
        return self.count > 0


def studies_not_searchable(*, review: Review) -> NotSearchable:
    """The review's studies whose search documents a large deduplication run left to the
    worker (`screening.services.study_search`); found by DOI only meanwhile. Counted up to
    COUNT_CAP: right after a million-record run, counting them all took 250 ms."""
    if connection.vendor != "postgresql":
        return NotSearchable(0, more=False)
    table = connection.ops.quote_name(Study._meta.db_table)
    with connection.cursor() as cursor:
        # The partial index of migration 0023 holds exactly these studies.
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} "
            "WHERE review_id = %s AND search_document IS NULL LIMIT %s) AS pending",
            [review.pk, COUNT_CAP + 1],
        )
        count = int(cursor.fetchone()[0])
    return NotSearchable(min(count, COUNT_CAP), more=count > COUNT_CAP)


def studies_listed(*, review: Review, user: User, filters: StudyFilters) -> QuerySet[Study]:
    """The review's studies matching the filters, in the chosen order."""
    studies = Study.objects.filter(review=review).select_related("current_stage")
    if filters.search:
        studies = studies_search(studies, filters.search)
    if filters.stage is not None:
        studies = studies.filter(current_stage=filters.stage)
    if filters.status:
        studies = studies.filter(outcome=filters.status)
    if filters.year is not None:
        studies = studies.filter(year=filters.year)
    if filters.source_id is not None:
        studies = studies.filter(
            Exists(Record.objects.filter(study=OuterRef("pk"), batch__source_id=filters.source_id))
        )
    if filters.tag is not None:
        studies = studies.filter(
            Exists(StudyTag.objects.filter(study=OuterRef("pk"), tag=filters.tag))
        )
    if filters.my_verdict:
        mine = Decision.objects.filter(study=OuterRef("pk"), reviewer=user)
        if filters.my_verdict == MY_VERDICT_NONE:
            studies = studies.filter(~Exists(mine))
        else:
            studies = studies.filter(Exists(mine.filter(verdict=filters.my_verdict)))
    ordering = SORTS.get(filters.sort)
    if filters.sort == "priority":
        # A join, not a subquery per study: 0.34 s instead of 1.7 s over 200,000 studies.
        studies = studies.alias(
            ranked=FilteredRelation(
                "queue_priority", condition=Q(queue_priority__stage=F("current_stage"))
            )
        )
    if ordering is None:
        ordering = (F("rank").desc(), "id") if filters.search else ("id",)
    return studies.order_by(*ordering)


def tags_visible(*, review: Review, user: User) -> QuerySet[Tag]:
    """The review's tags and the user's own private tags (never another reviewer's)."""
    return Tag.objects.filter(Q(owner__isnull=True) | Q(owner=user), review=review).order_by(
        F("owner").asc(nulls_first=True), "name", "id"
    )


def notes_visible(*, review: Review, user: User) -> QuerySet[StudyNote]:
    """Notes of the review's studies that the user may read (see the module's blind rules)."""
    notes = StudyNote.objects.filter(study__review=review)
    if not review.blind_mode:
        return notes
    resolved = Resolution.objects.filter(study=OuterRef("study"), stage=OuterRef("stage"))
    visible = Q(author=user) | Q(stage__isnull=True) | Q(Exists(resolved))
    if can_adjudicate(review=review, user=user):
        stage_decisions = (
            Decision.objects.filter(study=OuterRef("study"), stage=OuterRef("stage"))
            .order_by()
            .values("study")
            .annotate(n=Count("id"))
            .values("n")
        )
        notes = notes.annotate(stage_decisions=Coalesce(Subquery(stage_decisions), 0))
        visible |= Q(stage_decisions__gte=F("stage__reviewers_required"))
    return notes.filter(visible)


def study_page_rows(*, review: Review, user: User, page: Page[Study]) -> list[dict[str, Any]]:
    """Each listed study with the tags and the number of notes the user may see."""
    ids = [study.pk for study in page.object_list]
    tags_by_study: dict[int, list[Tag]] = {}
    visible_tags = tags_visible(review=review, user=user)
    for applied in (
        StudyTag.objects.filter(study_id__in=ids, tag__in=visible_tags)
        .select_related("tag")
        .order_by("tag__name")
    ):
        tags_by_study.setdefault(applied.study_id, []).append(applied.tag)
    note_counts = dict(
        notes_visible(review=review, user=user)
        .filter(study_id__in=ids)
        .values("study_id")
        .annotate(n=Count("id", distinct=True))
        .values_list("study_id", "n")
    )
    return [
        {
            "study": study,
            "tags": tags_by_study.get(study.pk, []),
            "notes": note_counts.get(study.pk, 0),
        }
        for study in page.object_list
    ]


if TYPE_CHECKING:
    _StudyPaginator = Paginator[Study]
else:  # Django's Paginator is not subscriptable at run time
    _StudyPaginator = Paginator


class CappedPaginator(_StudyPaginator):
    """Counts the matches up to COUNT_CAP: an exact count of a common word's matches among a
    million studies scans them all (~0.35 s per 200,000 studies on the 2-core machine); the
    scan stops at the cap instead. `count_capped` tells the page to say "more than".
    `unranked` says the matches are listed in import order instead of by relevance."""

    unranked = False

    @cached_property
    def _counted(self) -> int:
        studies = self.object_list
        assert isinstance(studies, QuerySet)
        return studies.order_by()[: COUNT_CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, COUNT_CAP)

    @property
    def count_capped(self) -> bool:
        return self._counted > COUNT_CAP


def studies_page(
    studies: QuerySet[Study], number: str | int | None, *, by_relevance: bool = False
) -> Page[Study]:
    """One page of `studies`. Ranking by relevance scores every match, ~2.5 s for a common
    word among a million studies; beyond COUNT_CAP matches the page lists them in import order
    instead (the capped count has already found that many), and says so."""
    paginator = CappedPaginator(studies, PAGE_SIZE)
    if by_relevance and paginator.count_capped:
        paginator.object_list = studies.order_by("id")
        paginator.unranked = True
    return paginator.get_page(number)


def study_detail(*, review: Review, study: Study, user: User) -> dict[str, Any]:
    """Everything the study page shows, each part already filtered for the user."""
    records = list(
        Record.objects.filter(study=study)
        .select_related("batch__source", "batch__search_run__search_string", "batch__uploaded_by")
        .order_by("batch__source__position", "batch_id", "position")
    )
    visible_tags = tags_visible(review=review, user=user)
    applied = list(
        StudyTag.objects.filter(study=study, tag__in=visible_tags).select_related("tag", "added_by")
    )
    applied_ids = {item.tag_id for item in applied}
    notes = (
        notes_visible(review=review, user=user)
        .filter(study=study)
        .select_related("author", "stage")
        .order_by("created_at", "id")
    )
    return {
        "records": records,
        "sources": sorted({record.batch.source.name for record in records}),
        "merges": StudyMerge.objects.filter(kept=study).select_related("merged_by", "undone_by"),
        "decisions": decisions_visible(review=review, study=study, user=user),
        "resolutions": study.resolutions.select_related("stage", "decided_by").prefetch_related(
            "reasons"
        ),
        "applied_tags": applied,
        "available_tags": [tag for tag in visible_tags if tag.pk not in applied_ids],
        "notes": list(notes),
        "full_text": getattr(study, "full_text", None),
    }
