"""Dashboard reads: progress per stage and reviewer, agreement computed from stored decisions,
and the review at a glance (funnel, open conflicts, Table 5) read from what the reports and
quality pages read."""

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import combinations
from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.db.models import Count

from ..domain.agreement import Agreement, cohen_kappa, fleiss_kappa, fleiss_table, raw_agreement
from ..domain.funnel import box_total
from ..models import Criterion, Decision, QualityCriterion, Review, Stage
from .quality import quality_table5
from .reports import funnel_awaiting, funnel_latest
from .screening import outcomes_visible, stage_overview

VERDICTS = list(Decision.Verdict.values)


def reviewer_progress(*, review: Review) -> list[dict[str, Any]]:
    """Decisions per reviewer and stage (counts only: no verdicts, so nothing leaks)."""
    stages = list(review.stages.all())
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    for username, stage_id, n in (
        Decision.objects.filter(review=review)
        .values_list("reviewer__username", "stage")
        .annotate(n=Count("id"))
        .order_by("reviewer__username")
    ):
        counts[username][stage_id] = n
    return [
        {
            "username": username,
            "per_stage": [per_stage.get(stage.pk, 0) for stage in stages],
            "total": sum(per_stage.values()),
        }
        for username, per_stage in sorted(counts.items())
    ]


def _ratings(*, review: Review, stage: Stage) -> dict[int, list[tuple[int, str, set[int]]]]:
    """Per study with two or more decisions: (reviewer, verdict, reason ids) of each.

    Every double-screened study counts from its second decision on, conflicts included (leaving
    out the pending conflicts would leave out exactly the disagreements). In blind mode only
    those who see conflicts see these figures (`outcomes_visible`).
    """
    decisions = Decision.objects.filter(review=review, stage=stage)
    reasons: dict[int, set[int]] = defaultdict(set)
    for decision_id, criterion_id in Decision.reasons.through.objects.filter(
        decision__in=decisions
    ).values_list("decision_id", "criterion_id"):
        reasons[decision_id].add(criterion_id)
    by_study: dict[int, list[tuple[int, str, set[int]]]] = defaultdict(list)
    for decision_id, study_id, reviewer_id, verdict in decisions.values_list(
        "id", "study_id", "reviewer_id", "verdict"
    ):
        by_study[study_id].append((reviewer_id, verdict, reasons.get(decision_id, set())))
    return {study: rows for study, rows in by_study.items() if len(rows) >= 2}


def _summary(
    labels_by_study: Mapping[int, Sequence[tuple[int, Hashable]]], categories: Sequence[Hashable]
) -> dict[str, Any]:
    """Raw agreement, Fleiss' kappa and (for each reviewer pair) Cohen's kappa of labels."""
    ratings = [[label for _, label in rows] for rows in labels_by_study.values()]
    # Fleiss needs the same number of ratings per study: use the most common count.
    sizes: dict[int, int] = defaultdict(int)
    for labels in ratings:
        sizes[len(labels)] += 1
    fleiss: Agreement | None = None
    if sizes:
        n = max(sizes, key=lambda size: (sizes[size], size))
        fleiss = fleiss_kappa(fleiss_table([r for r in ratings if len(r) == n], categories))
    pairs: dict[tuple[int, int], list[tuple[Hashable, Hashable]]] = defaultdict(list)
    for rows in labels_by_study.values():
        for (a, label_a), (b, label_b) in combinations(sorted(rows, key=lambda r: r[0]), 2):
            pairs[(a, b)].append((label_a, label_b))
    return {
        "subjects": len(ratings),
        "raw": raw_agreement(ratings),
        "fleiss": fleiss,
        "cohen": {pair: cohen_kappa(values) for pair, values in pairs.items()},
    }


def agreement_by_stage(*, review: Review) -> list[dict[str, Any]]:
    """Agreement per stage on verdicts, and per exclusion criterion (cited or not)."""
    users = dict(
        get_user_model().objects.filter(memberships__review=review).values_list("pk", "username")
    )
    criteria = list(Criterion.objects.filter(review=review).exclude(kind=Criterion.Kind.INCLUSION))
    result: list[dict[str, Any]] = []
    for stage in review.stages.all():
        ratings = _ratings(review=review, stage=stage)
        verdicts = {
            study: [(reviewer, verdict) for reviewer, verdict, _ in rows]
            for study, rows in ratings.items()
        }
        overall = _summary(verdicts, VERDICTS)
        per_criterion: list[dict[str, Any]] = []
        for criterion in criteria:
            cited = {
                study: [(reviewer, criterion.pk in reasons) for reviewer, _, reasons in rows]
                for study, rows in ratings.items()
            }
            if not any(label for rows in cited.values() for _, label in rows):
                continue
            summary = _summary(cited, [True, False])
            per_criterion.append({"criterion": criterion, **summary})
        result.append(
            {
                "stage": stage,
                **overall,
                "cohen_rows": [
                    {"a": users.get(a, a), "b": users.get(b, b), "agreement": value}
                    for (a, b), value in sorted(overall["cohen"].items())
                ],
                "per_criterion": per_criterion,
            }
        )
    return result


class AwaitingFigure(TypedDict):
    stage: str
    name: str
    n: int


class FunnelGlance(TypedDict):
    computed_at: datetime
    current_round: int | None
    identified: int
    duplicates: int
    screened: int
    excluded: int
    sought: int
    not_retrieved: int
    assessed: int
    full_text_excluded: int
    included: int
    awaiting: list[AwaitingFigure]
    awaiting_total: int


def funnel_glance(*, review: Review) -> FunnelGlance | None:
    """The PRISMA figures of the latest funnel snapshot (the one the reports page draws), or
    None before the worker has computed one. One query: the funnel is never counted here."""
    snapshot = funnel_latest(review=review)
    if snapshot is None:
        return None
    funnel: dict[str, Any] = snapshot.data
    awaiting: list[AwaitingFigure] = []
    for entry in funnel.get("stages", []):
        key = str(entry.get("stage", ""))
        n = funnel_awaiting(funnel=funnel, stage=key)
        if n:
            awaiting.append({"stage": key, "name": str(entry.get("name") or key), "n": n})
    return {
        "computed_at": snapshot.computed_at,
        "current_round": funnel.get("current_round"),
        "identified": box_total(funnel, "database_results"),
        "duplicates": box_total(funnel, "duplicates"),
        "screened": box_total(funnel, "records_screened"),
        "excluded": box_total(funnel, "records_excluded"),
        "sought": box_total(funnel, "dbr_sought_reports"),
        "not_retrieved": box_total(funnel, "dbr_notretrieved_reports"),
        "assessed": box_total(funnel, "dbr_assessed"),
        "full_text_excluded": box_total(funnel, "dbr_excluded"),
        "included": box_total(funnel, "new_studies"),
        "awaiting": awaiting,
        "awaiting_total": sum(item["n"] for item in awaiting),
    }


class CriterionGlance(TypedDict):
    criterion: QualityCriterion
    average: Decimal | None
    kappa: float | None


class Table5Glance(TypedDict):
    studies: int
    complete: int
    average_total: Decimal | None
    max_total: int
    criteria: list[CriterionGlance]


def table5_glance(*, review: Review) -> Table5Glance:
    """Table 5 in one line per criterion: read from `quality_table5`, as the Table 5 page is."""
    table = quality_table5(review=review)
    return {
        "studies": len(table["rows"]),
        "complete": table["complete"],
        "average_total": table["average_total"],
        "max_total": table["max_total"],
        "criteria": [
            {"criterion": criterion, "average": average, "kappa": agreement["kappa"]}
            for criterion, average, agreement in zip(
                table["criteria"], table["averages"], table["agreement"], strict=True
            )
        ],
    }


def dashboard_data(*, review: Review, user: Any) -> dict[str, Any]:
    """Everything the dashboard shows `user`. Outcome figures (the funnel, conflicts, agreement,
    Table 5, which counts the included studies) only when `outcomes_visible`: in blind mode
    they move with other reviewers' pending verdicts."""
    visible = outcomes_visible(review=review, user=user)
    stages = stage_overview(review=review, user=user)
    return {
        "stages": stages,
        "outcomes_visible": visible,
        "reviewers": reviewer_progress(review=review),
        "agreement": agreement_by_stage(review=review) if visible else [],
        "stage_names": [row["stage"].name for row in stages],
        "funnel": funnel_glance(review=review) if visible else None,
        "open_conflicts": sum(row["conflicts"] for row in stages) if visible else None,
        "table5": table5_glance(review=review) if visible else None,
    }
