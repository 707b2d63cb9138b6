"""Reads for the prioritisation panel: recall curve, streaks, stopping rule, last training.

Blind mode. Nothing here exposes a per-study label. The team-level curve and counts come from
resolutions only (the settled outcomes every member may see) when the review is blind, and from
all decisions when it is not. A reviewer's own curve and streak come from their own decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import QuerySet

from ..domain import metrics as ranking_metrics
from ..domain import stopping as stopping_domain
from ..models import (
    AuditSample,
    Decision,
    RankingRun,
    RankingSettings,
    Resolution,
    Review,
    Stage,
    StageStop,
    Study,
)

RELEVANT_VERDICTS = frozenset({Decision.Verdict.INCLUDE, Decision.Verdict.UNCERTAIN})

CHART_WIDTH = 480
CHART_HEIGHT = 200
CHART_PAD_LEFT = 44
CHART_PAD_BOTTOM = 28
CHART_PAD_TOP = 10
CHART_PAD_RIGHT = 12


@dataclass(frozen=True)
class Curve:
    screened: int
    found: int
    streak: int  # consecutive irrelevant since the last relevant
    points: str  # SVG polyline points in the chart's coordinates
    last_x: float
    last_y: float


@dataclass(frozen=True)
class Tick:
    value: int
    x: float
    y: float


@dataclass(frozen=True)
class RankingProgress:
    review: Review
    stage: Stage
    stages: list[Stage]
    settings: RankingSettings
    blind: bool
    team_source: str  # "resolutions" | "decisions"
    team: Curve
    mine: Curve
    waiting: int
    total: int
    y_max: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    hint_reached_team: bool
    hint_reached_mine: bool
    last_run: RankingRun | None
    active_run: RankingRun | None
    stopping: stopping_domain.BuscarResult  # the BUSCAR rule on the team's figures
    stop: StageStop | None  # the stop in force, if the owner stopped the stage
    audit_sample: AuditSampleResult | None
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = CHART_PAD_LEFT
    plot_bottom: int = CHART_HEIGHT - CHART_PAD_BOTTOM
    plot_top: int = CHART_PAD_TOP
    plot_right: int = CHART_WIDTH - CHART_PAD_RIGHT


def ranking_settings_read(*, stage: Stage) -> RankingSettings:
    """The stage's settings, or the defaults (unsaved) when the owner never saved any."""
    return RankingSettings.objects.filter(stage=stage).first() or RankingSettings(stage=stage)


@dataclass(frozen=True)
class StageLabels:
    relevant: dict[int, bool]  # study id -> relevant, for every study with a decision
    pending: set[int]  # labelled studies not resolved yet (still in someone's queue)


def stage_labels(*, stage: Stage) -> StageLabels:
    """Per-study labels of a stage from its decisions and resolutions (see module docstring)."""
    relevant: dict[int, bool] = {}
    for study_id, verdict in Decision.objects.filter(stage=stage).values_list(
        "study_id", "verdict"
    ):
        relevant[study_id] = relevant.get(study_id, False) or verdict in RELEVANT_VERDICTS
    resolved = dict(Resolution.objects.filter(stage=stage).values_list("study_id", "verdict"))
    for study_id, verdict in resolved.items():
        relevant[study_id] = verdict in RELEVANT_VERDICTS
    return StageLabels(relevant=relevant, pending=set(relevant) - set(resolved))


def stage_unscreened_studies(stage: Stage) -> QuerySet[Study]:
    """Studies waiting in the stage's queues: current stage, still screening, not resolved."""
    return Study.objects.filter(
        review_id=stage.review_id,
        current_stage=stage,
        outcome=Study.Outcome.SCREENING,
    ).exclude(resolutions__stage=stage)


def stage_team_labels(*, review: Review, stage: Stage) -> list[bool]:
    """Relevance of the stage's screened studies in the order they were first screened.

    Blind mode: settled outcomes only (resolutions), in the order they were settled, so nothing
    computed from it moves with a colleague's pending verdict. Otherwise every decided study, in
    the order of its first decision, labelled as the model labels it (`stage_labels`).
    """
    if review.blind_mode:
        return [
            verdict in RELEVANT_VERDICTS
            for verdict in Resolution.objects.filter(stage=stage)
            .order_by("created_at", "id")
            .values_list("verdict", flat=True)
        ]
    labels = stage_labels(stage=stage).relevant
    first_seen: dict[int, None] = {}
    for study_id in (
        Decision.objects.filter(stage=stage)
        .order_by("created_at", "id")
        .values_list("study_id", flat=True)
    ):
        first_seen.setdefault(study_id, None)
    return [labels[study_id] for study_id in first_seen]


def stage_waiting_count(*, stage: Stage) -> int:
    """Studies still in the stage's queues (not resolved in it)."""
    return stage_unscreened_studies(stage).count()


def stage_stop_in_force(*, stage: Stage) -> StageStop | None:
    return (
        StageStop.objects.filter(stage=stage, undone_at__isnull=True)
        .select_related("stopped_by")
        .first()
    )


@dataclass(frozen=True)
class AuditSampleResult:
    size: int
    population: int
    screened: int
    relevant: int


def audit_sample_result(*, review: Review, stage: Stage) -> AuditSampleResult | None:
    """The stage's audit sample and its result so far (settled outcomes in blind mode)."""
    sample = AuditSample.objects.filter(stage=stage).first()
    if sample is None:
        return None
    sampled = set(sample.study_ids)
    if review.blind_mode:
        verdicts = dict(
            Resolution.objects.filter(stage=stage, study_id__in=sampled).values_list(
                "study_id", "verdict"
            )
        )
        relevant = {pk: verdict in RELEVANT_VERDICTS for pk, verdict in verdicts.items()}
    else:
        labels = stage_labels(stage=stage).relevant
        relevant = {pk: labels[pk] for pk in sampled if pk in labels}
    return AuditSampleResult(
        size=sample.size,
        population=sample.population,
        screened=len(relevant),
        relevant=sum(relevant.values()),
    )


def _x(value: float, x_max: int) -> float:
    span = CHART_WIDTH - CHART_PAD_LEFT - CHART_PAD_RIGHT
    return round(CHART_PAD_LEFT + span * value / max(x_max, 1), 1)


def _y(value: float, y_max: int) -> float:
    span = CHART_HEIGHT - CHART_PAD_TOP - CHART_PAD_BOTTOM
    return round(CHART_HEIGHT - CHART_PAD_BOTTOM - span * value / max(y_max, 1), 1)


def _curve(labels_in_order: list[bool], x_max: int, y_max: int) -> Curve:
    found = sum(labels_in_order)
    points = ranking_metrics.recall_curve(labels_in_order)
    return Curve(
        screened=len(labels_in_order),
        found=found,
        streak=ranking_metrics.consecutive_irrelevant(labels_in_order),
        points=" ".join(f"{_x(p.screened, x_max)},{_y(p.found, y_max)}" for p in points),
        last_x=_x(len(labels_in_order), x_max),
        last_y=_y(found, y_max),
    )


def _ticks(maximum: int, count: int = 4) -> list[int]:
    if maximum <= 0:
        return [0]
    step = max(1, round(maximum / count))
    values = list(range(0, maximum + 1, step))
    if values[-1] != maximum:
        # The maximum is always labelled; a regular tick closer to it than half a step would
        # print over it.
        if maximum - values[-1] < step / 2:
            values.pop()
        values.append(maximum)
    return values


def ranking_stages(*, review: Review) -> list[Stage]:
    return list(review.stages.order_by("position", "id"))


def ranking_progress_get(*, review: Review, stage: Stage, user: User) -> RankingProgress:
    settings_row = ranking_settings_read(stage=stage)
    team_source = "resolutions" if review.blind_mode else "decisions"
    team_labels = stage_team_labels(review=review, stage=stage)
    my_labels = [
        verdict in RELEVANT_VERDICTS
        for verdict in Decision.objects.filter(stage=stage, reviewer=user)
        .order_by("created_at", "id")
        .values_list("verdict", flat=True)
    ]
    waiting = stage_waiting_count(stage=stage)
    screened_team = len(team_labels)
    total = max(screened_team + waiting, len(my_labels), 1)
    y_max = max(sum(team_labels), sum(my_labels), 1)
    hint = settings_row.stop_after_irrelevant
    team = _curve(team_labels, total, y_max)
    mine = _curve(my_labels, total, y_max)
    runs = RankingRun.objects.filter(stage=stage)
    stop = stage_stop_in_force(stage=stage)
    stopping = stopping_domain.buscar(
        team_labels,
        # Studies a stop excluded automatically were never screened: they still count.
        records=screened_team + waiting + (stop.excluded if stop else 0),
        target=settings_row.recall_target,
        confidence=settings_row.confidence,
    )
    return RankingProgress(
        review=review,
        stage=stage,
        stages=ranking_stages(review=review),
        settings=settings_row,
        blind=review.blind_mode,
        team_source=team_source,
        team=team,
        mine=mine,
        waiting=waiting,
        total=total,
        y_max=y_max,
        x_ticks=[Tick(v, _x(v, total), 0) for v in _ticks(total)],
        y_ticks=[Tick(v, 0, _y(v, y_max)) for v in _ticks(y_max)],
        hint_reached_team=bool(hint) and team.screened > 0 and team.streak >= hint,
        hint_reached_mine=bool(hint) and mine.screened > 0 and mine.streak >= hint,
        last_run=runs.filter(status=RankingRun.Status.DONE).order_by("-finished_at").first(),
        active_run=runs.filter(status__in=RankingRun.ACTIVE).order_by("-created_at").first(),
        stopping=stopping,
        stop=stop,
        audit_sample=audit_sample_result(review=review, stage=stage),
    )


def stage_stops_in_force(*, review: Review) -> list[StageStop]:
    """The stops in force of the review's stages, for the reports page's methods sentence."""
    return list(
        StageStop.objects.filter(review=review, undone_at__isnull=True)
        .select_related("stage", "stopped_by")
        .order_by("stage__position", "stage_id")
    )
