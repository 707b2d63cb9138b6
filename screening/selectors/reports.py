"""Reads for the funnel and the paper's tables: aggregate queries, never loops over rows.

Every count is derived from stored records, studies, resolutions and full-text states. The
drill-down querysets here select exactly the rows each funnel number counts, so a box's list
always has as many entries as the box says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, overload

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from ..domain.charts import studies_per_year_svg
from ..domain.citation_export import Citation, rows_to_csv, to_bibtex, to_csv, to_ris
from ..domain.funnel import (
    EXCLUDED,
    EXCLUSION_CRITERIA_LABEL,
    FULL_TEXT_KIND,
    INCLUDED,
    NO_REASON_LABEL,
    QUALITY_LABEL,
    FunnelCounts,
    StageCounts,
    awaiting_figure,
    funnel_from_counts,
    funnel_ordered,
    funnel_updated,
    prisma_csv_rows,
    reason_label,
)
from ..domain.prisma_svg import BoxUrl, prisma_pdf, prisma_svg
from ..models import (
    Criterion,
    FullText,
    FunnelSchedule,
    FunnelSnapshot,
    ImportBatch,
    QualityConsensus,
    Record,
    Resolution,
    Review,
    SearchRun,
    Source,
    Stage,
    Study,
)
from .screening import stages_waiting

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class FunnelReason(TypedDict):
    """What `_with_reason` adds to each resolution."""

    other_reason: int | None
    has_criterion: bool


class Libraries(TypedDict):
    """What `overlap_studies` adds to each study."""

    libraries: int


_M = TypeVar("_M", bound=Model)

VERDICTS = ("include", "uncertain", "exclude")
# What a member is told where `outcomes_visible` hides the figures built from decisions
# (reports page, its drill-downs and files, the API's funnel).
BLIND_OUTCOMES_NOTE = (
    "Blind mode is on: the funnel and tables built from decisions are shown to the review's "
    "owners and adjudicators until the owner turns blind mode off."
)
RECORD_BOXES = {"database_results", "duplicates", "excluded_other"}
STUDY_BOXES = {
    "excluded_automatic",
    "records_screened",
    "records_excluded",
    "dbr_sought_reports",
    "dbr_notretrieved_reports",
    "dbr_assessed",
    "dbr_excluded",
    "new_studies",
    "previous_studies",
    "total_studies",
    "awaiting",
}
BOX_TITLES = {
    "database_results": "Records identified from databases",
    "duplicates": "Duplicate records removed",
    "excluded_automatic": "Records marked as ineligible by automation tools",
    "excluded_other": "Records removed for other reasons",
    "records_screened": "Records screened",
    "records_excluded": "Records excluded",
    "dbr_sought_reports": "Reports sought for retrieval",
    "dbr_notretrieved_reports": "Reports not retrieved",
    "dbr_assessed": "Reports assessed for eligibility",
    "dbr_excluded": "Reports excluded",
    "new_studies": "Studies included in review",
    "previous_studies": "Studies included in previous version of review",
    "total_studies": "Total studies included in review",
    "awaiting": "Studies awaiting a decision",
}
FIRST_ROUND = 1


# Routing ---------------------------------------------------------------------------------------


def _routes(stages: list[Stage], *, screening: bool, target_keys: set[str]) -> Q | None:
    """Resolutions whose verdict routes to one of `target_keys`, in screening or full-text stages.

    None when no (stage, verdict) pair routes there.
    """
    condition = None
    for stage in stages:
        if (stage.kind != FULL_TEXT_KIND) != screening:
            continue
        verdicts = [
            verdict for verdict in VERDICTS if getattr(stage, f"route_{verdict}") in target_keys
        ]
        if verdicts:
            clause = Q(stage_id=stage.id, verdict__in=verdicts)
            condition = clause if condition is None else condition | clause
    return condition


def _resolutions_routed(
    review: Review, stages: list[Stage], *, screening: bool, targets: set[str]
) -> QuerySet[Resolution]:
    condition = _routes(stages, screening=screening, target_keys=targets)
    if condition is None:
        return Resolution.objects.none()
    return Resolution.objects.filter(review=review).filter(condition)


def _not_retrievable(review: Review) -> QuerySet[FullText]:
    return FullText.objects.filter(study__review=review, status=FullText.Status.NOT_RETRIEVABLE)


def _fulltext_exclusions(review: Review, stages: list[Stage]) -> QuerySet[Resolution]:
    """Full-text resolutions that exclude, not counting studies whose text was not retrieved."""
    return _resolutions_routed(review, stages, screening=False, targets={EXCLUDED}).exclude(
        study_id__in=_not_retrievable(review).values("study_id")
    )


def _with_reason(
    resolutions: QuerySet[Resolution],
) -> QuerySet[WithAnnotations[Resolution, FunnelReason]]:
    """Each resolution with the one reason the funnel reports it under.

    The reason the adjudicator picked (`primary_reason`) counts when there is one. Otherwise an
    "other" reason (invalid type, duplicate...) wins over protocol criteria, the first by
    position; protocol criteria are reported together as "exclusion criteria".
    """
    through = Resolution.reasons.through
    first_other = (
        through.objects.filter(resolution_id=OuterRef("pk"), criterion__kind=Criterion.Kind.OTHER)
        .order_by("criterion__position", "criterion_id")
        .values("criterion_id")[:1]
    )
    has_criterion = through.objects.filter(
        resolution_id=OuterRef("pk"), criterion__kind=Criterion.Kind.EXCLUSION
    )
    return resolutions.annotate(
        other_reason=Case(
            When(primary_reason__kind=Criterion.Kind.OTHER, then=F("primary_reason_id")),
            When(primary_reason__isnull=False, then=Value(None, output_field=IntegerField())),
            default=Subquery(first_other),
            output_field=IntegerField(),
        ),
        has_criterion=Case(
            When(
                primary_reason__isnull=False, then=Q(primary_reason__kind=Criterion.Kind.EXCLUSION)
            ),
            default=Exists(has_criterion),
            output_field=BooleanField(),
        ),
    )


def _quality_excluded(review: Review, stages: list[Stage]) -> QuerySet[Study]:
    """Included studies whose complete quality score is below the review's threshold."""
    if review.quality_threshold is None:
        return Study.objects.none()
    criteria = review.quality_criteria.count()
    if not criteria:
        return Study.objects.none()
    included = _resolutions_routed(review, stages, screening=False, targets={INCLUDED})
    totals = (
        QualityConsensus.objects.filter(study_id=OuterRef("pk"))
        .values("study_id")
        .annotate(total=Sum("answer"), answered=Count("id"))
    )
    return (
        Study.objects.filter(review=review, id__in=included.values("study_id"))
        .annotate(
            quality_total=Subquery(totals.values("total")),
            quality_answered=Coalesce(
                Subquery(totals.values("answered"), output_field=IntegerField()), Value(0)
            ),
        )
        .filter(quality_answered__gte=criteria, quality_total__lt=review.quality_threshold)
    )


# Search rounds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundScope:
    """What one search round's funnel counts: the records imported in the round and the
    studies first found in it (a record of round 1 has no round, or no search run)."""

    number: int
    records: Q
    study_ids: QuerySet[Study, dict[str, Any]]


def _record_round() -> Coalesce:
    return Coalesce("batch__search_run__round__number", Value(FIRST_ROUND))


def round_numbers(*, review: Review) -> list[int]:
    """Round 1 and the numbers of the rounds opened since, in order."""
    opened = review.search_rounds.order_by("number").values_list("number", flat=True)
    return [FIRST_ROUND, *opened]


def round_scope(*, review: Review, number: int) -> RoundScope:
    first_round = (
        Study.objects.filter(review=review)
        .annotate(first_round=Min(Coalesce("records__batch__search_run__round__number", Value(1))))
        .filter(first_round=number)
        .values("id")
    )
    in_round = Record.objects.filter(review=review).annotate(round_number=_record_round())
    return RoundScope(
        number=number,
        records=Q(id__in=in_round.filter(round_number=number).values("id")),
        study_ids=first_round,
    )


def current_scope(*, review: Review) -> RoundScope | None:
    """The scope of the current update when the review has more than one round, else None
    (a one-round review counts everything, as before rounds existed)."""
    numbers = round_numbers(review=review)
    if len(numbers) == 1:
        return None
    return round_scope(review=review, number=numbers[-1])


# The funnel ------------------------------------------------------------------------------------


def funnel_counts(*, review: Review, scope: RoundScope | None = None) -> FunnelCounts:
    """Every aggregate the funnel arithmetic needs (a fixed number of queries); with a
    `scope`, only that search round's records and the studies first found in it."""
    stages = list(review.stages.all())
    sources = list(review.sources.order_by("position", "name").values_list("id", "name"))
    record_rows = Record.objects.filter(review=review)
    study_rows = Study.objects.filter(review=review)
    resolution_rows = Resolution.objects.filter(review=review)
    if scope is not None:
        record_rows = record_rows.filter(scope.records)
        study_rows = study_rows.filter(id__in=scope.study_ids)
        resolution_rows = resolution_rows.filter(study_id__in=scope.study_ids)
    # Both record counts are answered from indexes (index-only scans): by batch, and by
    # (review, study). Counted by the rows, a million records' table (~3 GB with their raw
    # fields) was read twice for every funnel: 1.3 s and 0.7 s of the server's CPU, 0.18 s and
    # 0.13 s so (docs/benchmarks.md, "The funnel of a busy review").
    batch_rows = Record.objects.filter(batch__review=review)
    if scope is not None:
        batch_rows = batch_rows.filter(scope.records)
    per_source = dict(
        batch_rows.values("batch__source_id")
        .annotate(n=Count("batch_id"))
        .values_list("batch__source_id", "n")
    )
    records_deduplicated = record_rows.filter(study__isnull=False).count()
    studies = study_rows.count()

    by_verdict: dict[tuple[int, str], int] = {
        (row["stage_id"], row["verdict"]): row["n"]
        for row in resolution_rows.values("stage_id", "verdict").annotate(n=Count("id"))
    }
    if scope is None:
        # The kept per-stage counts (one short read), not a count of the review's studies.
        awaiting = stages_waiting(stages=stages)
    else:
        awaiting = dict(
            study_rows.filter(outcome=Study.Outcome.SCREENING)
            .exclude(current_stage=None)
            .values("current_stage_id")
            .annotate(n=Count("id"))
            .values_list("current_stage_id", "n")
        )
    stage_counts = [
        StageCounts(
            key=stage.key,
            name=stage.name,
            kind=stage.kind,
            route_include=stage.route_include,
            route_uncertain=stage.route_uncertain,
            route_exclude=stage.route_exclude,
            include=by_verdict.get((stage.id, "include"), 0),
            uncertain=by_verdict.get((stage.id, "uncertain"), 0),
            exclude=by_verdict.get((stage.id, "exclude"), 0),
            awaiting=awaiting.get(stage.id, 0),
        )
        for stage in stages
    ]

    others = {
        c.id: reason_label(kind=c.kind, code=c.code, text=c.text)
        for c in review.criteria.filter(kind=Criterion.Kind.OTHER)
    }
    exclusions = _exclusions_by_reason(review, stages, scope, others)
    sought = _resolutions_routed(
        review,
        stages,
        screening=True,
        targets={s.key for s in stages if s.kind == FULL_TEXT_KIND},
    )
    sought_studies = _within(sought, "study_id", scope).values("study_id")

    return FunnelCounts(
        records_by_source={name: per_source.get(source_id, 0) for source_id, name in sources},
        records_deduplicated=records_deduplicated,
        studies=studies,
        stages=stage_counts,
        not_retrieved=_not_retrievable(review).filter(study_id__in=sought_studies).count(),
        fulltext_exclusions=_ordered_reasons(exclusions, others),
        quality_excluded=_within(_quality_excluded(review, stages), "id", scope).count(),
        excluded_automatic=study_rows.filter(outcome=Study.Outcome.EXCLUDED_AUTOMATIC).count(),
    )


def _within(rows: QuerySet[_M], field: str, scope: RoundScope | None) -> QuerySet[_M]:
    """`rows` limited to a round's studies (`field` holds the study id); all without a scope."""
    return rows if scope is None else rows.filter(**{f"{field}__in": scope.study_ids})


def _exclusions_by_reason(
    review: Review, stages: list[Stage], scope: RoundScope | None, others: dict[int, str]
) -> dict[str, int]:
    """Full-text exclusions (of a round's studies) counted under the one reason each is
    reported by."""
    exclusions: dict[str, int] = defaultdict(int)
    excluded = _within(_fulltext_exclusions(review, stages), "study_id", scope)
    for row in (
        _with_reason(excluded).values("other_reason", "has_criterion").annotate(n=Count("id"))
    ):
        if row["other_reason"] is not None:
            label = others[row["other_reason"]]
        elif row["has_criterion"]:
            label = EXCLUSION_CRITERIA_LABEL
        else:
            label = NO_REASON_LABEL
        exclusions[label] += row["n"]
    return exclusions


def _ordered_reasons(exclusions: dict[str, int], others: dict[int, str]) -> dict[str, int]:
    """Reasons in a stable order: the review's other reasons, then criteria, then the rest."""
    order = [*others.values(), EXCLUSION_CRITERIA_LABEL, NO_REASON_LABEL]
    ordered = {label: exclusions[label] for label in order if exclusions.get(label)}
    ordered.update({k: v for k, v in exclusions.items() if k not in ordered and v})
    return ordered


def funnel_live(*, review: Review) -> dict[str, Any]:
    """The funnel computed now (for the worker and the command line, not for requests).

    A review updated by search rounds gets the updated-review funnel: each round counted on
    its own, the current one's figures on top (screening.domain.funnel.funnel_updated).
    """
    numbers = round_numbers(review=review)
    if len(numbers) == 1:
        return funnel_from_counts(funnel_counts(review=review))
    return funnel_updated(
        [
            (
                number,
                funnel_from_counts(
                    funnel_counts(review=review, scope=round_scope(review=review, number=number))
                ),
            )
            for number in numbers
        ]
    )


def funnel_latest(*, review: Review) -> FunnelSnapshot | None:
    return FunnelSnapshot.objects.filter(review=review).order_by("-computed_at", "-id").first()


def snapshot_funnel(*, review: Review, snapshot: FunnelSnapshot) -> dict[str, Any]:
    """A stored funnel with its sources and reasons back in reading order."""
    sources = review.sources.order_by("position", "name").values_list("name", flat=True)
    return funnel_ordered(snapshot.data, sources=list(sources))


@dataclass(frozen=True)
class FunnelStatus:
    snapshot: FunnelSnapshot | None
    requested_at: datetime | None

    @property
    def computing(self) -> bool:
        """A recomputation was asked for after the latest snapshot was taken."""
        if self.requested_at is None:
            return False
        return self.snapshot is None or self.snapshot.computed_at < self.requested_at


def funnel_status(*, review: Review) -> FunnelStatus:
    schedule = FunnelSchedule.objects.filter(review=review).first()
    return FunnelStatus(
        snapshot=funnel_latest(review=review),
        requested_at=schedule.requested_at if schedule else None,
    )


# Drill-down ------------------------------------------------------------------------------------


def funnel_box_rows(
    *, review: Review, box: str, detail: str | None = None
) -> QuerySet[Record] | QuerySet[Study]:
    """The records or studies behind one funnel number (`detail`: a source, a reason, or for
    `awaiting` a stage key). In a review updated by search rounds the boxes of the new
    identification count the current round only, as the diagram does."""
    scope = current_scope(review=review)
    records = Record.objects.filter(review=review)
    studies = Study.objects.filter(review=review)
    if box in ("previous_studies", "total_studies", "new_studies"):
        return _included_in_rounds(review, scope, box)
    if scope is not None:
        records = records.filter(scope.records)
        studies = studies.filter(id__in=scope.study_ids)
    if box in RECORD_BOXES:
        return _record_box_rows(review, records, box, detail)
    return (
        _study_box_rows(review, studies, box, detail).select_related("current_stage").order_by("id")
    )


def _included_in_rounds(review: Review, scope: RoundScope | None, box: str) -> QuerySet[Study]:
    """The included studies: first found in the current round (new), before it (the previous
    version), or all of them (total; also "new" in a one-round review)."""
    included = included_studies(review=review)
    if box == "previous_studies":
        if scope is None:
            return included.none()
        included = included.exclude(id__in=scope.study_ids)
    elif box == "new_studies" and scope is not None:
        included = included.filter(id__in=scope.study_ids)
    return included.select_related("current_stage")


def _record_box_rows(
    review: Review, records: QuerySet[Record], box: str, detail: str | None
) -> QuerySet[Record]:
    if box == "database_results":
        if detail:
            records = records.filter(batch__source__name=detail)
        return records.select_related("batch__source").order_by("batch__source__position", "id")
    if box == "duplicates":
        firsts = (
            Record.objects.filter(review=review, study__isnull=False)
            .values("study_id")
            .annotate(first=Min("id"))
            .values("first")
        )
        return (
            records.filter(study__isnull=False)
            .exclude(id__in=firsts)
            .select_related("batch__source")
            .order_by("study_id", "id")
        )
    return records.none()  # excluded_other: nothing is removed for other reasons


def _study_box_rows(
    review: Review, studies: QuerySet[Study], box: str, detail: str | None
) -> QuerySet[Study]:
    stages = list(review.stages.all())
    full_text_keys = {s.key for s in stages if s.kind == FULL_TEXT_KIND}
    sought = _resolutions_routed(review, stages, screening=True, targets=full_text_keys)
    not_retrievable = _not_retrievable(review).values("study_id")
    if box == "excluded_automatic":
        return studies.filter(outcome=Study.Outcome.EXCLUDED_AUTOMATIC)
    if box == "records_screened":
        return studies.exclude(outcome=Study.Outcome.EXCLUDED_AUTOMATIC)
    if box == "records_excluded":
        excluded = _resolutions_routed(review, stages, screening=True, targets={EXCLUDED})
        return studies.filter(id__in=excluded.values("study_id"))
    if box == "dbr_sought_reports":
        return studies.filter(id__in=sought.values("study_id"))
    if box == "dbr_notretrieved_reports":
        return studies.filter(id__in=sought.values("study_id")).filter(id__in=not_retrievable)
    if box == "dbr_assessed":
        return studies.filter(id__in=sought.values("study_id")).exclude(id__in=not_retrievable)
    if box == "dbr_excluded":
        return _excluded_for_reason(review, stages, studies, detail)
    if box == "awaiting":
        return _awaiting(review, stages, studies, detail, sought, not_retrievable)
    raise ValueError(f"Unknown funnel box {box!r}.")


def _awaiting(
    review: Review,
    stages: list[Stage],
    studies: QuerySet[Study],
    stage_key: str | None,
    sought: QuerySet[Resolution],
    not_retrievable: QuerySet[FullText, Any],
) -> QuerySet[Study]:
    """Studies still waiting at a screening stage, or assessed at full text without a decision
    yet (the figures a diagram in progress shows so its boxes add up)."""
    stage = next((s for s in stages if s.key == stage_key), None)
    if stage is None:
        return studies.none()
    if stage.kind != FULL_TEXT_KIND:
        return studies.filter(outcome=Study.Outcome.SCREENING, current_stage=stage)
    decided = Resolution.objects.filter(review=review, stage__kind=FULL_TEXT_KIND)
    return (
        studies.filter(id__in=sought.values("study_id"))
        .exclude(id__in=not_retrievable)
        .exclude(id__in=decided.values("study_id"))
    )


def _excluded_for_reason(
    review: Review, stages: list[Stage], studies: QuerySet[Study], detail: str | None
) -> QuerySet[Study]:
    if detail == QUALITY_LABEL:
        return studies.filter(id__in=_quality_excluded(review, stages).values("id"))
    resolutions = _with_reason(_fulltext_exclusions(review, stages))
    if detail:
        others = {
            reason_label(kind=c.kind, code=c.code, text=c.text): c.id
            for c in review.criteria.filter(kind=Criterion.Kind.OTHER)
        }
        if detail in others:
            resolutions = resolutions.filter(other_reason=others[detail])
        elif detail == EXCLUSION_CRITERIA_LABEL:
            resolutions = resolutions.filter(other_reason__isnull=True, has_criterion=True)
        elif detail == NO_REASON_LABEL:
            resolutions = resolutions.filter(other_reason__isnull=True, has_criterion=False)
        else:
            return studies.none()
        return studies.filter(id__in=resolutions.values("study_id"))
    return studies.filter(
        Q(id__in=resolutions.values("study_id"))
        | Q(id__in=_quality_excluded(review, stages).values("id"))
    )


def included_studies(*, review: Review) -> QuerySet[Study]:
    """The review's included studies: full-text includes, less those below the quality bar."""
    stages = list(review.stages.all())
    included = _resolutions_routed(review, stages, screening=False, targets={INCLUDED})
    return (
        Study.objects.filter(review=review, id__in=included.values("study_id"))
        .exclude(id__in=_quality_excluded(review, stages).values("id"))
        .order_by("id")
    )


def study_sources(*, study_ids: Iterable[int]) -> dict[int, list[str]]:
    """Source names per study for a page of studies (one query)."""
    out: dict[int, list[str]] = defaultdict(list)
    for study_id, name in (
        Record.objects.filter(study_id__in=list(study_ids))
        .values_list("study_id", "batch__source__name")
        .distinct()
        .order_by("study_id", "batch__source__name")
    ):
        out[study_id].append(name)
    return out


# The paper's tables ----------------------------------------------------------------------------


def table1(*, review: Review) -> dict[str, Any]:
    """Table 1: search strings x sources, the hits each library reported and the records imported.

    Records of batches not tied to a search run are counted in an "other imports" row.
    """
    sources = list(review.sources.order_by("position", "name"))
    strings = list(review.search_strings.all())
    reported = {
        (row["search_string_id"], row["source_id"]): row["hits"]
        for row in SearchRun.objects.filter(review=review)
        .values("search_string_id", "source_id")
        .annotate(hits=Sum("hits_reported"))
    }
    imported = {
        (row["batch__search_run__search_string_id"], row["batch__source_id"]): row["n"]
        for row in Record.objects.filter(review=review)
        .values("batch__search_run__search_string_id", "batch__source_id")
        .annotate(n=Count("id"))
    }
    rows: list[dict[str, Any]] = []
    for string in strings:
        cells: list[dict[str, Any]] = [
            {
                "reported": reported.get((string.id, source.id)),
                "imported": imported.get((string.id, source.id), 0),
            }
            for source in sources
        ]
        rows.append(
            {
                "string": string.text,
                "cells": cells,
                "reported": sum(c["reported"] or 0 for c in cells),
                "imported": sum(c["imported"] for c in cells),
            }
        )
    unassigned = [imported.get((None, source.id), 0) for source in sources]
    if any(unassigned):
        rows.append(
            {
                "string": "(imports without a search run)",
                "cells": [{"reported": None, "imported": n} for n in unassigned],
                "reported": 0,
                "imported": sum(unassigned),
            }
        )
    totals = [
        {
            "reported": sum(row["cells"][i]["reported"] or 0 for row in rows),
            "imported": sum(row["cells"][i]["imported"] for row in rows),
        }
        for i in range(len(sources))
    ]
    return {
        "sources": [s.name for s in sources],
        "rows": rows,
        "totals": totals,
        "reported": sum(t["reported"] for t in totals),
        "imported": sum(t["imported"] for t in totals),
    }


def table1_rows(*, review: Review) -> list[list[object]]:
    data = table1(review=review)
    header: list[object] = ["search_string"]
    for name in data["sources"]:
        header += [f"{name} reported", f"{name} imported"]
    header += ["total reported", "total imported"]
    rows = [header]
    for row in data["rows"]:
        line: list[object] = [row["string"]]
        for cell in row["cells"]:
            line += ["" if cell["reported"] is None else cell["reported"], cell["imported"]]
        rows.append([*line, row["reported"], row["imported"]])
    total: list[object] = ["Total"]
    for cell in data["totals"]:
        total += [cell["reported"], cell["imported"]]
    rows.append([*total, data["reported"], data["imported"]])
    return rows


def included_per_year(*, review: Review) -> dict[str, Any]:
    """Figure 2: included studies per publication year and library (a study counts once in
    each library that found it)."""
    sources = list(review.sources.order_by("position", "name").values_list("name", flat=True))
    counts = {
        (row["study__year"], row["batch__source__name"]): row["n"]
        for row in Record.objects.filter(study__in=included_studies(review=review))
        .values("study__year", "batch__source__name")
        .annotate(n=Count("study_id", distinct=True))
    }
    return {"sources": sources, "counts": counts}


def included_per_year_rows(*, review: Review) -> list[list[object]]:
    data = included_per_year(review=review)
    sources = data["sources"]
    years = sorted({year for year, _ in data["counts"]}, key=lambda y: (y is None, y or 0))
    rows: list[list[object]] = [["year", *sources]]
    for year in years:
        rows.append(
            ["" if year is None else year, *(data["counts"].get((year, s), 0) for s in sources)]
        )
    return rows


# One bit per source in a BIGINT mask; reviews search far fewer libraries than this.
MAX_OVERLAP_SOURCES = 62


def source_overlap(*, review: Review) -> dict[str, Any]:
    """Studies found by more than one library: pairwise overlap and libraries-per-study.

    One grouped query: each study gets the bit mask of the libraries that found it (a sum of
    distinct powers of two, standard SQL that SQLite runs too), then studies are counted per
    mask; the pairwise matrix and the distribution follow from those few masks.
    """
    sources = list(
        review.sources.order_by("position", "name").values_list("id", "name")[:MAX_OVERLAP_SOURCES]
    )
    if not sources:
        return {"sources": [], "matrix": [], "distribution": {}, "multi": 0}
    bits = " ".join(
        f"WHEN {int(source_id)} THEN {1 << i}" for i, (source_id, _) in enumerate(sources)
    )
    record, batch = Record._meta.db_table, ImportBatch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT mask, COUNT(*) FROM (SELECT r.study_id, SUM(DISTINCT CASE b.source_id {bits} "
            f"ELSE 0 END) AS mask FROM {record} r JOIN {batch} b ON b.id = r.batch_id "
            "WHERE r.review_id = %s AND r.study_id IS NOT NULL GROUP BY r.study_id) m "
            "GROUP BY mask",
            [review.pk],
        )
        masks = [(int(mask), n) for mask, n in cursor.fetchall()]
    size = len(sources)
    matrix = [[0] * size for _ in range(size)]
    distribution: dict[int, int] = defaultdict(int)
    for mask, n in masks:
        found = [i for i in range(size) if mask >> i & 1]
        if found:
            distribution[len(found)] += n
        for i in found:
            for j in found:
                matrix[i][j] += n
    return {
        "sources": [name for _, name in sources],
        "matrix": matrix,
        "distribution": dict(sorted(distribution.items())),
        "multi": sum(n for k, n in distribution.items() if k > 1),
    }


def overlap_studies(*, review: Review) -> QuerySet[WithAnnotations[Study, Libraries]]:
    return (
        Study.objects.filter(review=review)
        .annotate(libraries=Count("records__batch__source", distinct=True))
        .filter(libraries__gt=1)
        .order_by("-libraries", "id")
    )


def source_overlap_rows(*, review: Review) -> list[list[object]]:
    studies = list(overlap_studies(review=review).values("id", "title", "year", "doi", "libraries"))
    names = study_sources(study_ids=[s["id"] for s in studies])
    rows: list[list[object]] = [["study_id", "title", "year", "doi", "libraries", "sources"]]
    for s in studies:
        rows.append(
            [
                s["id"],
                s["title"],
                s["year"] or "",
                s["doi"],
                s["libraries"],
                "; ".join(names[s["id"]]),
            ]
        )
    return rows


def included_citations(*, review: Review) -> list[Citation]:
    """The included studies as citations, with volume/issue/pages from their records."""
    studies = list(included_studies(review=review))
    ids = [s.id for s in studies]
    details: dict[int, dict[str, str]] = defaultdict(dict)
    for study_id, volume, issue, pages in (
        Record.objects.filter(study_id__in=ids)
        .order_by("study_id", "id")
        .values_list("study_id", "volume", "issue", "pages")
    ):
        found = details[study_id]
        for name, value in (("volume", volume), ("issue", issue), ("pages", pages)):
            if value and name not in found:
                found[name] = value
    sources = study_sources(study_ids=ids)
    return [
        Citation(
            title=s.title,
            authors=tuple(s.authors or ()),
            year=s.year,
            venue=s.venue,
            volume=details[s.id].get("volume", ""),
            issue=details[s.id].get("issue", ""),
            pages=details[s.id].get("pages", ""),
            doi=s.doi,
            url=s.url,
            pmid=s.pmid,
            abstract=s.abstract,
            keywords=tuple(s.keywords or ()),
            publication_type=s.publication_type,
            sources=tuple(sources[s.id]),
            study_id=s.id,
        )
        for s in studies
    ]


def sources_for_review(*, review: Review) -> QuerySet[Source]:
    return review.sources.order_by("position", "name")


# Rendered artefacts (views reach the domain's writers through here) ----------------------------


@overload
def funnel_diagram(
    *, funnel: Mapping[str, Any], title: str, url: BoxUrl | None = None, fmt: Literal["svg"] = ...
) -> str: ...
@overload
def funnel_diagram(
    *, funnel: Mapping[str, Any], title: str, url: BoxUrl | None = None, fmt: Literal["pdf"]
) -> bytes: ...
@overload
def funnel_diagram(
    *, funnel: Mapping[str, Any], title: str, url: BoxUrl | None = None, fmt: str
) -> str | bytes: ...
def funnel_diagram(
    *, funnel: Mapping[str, Any], title: str, url: BoxUrl | None = None, fmt: str = "svg"
) -> str | bytes:
    """The PRISMA diagram of a funnel as SVG text or PDF bytes."""
    if fmt == "pdf":
        return prisma_pdf(funnel, title=title, url=url)
    return prisma_svg(funnel, title=title, url=url)


def funnel_awaiting(*, funnel: Mapping[str, Any], stage: str) -> int:
    return awaiting_figure(funnel, stage)


def funnel_prisma_csv(*, funnel: Mapping[str, Any], urls: dict[str, str] | None = None) -> str:
    return rows_to_csv(prisma_csv_rows(funnel, urls=urls))


def figure2_svg(*, review: Review) -> str:
    data = included_per_year(review=review)
    counts = {key: n for key, n in data["counts"].items() if key[0] is not None}
    return studies_per_year_svg(counts, data["sources"])


def included_export(*, review: Review, fmt: str) -> str:
    citations = included_citations(review=review)
    writer = {"ris": to_ris, "bib": to_bibtex, "csv": to_csv}[fmt]
    return writer(citations)


def table_csv(rows: Sequence[Sequence[object]]) -> str:
    return rows_to_csv(rows)
