"""Screening reads: progress, the visible decisions under blind mode, conflicts, highlighting."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from ..models import (
    Adjudicator,
    Criterion,
    Decision,
    Membership,
    Resolution,
    Review,
    Stage,
    Study,
)
from .rows import model_columns, model_instances, model_rows


@dataclass(frozen=True)
class Segment:
    """A piece of text; `kind` is "include"/"exclude" for a highlighted term, "" otherwise."""

    text: str
    kind: str = ""


def highlight_terms(raw: str) -> list[str]:
    return [line.strip() for line in (raw or "").splitlines() if line.strip()]


def highlight_segments(text: str, *, include: list[str], exclude: list[str]) -> list[Segment]:
    """Split text into plain and highlighted pieces; the template escapes every piece.

    No HTML is produced here: the template wraps highlighted pieces in <mark> after Django
    escapes their text, so hostile titles stay text.
    """
    if not text:
        return []
    kinds: dict[str, str] = {}
    for term in exclude:
        kinds.setdefault(term.casefold(), "exclude")
    for term in include:
        kinds[term.casefold()] = "include"
    if not kinds:
        return [Segment(text)]
    # Longest terms first so "machine learning operations" wins over "machine learning".
    pattern = re.compile(
        "|".join(re.escape(term) for term in sorted(kinds, key=len, reverse=True)),
        re.IGNORECASE,
    )
    segments: list[Segment] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            segments.append(Segment(text[position : match.start()]))
        segments.append(Segment(match.group(0), kinds[match.group(0).casefold()]))
        position = match.end()
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments


def can_adjudicate(*, review: Review, user: User) -> bool:
    """Owners, and the reviewers the owner designated, resolve conflicts.

    The designation is read together with the member's current role: a member demoted to
    viewer or removed has lost it (`adjudicator_revoke` also deletes it, so re-adding the
    member does not bring it back).
    """
    if not getattr(user, "is_authenticated", False):
        return False
    membership = Membership.objects.filter(review=review, user=user).first()
    if membership is None:
        return False
    if membership.role == Membership.Role.OWNER:
        return True
    return (
        membership.role == Membership.Role.REVIEWER
        and Adjudicator.objects.filter(review=review, user=user).exists()
    )


def _reasons_condition(
    stage_kind: str, stage_kind_params: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """Which criteria `c` a stage whose kind is the SQL `stage_kind` (with its parameters)
    offers as exclusion reasons (the rule of `reasons_allowed`), as a condition and its
    parameters in order."""
    return (
        f"(c.kind = %s OR ({stage_kind} = %s AND c.kind = %s))",
        [
            Criterion.Kind.EXCLUSION.value,
            *stage_kind_params,
            Stage.Kind.FULL_TEXT.value,
            Criterion.Kind.OTHER.value,
        ],
    )


def _reasons_order() -> str:
    return f"c.kind, c.{connection.ops.quote_name('position')}, c.id"


def reasons_allowed(*, stage: Stage) -> list[Criterion]:
    """Exclusion reasons offered in a stage: the protocol's exclusion criteria, plus the extra
    reasons (invalid publication type, duplicate) at full text."""
    condition, params = _reasons_condition("%s", [stage.kind])
    rows = model_rows(
        Criterion,
        f"SELECT {model_columns(Criterion, 'c')} FROM {Criterion._meta.db_table} c"
        f" WHERE c.review_id = %s AND {condition} ORDER BY {_reasons_order()}",
        [stage.review_id, *params],
    )
    return [criterion for criterion, _ in rows]


def stage_with_reasons(*, review: Review, key: str) -> tuple[Stage, list[Criterion]] | None:
    """`stage_get` and that stage's `reasons_allowed` in one read (every screening decision
    needs both: one round trip less); None when the review has no such stage."""
    quote = connection.ops.quote_name
    condition, params = _reasons_condition("st.kind")
    rows = model_rows(
        Stage,
        f"SELECT {model_columns(Stage, 'st')}, {model_columns(Criterion, 'c')}"
        f" FROM {quote(Stage._meta.db_table)} st LEFT JOIN {Criterion._meta.db_table} c"
        f" ON c.review_id = st.review_id AND {condition}"
        f" WHERE st.review_id = %s AND st.{quote('key')} = %s ORDER BY {_reasons_order()}",
        [*params, review.pk, key],
    )
    if not rows:
        return None
    stage = rows[0][0]
    reasons = [c for c, _ in model_instances(Criterion, [r for _, r in rows if r[0] is not None])]
    return stage, reasons


def reasons_differ(reason_ids: Iterable[Iterable[int]]) -> bool:
    """Whether the decisions (each given as its reasons' ids) name different reasons."""
    return len({frozenset(ids) for ids in reason_ids}) > 1


def is_reason_conflict(*, stage: Stage, decisions: list[Decision]) -> bool:
    """Full-text reviewers agree to exclude but name different reasons (a conflict)."""
    return (
        stage.kind == Stage.Kind.FULL_TEXT
        and len(decisions) >= 2
        and all(d.verdict == Decision.Verdict.EXCLUDE for d in decisions)
        and reasons_differ([r.pk for r in d.reasons.all()] for d in decisions)
    )


def stage_get(*, review: Review, key: str) -> Stage | None:
    quote = connection.ops.quote_name
    rows = model_rows(
        Stage,
        f"SELECT {model_columns(Stage)} FROM {quote(Stage._meta.db_table)}"
        f" WHERE review_id = %s AND {quote('key')} = %s",
        [review.pk, key],
    )
    return rows[0][0] if rows else None


def study_get(*, review: Review, pk: int) -> Study | None:
    """The review's study `pk`, or None (another review's study is not found)."""
    quote = connection.ops.quote_name
    rows = model_rows(
        Study,
        f"SELECT {model_columns(Study)} FROM {quote(Study._meta.db_table)}"
        " WHERE id = %s AND review_id = %s",
        [pk, review.pk],
    )
    return rows[0][0] if rows else None


def _scalar_count(queryset: QuerySet[Model]) -> Subquery:
    """`(SELECT COUNT(*) FROM ...)` as an expression: a plain Func, so no GROUP BY is added."""
    return Subquery(
        queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
        output_field=IntegerField(),
    )


def _decisions_at_current_stage() -> Subquery:
    return _scalar_count(
        Decision.objects.filter(study=OuterRef("pk"), stage=OuterRef("current_stage"))
    )


def _needing_decisions(*, review: Review) -> QuerySet[Study]:
    """Studies still short of their stage's required decisions.

    Unlike "waiting in the stage" this count moves the same way whatever the verdicts are, so
    it is safe to show in blind mode: a study in conflict and one resolved by agreement both
    leave it when their last decision comes in.
    """
    return (
        Study.objects.filter(review=review, outcome=Study.Outcome.SCREENING)
        .alias(decided=_decisions_at_current_stage())
        .filter(decided__lt=F("current_stage__reviewers_required"))
    )


# "Left for you" is read on every panel, so after every decision: its SQL is written out (the
# ORM took more CPU to build the grouped count than the database took to run it).
_STUDY = Study._meta.db_table
_DECISION = Decision._meta.db_table
# The studies waiting in the stage. PostgreSQL: the sum of the stage's rows in the table its
# triggers keep (migration 0014), a few rows whatever the stage's size; counting the studies
# took ~40 ms per decision at 1,000,000 (docs/benchmarks.md). SQLite: counted.
_WAITING_SQL = {
    "postgresql": "(SELECT COALESCE(SUM(w.delta), 0) FROM screening_stage_waiting w"
    " WHERE w.stage_id = %(stage)s)",
    "sqlite": f"(SELECT COUNT(*) FROM {_STUDY} s WHERE s.current_stage_id = %(stage)s"
    " AND s.outcome = %(screening)s)",
}


def _decided_sql(*, or_mine: bool) -> str:
    """The stage's waiting studies whose decisions are full or, with `or_mine`, include the
    reviewer's. PostgreSQL: the sums of the stage's rows in the table its triggers keep
    (migration 0015: "full" rows, reviewer NULL, and the reviewer's decided studies that are
    not full), a few rows whatever the stage's size; grouping the stage's decisions took 1.4 s
    per decision with 500,000 of them (docs/benchmarks.md). SQLite: grouped."""
    if connection.vendor == "postgresql":
        whose = (
            "(p.reviewer_id IS NULL OR p.reviewer_id = %(reviewer)s)"
            if or_mine
            else ("p.reviewer_id IS NULL")
        )
        return (
            "(SELECT COALESCE(SUM(p.delta), 0) FROM screening_stage_progress p"
            f" WHERE p.stage_id = %(stage)s AND {whose})"
        )
    having = "COUNT(*) >= %(required)s"
    if or_mine:
        having += " OR SUM(CASE WHEN d.reviewer_id = %(reviewer)s THEN 1 ELSE 0 END) > 0"
    return (
        f"(SELECT COUNT(*) FROM (SELECT d.study_id FROM {_DECISION} d JOIN {_STUDY} s"
        " ON s.id = d.study_id WHERE d.stage_id = %(stage)s AND s.current_stage_id = %(stage)s"
        f" AND s.outcome = %(screening)s GROUP BY d.study_id HAVING {having}) decided)"
    )


def _left_sql() -> str:
    return f"{_WAITING_SQL[connection.vendor]} - {_decided_sql(or_mine=True)}"


def stages_waiting(*, stages: Sequence[Stage]) -> dict[int, int]:
    """The studies waiting in each of `stages` (outcome "screening") by stage id: exact, in
    one short read."""
    if not stages:
        return {}
    columns = ", ".join(
        _WAITING_SQL[connection.vendor].replace("%(stage)s", f"%(stage_{i})s")
        for i in range(len(stages))
    )
    params: dict[str, Any] = {f"stage_{i}": stage.pk for i, stage in enumerate(stages)}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}", {**params, "screening": Study.Outcome.SCREENING.value})
        row = cursor.fetchone()
    return {stage.pk: int(waiting) for stage, waiting in zip(stages, row, strict=True)}


def _left_params(*, review: Review, stage: Stage, reviewer: User) -> dict[str, Any]:
    return {
        "review": review.pk,
        "stage": stage.pk,
        "reviewer": reviewer.pk,
        "required": stage.reviewers_required,
        "screening": Study.Outcome.SCREENING.value,
    }


def remaining_for_reviewer(*, review: Review, stage: Stage, reviewer: User) -> int:
    """Studies in `stage` still short of their required decisions that `reviewer` has not
    decided: what is left for this reviewer here. Exact (it moves with each decision), and
    blind-safe: another reviewer's decision only removes a study once its slots are full,
    whatever the verdicts.

    Counted as the stage's waiting studies (`stages_waiting`) minus those it has decisions for
    that are full or mine (`_decided_sql`: on PostgreSQL from counts its triggers keep). Per
    study subqueries took ~2 s for 100,000 studies (docs/benchmarks.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_left_sql()}", _left_params(review=review, stage=stage, reviewer=reviewer)
        )
        row = cursor.fetchone()
    return int(row[0])


def stage_with_work(*, review: Review, reviewer: User) -> Stage | None:
    """The first stage (in order) with studies left for this reviewer, or None."""
    for stage in review.stages.order_by("position", "id"):
        if remaining_for_reviewer(review=review, stage=stage, reviewer=reviewer):
            return stage
    return None


def outcomes_visible(*, review: Review, user: User) -> bool:
    """Whether this user may see conflicts, outcome counts and agreement figures.

    In blind mode they move with other reviewers' pending verdicts (a conflict count that
    rises after my decision tells me the other reviewer disagreed), so only those who resolve
    conflicts see them.
    """
    return not review.blind_mode or can_adjudicate(review=review, user=user)


@dataclass(frozen=True)
class Undoable:
    """The reviewer's most recent decision in the stage: what "Undo" withdraws."""

    study_id: int
    version: int


@dataclass(frozen=True)
class PanelState:
    """What the screening panel shows besides the study: progress, undo, the form's version."""

    progress: dict[str, Any]
    undoable: Undoable | None
    study_version: int  # the reviewer's decision on the shown study (0: none)


# The decisions of the reviewer in the stage ("mine") and of the stage ("team"). PostgreSQL: the
# sums of the rows its triggers keep (migration 0016), a few rows whatever the stage's size;
# counting them took hundreds of ms per decision with 500,000 (docs/benchmarks.md). SQLite:
# counted.
_DECISIONS_SQL = {
    "postgresql": "(SELECT COALESCE(SUM(c.delta), 0) FROM screening_stage_decisions c"
    " WHERE c.stage_id = %(stage)s{mine})",
    "sqlite": f"(SELECT COUNT(*) FROM {_DECISION} c WHERE c.stage_id = %(stage)s{{mine}})",
}


def stage_decisions_count(*, stage: Stage) -> int:
    """The stage's decisions, all reviewers: a few kept rows on PostgreSQL (`_DECISIONS_SQL`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_DECISIONS_SQL[connection.vendor].format(mine='')}", {"stage": stage.pk}
        )
        row = cursor.fetchone()
    return int(row[0])


def _panel_sql() -> str:
    """The reviewer's latest decision in the stage (one step of the index on stage, reviewer,
    created_at, id), their decision on the shown study (the unique one), the counts."""
    counted = _DECISIONS_SQL[connection.vendor]
    return (
        "SELECT latest.study_id, latest.version,"
        f" {counted.format(mine=' AND c.reviewer_id = %(reviewer)s')}, {_left_sql()},"
        f" (SELECT version FROM {_DECISION} WHERE study_id = %(study)s"
        " AND stage_id = %(stage)s AND reviewer_id = %(reviewer)s),"
        f" {counted.format(mine='')},"
        f" {_WAITING_SQL[connection.vendor]} - {_decided_sql(or_mine=False)}"
        " FROM (SELECT 1) one LEFT JOIN"
        f" (SELECT study_id, version FROM {_DECISION}"
        " WHERE stage_id = %(stage)s AND reviewer_id = %(reviewer)s"
        " ORDER BY created_at DESC, id DESC LIMIT 1) latest ON 1 = 1"
    )


def screening_panel_state(
    *, review: Review, stage: Stage, reviewer: User, study: Study | None
) -> PanelState:
    """The panel's figures in one statement, each exact (it moves with each decision): the
    reviewer's latest decision in the stage (for Undo), their decisions there ("mine"), what is
    left for them (see `remaining_for_reviewer`), the version of their decision on `study` for
    its form, the stage's decisions ("team") and the studies still short of their required
    decisions ("remaining": the waiting ones less the full ones, see `_decided_sql`; it moves
    the same way whatever the verdicts, so blind mode shows it)."""
    params = _left_params(review=review, stage=stage, reviewer=reviewer)
    params["study"] = study.pk if study is not None else None
    with connection.cursor() as cursor:
        cursor.execute(_panel_sql(), params)
        latest_study, latest_version, mine, left, version, team, remaining = cursor.fetchone()
    return PanelState(
        progress={
            "mine": int(mine),
            "left": int(left),
            "team": int(team),
            "remaining": int(remaining),
        },
        undoable=Undoable(latest_study, latest_version) if latest_study is not None else None,
        study_version=version or 0,
    )


def stage_overview(*, review: Review, user: User) -> list[dict[str, Any]]:
    """Each stage with its studies needing decisions, decisions, and (when the user may see
    them, see `outcomes_visible`) studies waiting, resolutions by verdict and conflicts."""
    stages = list(review.stages.all())
    needing = dict(
        _needing_decisions(review=review)
        .values_list("current_stage")
        .annotate(n=Count("id"))
        .order_by()
    )
    decided = dict(
        Decision.objects.filter(review=review).values_list("stage").annotate(n=Count("id"))
    )
    rows: list[dict[str, Any]] = [
        {
            "stage": stage,
            "needing": needing.get(stage.pk, 0),
            "decisions": decided.get(stage.pk, 0),
            "outcomes_visible": False,
        }
        for stage in stages
    ]
    if not outcomes_visible(review=review, user=user):
        return rows
    waiting = dict(
        Study.objects.filter(review=review, outcome=Study.Outcome.SCREENING)
        .values_list("current_stage")
        .annotate(n=Count("id"))
    )
    resolved: dict[int, dict[str, int]] = {}
    for stage_id, verdict, n in (
        Resolution.objects.filter(review=review)
        .values_list("stage", "verdict")
        .annotate(n=Count("id"))
    ):
        resolved.setdefault(stage_id, {})[verdict] = n
    # One row per conflict (they are few); grouping again over the annotated count would
    # multiply the joined rows.
    conflicts = Counter(conflicts_pending(review=review).values_list("current_stage", flat=True))
    for row in rows:
        pk = row["stage"].pk
        row.update(
            outcomes_visible=True,
            waiting=waiting.get(pk, 0),
            resolved=resolved.get(pk, {}),
            resolved_total=sum(resolved.get(pk, {}).values()),
            conflicts=conflicts.get(pk, 0),
        )
    return rows


def conflicts_pending(*, review: Review, stage: Stage | None = None) -> QuerySet[Study]:
    """Studies whose required decisions are in but disagree (derived, never a stored flag)."""
    queryset = Study.objects.filter(review=review, outcome=Study.Outcome.SCREENING).annotate(
        n_decisions=Count("decisions", filter=Q(decisions__stage=F("current_stage")))
    )
    if stage is not None:
        queryset = queryset.filter(current_stage=stage)
    return queryset.filter(n_decisions__gte=F("current_stage__reviewers_required")).filter(
        ~Exists(Resolution.objects.filter(study=OuterRef("pk"), stage=OuterRef("current_stage")))
    )


def conflicts_for_adjudicator(*, review: Review, user: User) -> list[dict[str, Any]]:
    """Every conflict with all its decisions, reasons and notes (adjudicators only).

    `party` marks the conflicts this user took part in, which another adjudicator resolves
    unless the stage lets parties resolve; `reason_conflict` those where full-text reviewers
    agree to exclude but name different reasons.
    """
    studies = list(
        conflicts_pending(review=review)
        .select_related("current_stage", "full_text")
        .order_by("id")[:200]
    )
    decisions = (
        Decision.objects.filter(study__in=studies)
        .select_related("reviewer", "stage")
        .prefetch_related("reasons")
        .order_by("reviewer__username")
    )
    stage_of = {study.pk: study.current_stage_id for study in studies}
    by_study: dict[int, list[Decision]] = {}
    for decision in decisions:
        if decision.stage_id == stage_of[decision.study_id]:
            by_study.setdefault(decision.study_id, []).append(decision)
    rows: list[dict[str, Any]] = []
    for study in studies:
        stage = study.current_stage
        if stage is None:  # a conflict is always at a stage (conflicts_pending)
            continue
        mine = by_study.get(study.pk, [])
        rows.append(
            {
                "study": study,
                "decisions": mine,
                "party": not stage.parties_may_resolve
                and any(d.reviewer_id == user.pk for d in mine),
                "reason_conflict": is_reason_conflict(stage=stage, decisions=mine),
            }
        )
    return rows


def decisions_visible(*, review: Review, study: Study, user: User) -> list[Decision]:
    """The decisions on a study that this user may see (see `decisions_visible_by_study`)."""
    return decisions_visible_by_study(review=review, study_ids=[study.pk], user=user).get(
        study.pk, []
    )


def decisions_visible_by_study(
    *, review: Review, study_ids: list[int], user: User
) -> dict[int, list[Decision]]:
    """The decisions on these studies that this user may see, by study id.

    Blind mode: another reviewer's decision shows only once the study's stage is resolved,
    or, to an adjudicator, once all the stage's decisions are in and disagree.
    """
    decisions = list(
        Decision.objects.filter(review=review, study_id__in=study_ids)
        .select_related("reviewer", "stage")
        .prefetch_related("reasons")
        .order_by("study_id", "stage__position", "reviewer__username")
    )
    if review.blind_mode:
        resolved = set(
            Resolution.objects.filter(study_id__in=study_ids).values_list("study_id", "stage_id")
        )
        adjudicator = can_adjudicate(review=review, user=user)
        counts = Counter((d.study_id, d.stage_id) for d in decisions)

        def visible(decision: Decision) -> bool:
            key = (decision.study_id, decision.stage_id)
            if decision.reviewer_id == user.pk or key in resolved:
                return True
            return adjudicator and counts[key] >= decision.stage.reviewers_required

        decisions = [d for d in decisions if visible(d)]
    by_study: dict[int, list[Decision]] = {}
    for decision in decisions:
        by_study.setdefault(decision.study_id, []).append(decision)
    return by_study


def adjudicator_choices(*, review: Review) -> dict[str, Any]:
    members = Membership.objects.filter(
        review=review, role__in=[Membership.Role.OWNER, Membership.Role.REVIEWER]
    ).select_related("user")
    designated = set(Adjudicator.objects.filter(review=review).values_list("user_id", flat=True))
    return {
        "members": [m for m in members if m.role == Membership.Role.REVIEWER],
        "designated": designated,
    }


def fulltext_studies(*, review: Review) -> QuerySet[Study]:
    """Studies waiting at a full-text stage, and those whose full text was not retrievable."""
    return (
        Study.objects.filter(
            review=review,
            current_stage__kind=Stage.Kind.FULL_TEXT,
            outcome__in=[Study.Outcome.SCREENING, Study.Outcome.NOT_RETRIEVED],
        )
        .select_related("current_stage", "full_text")
        .order_by("outcome", "title", "id")
    )


def fulltext_counts(*, review: Review) -> dict[str, int]:
    studies = Study.objects.filter(review=review, current_stage__kind=Stage.Kind.FULL_TEXT)
    return {
        "waiting": studies.filter(outcome=Study.Outcome.SCREENING).count(),
        "with_pdf": studies.filter(
            outcome=Study.Outcome.SCREENING, full_text__status="uploaded"
        ).count(),
        "not_retrieved": studies.filter(outcome=Study.Outcome.NOT_RETRIEVED).count(),
    }
