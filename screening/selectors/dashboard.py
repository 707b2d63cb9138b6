"""Dashboard reads: progress per stage and reviewer, agreement computed from stored decisions."""

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count

from ..domain.agreement import Agreement, cohen_kappa, fleiss_kappa, fleiss_table, raw_agreement
from ..models import Criterion, Decision, Review, Stage
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


def dashboard_data(*, review: Review, user: User) -> dict[str, Any]:
    visible = outcomes_visible(review=review, user=user)
    return {
        "stages": stage_overview(review=review, user=user),
        "outcomes_visible": visible,
        "reviewers": reviewer_progress(review=review),
        "agreement": agreement_by_stage(review=review) if visible else [],
        "stage_names": [stage.name for stage in review.stages.all()],
    }
