"""Screening writes: claiming the next study, decisions, undo, skips, conflicts, blind mode.

Concurrency: every write that counts a study's decisions first locks the study row
(`SELECT ... FOR NO KEY UPDATE`), so the count it reads cannot change under it. Handing out work
locks candidate rows with `SKIP LOCKED` and re-counts after the lock, so two reviewers asking at
once never both take a study's last free slot. The ranking's priorities live in their own table
(StudyPriority): writing them never touches, locks or waits for a study row.
"""

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ..domain.routing import RoutingError, StageRoutes, consensus, route
from ..models import (
    Adjudicator,
    Criterion,
    Decision,
    FullText,
    Membership,
    RankingRun,
    RankingSettings,
    Resolution,
    Review,
    ScreeningClaim,
    Stage,
    Study,
    StudyPriority,
)
from ..models.records import STUDY_SHUFFLE_MODULUS, STUDY_SHUFFLE_MULTIPLIER
from ..selectors.prepared import PreparedStatement
from ..selectors.rows import model_columns, model_instances, model_rows
from ..selectors.screening import (
    can_adjudicate,
    reasons_allowed,
    reasons_differ,
    stage_get,
)
from . import funnel, ranking
from .after_response import after_response
from .audit import audit_event_record
from .stale import version_check

_Row = TypeVar("_Row", Decision, Resolution)

VERDICTS = set(Decision.Verdict.values)


def claim_ttl() -> timedelta:
    return timedelta(minutes=getattr(settings, "SCREENING_CLAIM_MINUTES", 30))


def _routes(stage: Stage) -> StageRoutes:
    return StageRoutes(stage.key, stage.route_include, stage.route_uncertain, stage.route_exclude)


def _check_scope(*, review: Review, study: Study, stage: Stage) -> None:
    if study.review_id != review.pk or stage.review_id != review.pk:
        raise ValidationError("This study or stage belongs to another review.")


def _clean_reasons(
    *,
    stage: Stage,
    verdict: str,
    reasons: Iterable[Criterion | int],
    offered: list[Criterion] | None = None,
) -> list[Criterion]:
    """The chosen reasons as criteria of the stage; `offered` saves reading them again."""
    if verdict not in VERDICTS:
        raise ValidationError(f"Unknown verdict {verdict!r}.")
    wanted = {r.pk if isinstance(r, Criterion) else r for r in reasons}
    if wanted and verdict != Decision.Verdict.EXCLUDE:
        raise ValidationError("Reasons are given only with an exclusion.")
    if verdict == Decision.Verdict.EXCLUDE and stage.reasons_required and not wanted:
        raise ValidationError(f"{stage.name}: choose at least one exclusion reason.")
    if not wanted:
        return []
    allowed = {c.pk: c for c in (reasons_allowed(stage=stage) if offered is None else offered)}
    if wanted - set(allowed):
        raise ValidationError("A reason is not one of this stage's exclusion reasons.")
    return [allowed[pk] for pk in sorted(wanted)]


def _lock_study(study_id: int, review: Review | None = None) -> Study:
    """The study's row, locked until the transaction ends (read in SQL, see `model_columns`);
    with `review`, a study of another review is not found."""
    # NO KEY UPDATE (see `_pick_statement`): a priority row's foreign key check does not wait
    # for it.
    if connection.features.has_select_for_no_key_update:
        lock = " FOR NO KEY UPDATE"
    else:
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    scope, params = (
        ("", [study_id]) if review is None else (" AND review_id = %s", [study_id, review.pk])
    )
    rows = model_rows(
        Study, f"SELECT {model_columns(Study)} FROM {_STUDY} WHERE id = %s{scope}{lock}", params
    )
    if not rows:
        raise Study.DoesNotExist(f"No study {study_id}.")
    return rows[0][0]


def _check_open(*, study: Study, stage: Stage) -> None:
    if study.outcome != Study.Outcome.SCREENING or study.current_stage_id != stage.pk:
        raise ValidationError("This study is no longer waiting in this stage.")


class _Slots(NamedTuple):
    """A locked study's slots as the deciding reviewer finds them (`_slots_take`)."""

    mine: int | None  # the reviewer's own decision's id, if any
    others: int  # the other reviewers' decisions
    claimed: int  # the other reviewers' live claims


def _slots_take(*, review: Review, study: Study, stage: Stage, reviewer: User) -> _Slots:
    """The reviewer's decision and the others' decisions and live claims on the study, in one
    fresh read (call it under the study's lock), ending the reviewer's own claim on it: their
    decision is what the claim waited for, and a refused decision rolls the transaction back,
    claim included. Only owners and reviewers screen: the same statement reads the reviewer's
    role, and a viewer or an outsider is refused before anything else is written. On
    PostgreSQL all of it is one statement (the claim's DELETE in a WITH clause, which SQLite
    does not have): two round trips less on every decision."""
    decisions, claims = _taken_sql("%(study)s")
    params = _claim_params(review=review, stage=stage, reviewer=reviewer, now=timezone.now())
    mine = (
        f"(SELECT id FROM {_DECISION} m WHERE m.study_id = %(study)s"
        " AND m.stage_id = %(stage)s AND m.reviewer_id = %(reviewer)s)"
    )
    screens = (
        f"EXISTS (SELECT 1 FROM {Membership._meta.db_table} WHERE review_id = %(review)s"
        " AND user_id = %(reviewer)s AND role IN (%(owner)s, %(role_reviewer)s))"
    )
    roles = {
        "owner": Membership.Role.OWNER.value,
        "role_reviewer": Membership.Role.REVIEWER.value,
    }
    release = (
        f"DELETE FROM {_CLAIM} WHERE study_id = %(study)s AND stage_id = %(stage)s"
        " AND reviewer_id = %(reviewer)s"
    )
    read = f"SELECT {screens}, {mine}, {decisions}, {claims}"
    values = {**params, **roles, "study": study.pk}
    # On PostgreSQL the SELECT sees the rows as they were before the DELETE, and counts only
    # the other reviewers' claims anyway.
    in_one = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"WITH released AS ({release}) {read}" if in_one else read, values)
        allowed, mine_id, others, claimed = cursor.fetchone()
        if not in_one:
            cursor.execute(release, values)
    if not allowed:
        raise PermissionDenied("Only the review's reviewers and owners screen studies.")
    return _Slots(mine_id, int(others), int(claimed))


def _claim_upsert(
    *,
    review: Review,
    study: Study,
    stage: Stage,
    reviewer: User,
    now: datetime,
    skipped: bool = False,
) -> None:
    """Create or refresh the reviewer's claim in one statement (INSERT ... ON CONFLICT)."""
    expires = now if skipped else now + claim_ttl()
    ScreeningClaim.objects.bulk_create(
        [
            ScreeningClaim(
                review=review,
                study=study,
                stage=stage,
                reviewer=reviewer,
                claimed_at=now,
                expires_at=expires,
                skipped=skipped,
            )
        ],
        update_conflicts=True,
        unique_fields=["study", "stage", "reviewer"],
        update_fields=["claimed_at", "expires_at", "skipped"],
    )


def _decision_snapshot(
    decision: Decision, reasons: Iterable[Criterion] | None = None
) -> dict[str, Any]:
    reasons = list(decision.reasons.all()) if reasons is None else list(reasons)
    return {
        "study": decision.study_id,
        "stage": decision.stage.key,
        "reviewer": decision.reviewer_id,
        "verdict": decision.verdict,
        "reasons": [c.code for c in reasons],
        "note": decision.note,
        "version": decision.version,
    }


def _decision_label(decision: Decision) -> str:
    """A decision as its reviewer reads it: "exclude (EC1, EC2)"."""
    codes = [c.code for c in decision.reasons.all()]
    label = Decision.Verdict(decision.verdict).label.lower()
    return f"{label} ({', '.join(codes)})" if codes else label


def _in_conflict(*, study: Study, stage: Stage) -> bool:
    """The stage's required decisions are in, disagree, and no one has settled them yet."""
    return (
        Decision.objects.filter(study=study, stage=stage).count() >= stage.reviewers_required
        and not Resolution.objects.filter(study=study, stage=stage).exists()
    )


FINAL_IN_CONFLICT = (
    "Your decision on this study is final: the reviewers disagree and an adjudicator settles it."
)


def _side_effects_on_commit(*, review: Review, stage: Stage, resolved: bool) -> None:
    """Ask the ranking and funnel areas to refresh once the decision is committed.

    The ranking's "is a training due?" check runs after the answer is sent (`after_response`):
    the reviewer does not wait for it, and a check lost with its process is made again by the
    next decision.
    """
    transaction.on_commit(
        lambda: after_response(lambda: ranking.ranking_schedule_if_due(review=review, stage=stage))
    )
    if resolved:
        funnel.funnel_schedule(review_id=review.pk)


def _apply_resolution(
    *,
    review: Review,
    study: Study,
    stage: Stage,
    verdict: str,
    method: str,
    reasons: Iterable[Criterion],
    primary_reason: Criterion | None = None,
    decided_by: User | None = None,
    note: str = "",
    version: int = 1,
    action: str = "resolution.record",
    replaced: dict[str, Any] | None = None,
) -> Resolution:
    try:
        destination = route(_routes(stage), verdict)
    except RoutingError as error:
        raise ValidationError(str(error)) from error
    reasons = list(reasons)
    now = timezone.now()
    resolution = _row_insert(
        Resolution,
        {
            "review_id": review.pk,
            "study_id": study.pk,
            "stage_id": stage.pk,
            "verdict": verdict,
            "method": method,
            "primary_reason_id": primary_reason.pk if primary_reason else None,
            "decided_by_id": decided_by.pk if decided_by else None,
            "note": note,
            "version": version,
            "created_at": now,
        },
    )
    resolution.study, resolution.stage = study, stage
    resolution.primary_reason, resolution.decided_by = primary_reason, decided_by
    if reasons:  # a new resolution has none to clear
        resolution.reasons.set(reasons)
    before = replaced or {"stage": stage.key, "outcome": study.outcome}
    if destination.outcome is not None:  # terminal
        # The study keeps the stage it left from, so lists can say where it was decided.
        study.outcome = destination.outcome
    else:
        following = stage_get(review=review, key=destination.stage_key or "")
        if following is None:
            raise Stage.DoesNotExist(f"No stage {destination.stage_key!r}.")
        study.current_stage = following
    study.updated_at = now
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_STUDY} SET current_stage_id = %s, outcome = %s, updated_at = %s"
            " WHERE id = %s",
            [
                study.current_stage_id,
                study.outcome,
                connection.ops.adapt_datetimefield_value(now),
                study.pk,
            ],
        )
        # every reviewer's claim on it in the stage is done
        cursor.execute(
            f"DELETE FROM {_CLAIM} WHERE study_id = %s AND stage_id = %s", [study.pk, stage.pk]
        )
    audit_event_record(
        review=review,
        actor=decided_by,
        action=action,
        obj=resolution,
        before=before,
        after={
            "study": study.pk,
            "stage": stage.key,
            "verdict": verdict,
            "method": method,
            "reasons": [c.code for c in reasons],
            "primary_reason": primary_reason.code if primary_reason else None,
            "note": note,
            "version": version,
            "next_stage": destination.stage_key,
            "outcome": study.outcome,
        },
    )
    return resolution


def _stage_decisions_read(*, study: Study, stage: Stage) -> list[tuple[str, list[int]]]:
    """The verdict and reason ids (in the criteria's order) of each decision on the study in
    the stage, in the decisions' order: one statement (SQL, see `model_columns`)."""
    reasons = Decision.reasons.through._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.id, d.verdict, r.criterion_id FROM {_DECISION} d"
            f" LEFT JOIN {reasons} r ON r.decision_id = d.id"
            f" LEFT JOIN {Criterion._meta.db_table} c ON c.id = r.criterion_id"
            " WHERE d.study_id = %s AND d.stage_id = %s"
            f" ORDER BY d.created_at, d.id, c.kind, c.{quote('position')}, c.id",
            [study.pk, stage.pk],
        )
        rows = cursor.fetchall()
    decisions: dict[int, tuple[str, list[int]]] = {}
    for decision_id, verdict, reason_id in rows:
        _verdict, reason_ids = decisions.setdefault(decision_id, (verdict, []))
        if reason_id is not None:
            reason_ids.append(reason_id)
    return list(decisions.values())


def _settle(
    *, review: Review, study: Study, stage: Stage, offered: list[Criterion] | None = None
) -> Resolution | None:
    """Apply the consensus rule once the stage's required decisions are in. `offered` is the
    stage's `reasons_allowed`, when the caller has already read it."""
    decisions = _stage_decisions_read(study=study, stage=stage)
    if len(decisions) < stage.reviewers_required:
        return None
    verdict = consensus([v for v, _reasons in decisions], stage.consensus_rule)
    if verdict is None:
        return None  # a conflict: it waits in the conflicts queue
    reason_ids: dict[int, None] = {}  # in order, once each
    if verdict == Decision.Verdict.EXCLUDE:
        excluding = [ids for v, ids in decisions if v == Decision.Verdict.EXCLUDE]
        if stage.kind == Stage.Kind.FULL_TEXT and reasons_differ(excluding):
            # PRISMA reports one reason per excluded report: the adjudicator picks it.
            return None
        reason_ids = {pk: None for ids in excluding for pk in ids}
    known = {c.pk: c for c in offered or ()}
    missing = [pk for pk in reason_ids if pk not in known]
    if missing:  # a reason no longer offered in the stage still counts
        known.update(Criterion.objects.in_bulk(missing))
    return _apply_resolution(
        review=review,
        study=study,
        stage=stage,
        verdict=verdict,
        method=Resolution.Method.AGREEMENT,
        reasons=[known[pk] for pk in reason_ids],
    )


def _decision_mine_check(
    *, locked: Study, stage: Stage, mine: int | None, seen_version: int | None, force: bool
) -> Decision | None:
    """The reviewer's decision (`mine`: its id) on the locked study, once the form's version is
    checked."""
    decision = None
    if mine is not None:
        decision = Decision.objects.select_related("reviewer").get(pk=mine)
    if decision is not None and _in_conflict(study=locked, stage=stage):
        raise ValidationError(FINAL_IN_CONFLICT)
    _decision_version_check(
        decision=decision, seen_version=seen_version, force=force, missing="it was undone"
    )
    return decision


def _decision_version_check(
    *, decision: Decision | None, seen_version: int | None, force: bool, missing: str
) -> None:
    """The version contract for the reviewer's own decision (`missing`: why there is none)."""
    version_check(
        stored_version=decision.version if decision else 0,
        seen_version=seen_version,
        force=force,
        what="your decision on this study",
        current=_decision_label(decision) if decision else f"no decision ({missing})",
        by=decision.reviewer.get_username() if decision else "",
        at=decision.updated_at if decision else None,
    )


def _decision_change(*, decision: Decision, verdict: str, note: str) -> dict[str, Any]:
    """Overwrite the reviewer's verdict in place; returns the snapshot it replaced."""
    before = _decision_snapshot(decision)
    decision.verdict = verdict
    decision.note = note
    decision.version = F("version") + 1
    decision.save(update_fields=["verdict", "note", "version", "updated_at"])
    decision.refresh_from_db(fields=["version"])
    return before


def _row_insert(model: type[_Row], values: dict[str, Any]) -> _Row:
    """Insert one row of `model` (`values` by attribute name, every field but the id) in one
    SQL statement and answer it as an instance: every decision inserts its decision, and a
    settling one its resolution, where the ORM's insert cost ~0.5 ms of CPU to build."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(values)})"
            f" VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
            [adapt(v) if isinstance(v, datetime) else v for v in values.values()],
        )
        (row_id,) = cursor.fetchone()
    return model.from_db(connection.alias, ["id", *values], [row_id, *values.values()])


def _decision_create(
    *,
    review: Review,
    locked: Study,
    stage: Stage,
    reviewer: User,
    verdict: str,
    note: str,
    slots: _Slots,
) -> Decision:
    """A first decision, if a slot is free (`slots` read under the study's lock)."""
    if slots.others + slots.claimed >= stage.reviewers_required:
        raise ValidationError("This study already has the decisions it needs; take the next one.")
    now = timezone.now()
    decision = _row_insert(
        Decision,
        {
            "review_id": review.pk,
            "study_id": locked.pk,
            "stage_id": stage.pk,
            "reviewer_id": reviewer.pk,
            "verdict": verdict,
            "note": note,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    decision.study, decision.stage, decision.reviewer = locked, stage, reviewer
    return decision


def decision_record(
    *,
    review: Review,
    study: Study | int,
    stage: Stage,
    reviewer: User,
    verdict: str,
    reasons: Iterable[Criterion | int] = (),
    note: str = "",
    seen_version: int | None = None,
    force: bool = False,
    offered: list[Criterion] | None = None,
) -> Decision:
    """Record (or, before the stage is resolved, change) a reviewer's verdict on a study.

    `study` is the study or its id: the screening page passes the id its form posted, and the
    study is read once, locked (a study of another review is `Study.DoesNotExist`, as if it did
    not exist); a study passed as an instance gets the outcome the decision gave it.

    `seen_version` is the version of this reviewer's decision the form showed (0: none); a
    decision changed since (another tab) is refused with `StaleWrite` unless `force`. A
    decision in a conflict is final: the adjudicator settles the study. `offered` is the
    stage's `reasons_allowed`, when the caller has already read it.

    When the stage's required decisions are in, the consensus rule either resolves the study
    and routes it, or leaves it in the conflicts queue.
    """
    if isinstance(study, Study):
        _check_scope(review=review, study=study, stage=stage)
    elif stage.review_id != review.pk:
        raise ValidationError("This study or stage belongs to another review.")
    cleaned = _clean_reasons(stage=stage, verdict=verdict, reasons=reasons, offered=offered)
    note = (note or "").strip()
    with transaction.atomic():
        locked = _lock_study(study.pk if isinstance(study, Study) else study, review=review)
        slots = _slots_take(review=review, study=locked, stage=stage, reviewer=reviewer)
        _check_open(study=locked, stage=stage)
        decision = _decision_mine_check(
            locked=locked, stage=stage, mine=slots.mine, seen_version=seen_version, force=force
        )
        if decision is not None:
            before: dict[str, Any] | None = _decision_change(
                decision=decision, verdict=verdict, note=note
            )
            action = "decision.overwrite" if force else "decision.change"
            due = True
        else:
            before = None
            decision = _decision_create(
                review=review,
                locked=locked,
                stage=stage,
                reviewer=reviewer,
                verdict=verdict,
                note=note,
                slots=slots,
            )
            action = "decision.overwrite" if force else "decision.record"
            due = slots.others + 1 >= stage.reviewers_required
        if before is not None or cleaned:
            decision.reasons.set(cleaned)
        audit_event_record(
            review=review,
            actor=reviewer,
            action=action,
            obj=decision,
            before=before,
            after=_decision_snapshot(decision, cleaned),
        )
        resolution = (
            _settle(review=review, study=locked, stage=stage, offered=offered) if due else None
        )
        _side_effects_on_commit(review=review, stage=stage, resolved=resolution is not None)
    if isinstance(study, Study):
        study.current_stage_id, study.outcome = locked.current_stage_id, locked.outcome
    return decision


def decision_undo(
    *,
    review: Review,
    stage: Stage,
    reviewer: User,
    study: Study,
    seen_version: int | None = None,
    force: bool = False,
) -> Decision:
    """Withdraw the reviewer's decision on `study` and hand the study back to them.

    The undo form names the decision it showed and its version; a decision changed or undone
    since (another tab) is refused with `StaleWrite` unless `force`. A decision in a conflict is
    final (the adjudicator settles it). A resolution reached by agreement is withdrawn with it
    while the study has not been screened further; an adjudicated outcome stands.
    """
    _check_scope(review=review, study=study, stage=stage)
    with transaction.atomic():
        locked = _lock_study(study.pk)
        decision = (
            Decision.objects.select_for_update(of=("self",))
            .select_related("reviewer")
            .filter(study=locked, stage=stage, reviewer=reviewer)
            .first()
        )
        _decision_version_check(
            decision=decision, seen_version=seen_version, force=force, missing="already undone"
        )
        if decision is None:
            raise ValidationError("You have no decision on this study to undo.")
        if _in_conflict(study=locked, stage=stage):
            raise ValidationError(FINAL_IN_CONFLICT)
        resolution = Resolution.objects.filter(study=locked, stage=stage).first()
        if resolution is not None:
            _resolution_withdraw(review=review, study=locked, stage=stage, resolution=resolution)
        elif locked.outcome != Study.Outcome.SCREENING or locked.current_stage_id != stage.pk:
            raise ValidationError("This study has left the stage; its decision can't be undone.")
        before = _decision_snapshot(decision)
        decision_pk = decision.pk
        decision.delete()
        _claim_upsert(
            review=review, study=locked, stage=stage, reviewer=reviewer, now=timezone.now()
        )
        audit_event_record(
            review=review,
            actor=reviewer,
            action="decision.overwrite" if force else "decision.undo",
            object_type="decision",
            object_id=decision_pk,
            before=before,
        )
        _side_effects_on_commit(review=review, stage=stage, resolved=resolution is not None)
    decision.study = locked
    return decision


def _resolution_withdraw(
    *,
    review: Review,
    study: Study,
    stage: Stage,
    resolution: Resolution,
    adjudicated_too: bool = False,
) -> None:
    if resolution.method != Resolution.Method.AGREEMENT and not adjudicated_too:
        raise ValidationError(
            "An adjudicator settled this study; ask them to change the outcome instead."
        )
    moved_on = study.current_stage_id != stage.pk
    next_stage_id = study.current_stage_id
    if (
        moved_on
        and next_stage_id is not None
        and (
            Decision.objects.filter(study=study, stage_id=next_stage_id).exists()
            or Resolution.objects.filter(study=study, stage_id=next_stage_id).exists()
        )
    ):
        raise ValidationError("This study is already being screened in the next stage.")
    if study.outcome == Study.Outcome.NOT_RETRIEVED or (
        moved_on and study.outcome != Study.Outcome.SCREENING
    ):
        raise ValidationError("This study's outcome has been settled further on.")
    before = {"stage": study.current_stage.key if study.current_stage else None}
    before["outcome"] = study.outcome
    ScreeningClaim.objects.filter(study=study).exclude(stage=stage).delete()
    resolution.delete()
    study.current_stage = stage
    study.outcome = Study.Outcome.SCREENING
    study.save(update_fields=["current_stage", "outcome", "updated_at"])
    audit_event_record(
        review=review,
        actor=None,
        action="resolution.withdraw",
        object_type="resolution",
        object_id=study.pk,
        before=before,
        after={"stage": stage.key, "outcome": study.outcome},
    )


def _resolution_label(resolution: Resolution) -> str:
    codes = [c.code for c in resolution.reasons.all()]
    label = Resolution.Verdict(resolution.verdict).label.lower()
    if codes:
        label += f" ({', '.join(codes)})"
    return f"{label}, {resolution.get_method_display().lower()}"


def _primary_reason(
    *, stage: Stage, reasons: list[Criterion], primary: Criterion | int | None
) -> Criterion | None:
    """The reason an adjudicated exclusion counts under: chosen, or the only one given."""
    if not reasons:
        return None
    if primary is not None:
        chosen = {c.pk: c for c in reasons}.get(
            primary.pk if isinstance(primary, Criterion) else primary
        )
        if chosen is None:
            raise ValidationError("The reason that counts must be one of the reasons chosen.")
        return chosen
    if len(reasons) == 1:
        return reasons[0]
    if stage.kind == Stage.Kind.FULL_TEXT:
        raise ValidationError("Choose the reason that counts (PRISMA reports one per report).")
    return None


def _check_adjudicator(*, review: Review, study: Study, stage: Stage, adjudicator: User) -> None:
    """The owner or a designated adjudicator; a party to the conflict only if the stage allows."""
    if not can_adjudicate(review=review, user=adjudicator):
        raise PermissionDenied("Only the owner or a designated adjudicator resolves conflicts.")
    if (
        not stage.parties_may_resolve
        and Decision.objects.filter(study=study, stage=stage, reviewer=adjudicator).exists()
    ):
        raise PermissionDenied(
            "You took part in this conflict: another adjudicator resolves it "
            "(the owner can allow parties to resolve in the stage settings)."
        )


def _check_override_note(*, verdicts: list[str], verdict: str, note: str) -> None:
    """A note is owed only when the outcome overrides every reviewer (sides with none)."""
    if verdict not in verdicts and not note:
        raise ValidationError(
            "This outcome differs from every reviewer's decision: say why in the note."
        )


def _resolution_replace(
    *, review: Review, study: Study, stage: Stage, seen_version: int | None, force: bool
) -> tuple[dict[str, object] | None, int]:
    """Check the version the form showed and withdraw a stored outcome it may replace.

    Returns what was replaced (for the audit event) and the new outcome's version.
    """
    existing = (
        Resolution.objects.filter(study=study, stage=stage).select_related("decided_by").first()
    )
    version_check(
        stored_version=existing.version if existing else 0,
        seen_version=seen_version,
        force=force,
        what="the outcome of this conflict",
        current=_resolution_label(existing) if existing else "unresolved",
        by=existing.decided_by.get_username() if existing and existing.decided_by else "",
        at=existing.created_at if existing else None,
    )
    if existing is None:
        return None, 1
    replaced: dict[str, object] = {
        "verdict": existing.verdict,
        "method": existing.method,
        "reasons": [c.code for c in existing.reasons.all()],
        "decided_by": existing.decided_by_id,
        "version": existing.version,
    }
    _resolution_withdraw(
        review=review, study=study, stage=stage, resolution=existing, adjudicated_too=True
    )
    return replaced, existing.version + 1


def conflict_resolve(
    *,
    review: Review,
    study: Study,
    stage: Stage,
    adjudicator: User,
    verdict: str,
    reasons: Iterable[Criterion | int] = (),
    primary_reason: Criterion | int | None = None,
    note: str = "",
    seen_version: int | None = None,
    force: bool = False,
) -> Resolution:
    """Settle a study whose decisions disagree.

    The note is required only when the outcome overrides both reviewers. `seen_version` is the
    version of the stage's outcome the form showed (0: none yet); an outcome recorded since
    (another adjudicator, another tab) is refused with `StaleWrite` unless `force`, which
    replaces it (audited) while the study has not moved further on.
    """
    _check_scope(review=review, study=study, stage=stage)
    _check_adjudicator(review=review, study=study, stage=stage, adjudicator=adjudicator)
    cleaned = _clean_reasons(stage=stage, verdict=verdict, reasons=reasons)
    primary = _primary_reason(stage=stage, reasons=cleaned, primary=primary_reason)
    note = (note or "").strip()
    with transaction.atomic():
        locked = _lock_study(study.pk)
        replaced, version = _resolution_replace(
            review=review, study=locked, stage=stage, seen_version=seen_version, force=force
        )
        _check_open(study=locked, stage=stage)
        verdicts = list(
            Decision.objects.filter(study=locked, stage=stage).values_list("verdict", flat=True)
        )
        if len(verdicts) < stage.reviewers_required:
            raise ValidationError("This study still waits for its reviewers' decisions.")
        _check_override_note(verdicts=verdicts, verdict=verdict, note=note)
        action = "resolution.record" if replaced is None else "resolution.change"
        resolution = _apply_resolution(
            review=review,
            study=locked,
            stage=stage,
            verdict=verdict,
            method=Resolution.Method.ADJUDICATION,
            reasons=cleaned,
            primary_reason=primary,
            decided_by=adjudicator,
            note=note,
            version=version,
            action="resolution.overwrite" if replaced is not None and force else action,
            replaced=replaced,
        )
        _side_effects_on_commit(review=review, stage=stage, resolved=True)
    study.refresh_from_db(fields=["current_stage", "outcome"])
    return resolution


# The claim in SQL. Built through the ORM (nested per-study count subqueries, anti-joins),
# these statements cost the web process more CPU to compile than PostgreSQL takes to run them,
# and every decision pays them (docs/benchmarks.md, "HTTP latency"). The text depends only on
# the stage's queue order, the pass and the database, so it is built once per process.
_STUDY = Study._meta.db_table
_DECISION = Decision._meta.db_table
_CLAIM = ScreeningClaim._meta.db_table
_RANKING_RUN = RankingRun._meta.db_table
_RANKING_SETTINGS = RankingSettings._meta.db_table
_PRIORITY = StudyPriority._meta.db_table


def _taken_sql(study: str) -> tuple[str, str]:
    """The other reviewers' decisions and live claims on `study` (two SQL count expressions)."""
    return (
        f"(SELECT COUNT(*) FROM {_DECISION} d WHERE d.study_id = {study}"
        " AND d.stage_id = %(stage)s AND d.reviewer_id <> %(reviewer)s)",
        f"(SELECT COUNT(*) FROM {_CLAIM} c WHERE c.study_id = {study}"
        " AND c.stage_id = %(stage)s AND c.reviewer_id <> %(reviewer)s"
        " AND NOT c.skipped AND c.expires_at > %(now)s)",
    )


class _Queue(NamedTuple):
    """One of a stage's queues in SQL: the rows it reads (`s` is the study, or with `ranked`
    `p` is the stage's priority rows, each study probed by `_pick_statement`), what it keeps of them
    and in which order it serves them."""

    source: str
    where: str
    order: str
    ranked: bool = False


# The ranked queue walks the stage's StudyPriority rows in their index (stage, priority DESC,
# study) and joins each to its study; the unranked one walks the stage's studies by id
# (`study_queue_unranked`) and keeps those without a row for this stage. A row written by
# another stage's ranking (the study has moved on since) does not rank it here. The unranked
# test is a scalar subquery (one primary key probe per study read), not NOT EXISTS: PostgreSQL
# planned that anti-join as a merge join reading the priority table from its first row, every
# review's and stage's rows (200 ms with 20,000 rows, docs/benchmarks.md).
_RANKED_ORDER = "p.priority DESC, p.study_id"
# Ranked rows the first walk of a ranked queue reads before the walk over all of them.
RANKED_WALK = 500


def _ranked(where: str = "", *, walk: bool, vendor: str) -> _Queue:
    """A ranked queue: the stage's priority rows in queue order (`where` narrows them), each
    probed for its study by `_pick_statement`.

    The ordered rows are a subquery of their own. Flattened into the join, PostgreSQL estimated
    that few rows pass the pick's filters and chose to read and filter every ranked study of the
    stage, then sort (30 ms per pick on a 2,019-study stage beside a larger review, seconds per
    decision under 20 reviewers). With `walk` the subquery is the first RANKED_WALK rows: a
    LIMIT small beside the stage's rows makes PostgreSQL read them from the index in order
    (a small stage's are sorted, which costs little). Without, every row of the stage in order
    (OFFSET 0 keeps the subquery apart): the queue served after the walk found nothing free.
    """
    cut = f" LIMIT {RANKED_WALK}" if walk else (" OFFSET 0" if vendor == "postgresql" else "")
    return _Queue(
        f"(SELECT p.study_id, p.priority FROM {_PRIORITY} p WHERE p.stage_id = %(stage)s{where}"
        f" ORDER BY {_RANKED_ORDER}{cut}) p",
        "TRUE",
        _RANKED_ORDER,
        ranked=True,
    )


_UNRANKED_WHERE = (
    f"COALESCE((SELECT p.stage_id FROM {_PRIORITY} p WHERE p.study_id = s.id), 0) <> %(stage)s"
)


def _queue_sql(*, random_order: bool, vendor: str) -> tuple[_Queue, ...]:
    """The stage's two queues, in the order they are served.

    Prioritised: ranked studies by priority (their first RANKED_WALK, then all of them: see
    `_ranked`), then unranked ones by id. Random: each reviewer walks the same shuffled ring
    from their own starting point, served by the expression index `study_queue_shuffle` (the SQL
    repeats STUDY_SHUFFLE_KEY as PostgreSQL indexed it).
    """
    if not random_order:
        return (
            _ranked(walk=True, vendor=vendor),
            _ranked(walk=False, vendor=vendor),
            _Queue(f"{_STUDY} s", _UNRANKED_WHERE, "s.id"),
        )
    if vendor == "postgresql":
        shuffle = f"MOD(s.id * {STUDY_SHUFFLE_MULTIPLIER}::bigint, {STUDY_SHUFFLE_MODULUS}::bigint)"
    else:
        # %% : a literal % in the parameterised SQL
        shuffle = f"((s.id * {STUDY_SHUFFLE_MULTIPLIER}) %% {STUDY_SHUFFLE_MODULUS})"
    return (
        _Queue(f"{_STUDY} s", f"{shuffle} >= %(start)s", f"{shuffle}, s.id"),
        _Queue(f"{_STUDY} s", f"{shuffle} < %(start)s", f"{shuffle}, s.id"),
    )


# How long before the reviewer's previous decision a skip or a settings change still counts as
# unseen by the pick that followed it: its time is taken before its transaction commits, at most
# a request's length earlier. A ranking run needs none: it commits its priorities before it takes
# its finish time, and counts as writing until that is committed.
_POSITION_MARGIN = "INTERVAL '10 seconds'"


def _position_sql(*, random_order: bool) -> tuple[str, list[_Queue]]:
    """PostgreSQL: the reviewer's position in the queue, and the queue after it as (filter,
    ordering) pairs in the order they are served.

    The position is the queue key of the reviewer's latest decision in the stage (one step of
    `decision_stage_latest`). Every study before it was, when the pick served that study,
    decided by them, full, or claimed by others; the pick that served it ran after their
    previous decision. So the studies before the position are still not free unless something
    freed one since then: a ranking run of the stage wrote priorities (or is writing them), the
    queue settings changed, or another reviewer's claim on the stage expired or was skipped.
    Then, with fewer than two decisions, or once that study left the stage (another stage's
    has no priority row for this stage), `pos` is empty and every filter is false. Runs of a
    review are sequential (one active at a time), so the latest created is the latest finished.
    """
    latest = (
        f"SELECT d.study_id, d.created_at FROM {_DECISION} d"
        " WHERE d.stage_id = %(stage)s AND d.reviewer_id = %(reviewer)s"
        " ORDER BY d.created_at DESC, d.id DESC"
    )
    previous = "(SELECT created_at FROM previous)"
    since = f"(SELECT created_at - {_POSITION_MARGIN} FROM previous)"
    if random_order:
        key = f"MOD(s.id * {STUDY_SHUFFLE_MULTIPLIER}::bigint, {STUDY_SHUFFLE_MODULUS}::bigint)"
        source = f"{_STUDY} s"
    else:
        # The position's priority in this stage's queue (NULL: among the unranked studies).
        key = "p.priority"
        source = (
            f"{_STUDY} s LEFT JOIN {_PRIORITY} p ON p.study_id = s.id AND p.stage_id = %(stage)s"
        )
    pos = (
        f"latest AS ({latest} LIMIT 1), previous AS ({latest} OFFSET 1 LIMIT 1),"
        f" pos AS (SELECT s.id, {key} AS k FROM {source}"
        " WHERE s.id = (SELECT study_id FROM latest) AND EXISTS (SELECT 1 FROM previous)"
        " AND s.current_stage_id = %(stage)s AND s.outcome = %(screening)s"
        f" AND NOT EXISTS (SELECT 1 FROM {_RANKING_RUN} r WHERE r.stage_id = %(stage)s"
        " AND r.status = %(running)s)"
        f" AND COALESCE((SELECT r.finished_at >= {previous} FROM {_RANKING_RUN} r"
        " WHERE r.stage_id = %(stage)s AND r.status = %(done)s AND r.scored > 0"
        " ORDER BY r.created_at DESC LIMIT 1), FALSE) = FALSE"
        f" AND NOT EXISTS (SELECT 1 FROM {_RANKING_SETTINGS} o WHERE o.stage_id = %(stage)s"
        f" AND o.updated_at >= {since})"
        f" AND NOT EXISTS (SELECT 1 FROM {_CLAIM} c WHERE c.stage_id = %(stage)s"
        " AND c.reviewer_id <> %(reviewer)s"
        f" AND c.expires_at >= {since} AND c.expires_at <= %(now)s))"
    )
    if random_order:
        # The ring from the reviewer's start: a position in the first queue leaves the rest of
        # it and the whole second queue; a position in the second leaves the rest of the second.
        order = f"{key}, s.id"
        return pos, [
            _Queue(
                f"{_STUDY} s",
                f"{key} >= %(start)s AND ({key}, s.id)"
                " > ((SELECT k FROM pos WHERE k >= %(start)s), (SELECT id FROM pos))",
                order,
            ),
            _Queue(
                f"{_STUDY} s",
                f"{key} < %(start)s AND ({key}, s.id) > ((SELECT CASE WHEN k < %(start)s"
                " THEN k ELSE -1 END FROM pos), (SELECT id FROM pos))",
                order,
            ),
        ]
    # Ranked studies by priority descending then id: the index range starts at the position's
    # priority (the orderings' directions differ, so its ties before it are read and filtered
    # out); a position among the unranked ones leaves no ranked study and the unranked ones
    # after its id.
    after = (
        " AND p.priority <= (SELECT k FROM pos)"
        " AND (p.priority < (SELECT k FROM pos) OR p.study_id > (SELECT id FROM pos))"
    )
    return pos, [
        _ranked(after, walk=True, vendor="postgresql"),
        _ranked(after, walk=False, vendor="postgresql"),
        _Queue(
            f"{_STUDY} s",
            f"{_UNRANKED_WHERE}"
            " AND s.id > (SELECT CASE WHEN k IS NULL THEN id ELSE 0 END FROM pos)",
            "s.id",
        ),
    ]


@functools.cache
def _pick_statement(
    *, random_order: bool, include_skipped: bool, wait: bool, vendor: str
) -> PreparedStatement:
    """One statement, prepared (`selectors/prepared.py`: planned once per connection, not on
    every pick): the reviewer's live claim if any, else the first free study, locked.

    Answers (study id, 1) for a live claim (returned again: reloading the page shows the same
    study), (study id, 0) for a free study now locked by this transaction, nothing when every
    queue is empty. Free: in the stage, not decided by this reviewer, fewer decisions and other
    reviewers' live claims than the stage requires, and (unless `include_skipped`) not skipped
    by this reviewer. Without `wait` rows other requests hold are skipped (SKIP LOCKED).

    The first pass on PostgreSQL looks after the reviewer's position first (`_position_sql`):
    a reviewer far ahead of their partner would otherwise re-read, on every pick, the whole
    prefix of the queue they decided. Only when nothing is free after it does it scan the
    queues from the start, which also finds what was freed behind the position unseen (a study
    routed into the stage or back by a withdrawn resolution, a raised reviewers_required).
    """
    decisions, claims = _taken_sql("s.id")
    free = (
        "s.current_stage_id = %(stage)s AND s.outcome = %(screening)s"
        f" AND NOT EXISTS (SELECT 1 FROM {_DECISION} m WHERE m.study_id = s.id"
        " AND m.stage_id = %(stage)s AND m.reviewer_id = %(reviewer)s)"
        f" AND {decisions} + {claims} < %(required)s"
    )
    if not include_skipped:
        free += (
            f" AND NOT EXISTS (SELECT 1 FROM {_CLAIM} k WHERE k.study_id = s.id"
            " AND k.stage_id = %(stage)s AND k.reviewer_id = %(reviewer)s AND k.skipped)"
        )
    lock = ""
    if vendor == "postgresql":  # SQLite has no row locks: its writes are serialised anyway
        # NO KEY UPDATE: the decision never changes the study's key, and a foreign key check
        # (FOR KEY SHARE, e.g. the ranking inserting a study's priority row) neither waits for
        # it nor makes it wait or skip the study.
        lock = " FOR NO KEY UPDATE OF s" + ("" if wait else " SKIP LOCKED")
    queues = _queue_sql(random_order=random_order, vendor=vendor)
    first_pass = not include_skipped and not wait
    # Only the first pass looks for a live claim; the later ones run when it found none.
    live = f"SELECT c.study_id FROM {_CLAIM} c WHERE 1 = 0"
    if first_pass:
        live = (
            f"SELECT c.study_id FROM {_CLAIM} c JOIN {_STUDY} s ON s.id = c.study_id"
            " WHERE c.stage_id = %(stage)s AND c.reviewer_id = %(reviewer)s AND NOT c.skipped"
            " AND c.expires_at > %(now)s AND s.current_stage_id = %(stage)s"
            " AND s.outcome = %(screening)s ORDER BY c.claimed_at, c.id LIMIT 1"
        )
    # Each branch runs only when every branch before it found nothing (NOT EXISTS of a CTE is
    # evaluated once, before the branch's scan); the first row found ends the statement.
    branches: list[_Queue] = []
    ctes = [f"live AS ({live})"]
    if first_pass and vendor == "postgresql":
        pos, branches = _position_sql(random_order=random_order)
        ctes.append(pos)
    branches += list(queues)
    names: list[str] = []
    for number, queue in enumerate(branches):
        earlier = "".join(f" AND NOT EXISTS (SELECT 1 FROM {name})" for name in names)
        names.append(f"free_{number}")
        head = f"SELECT s.id FROM {queue.source}"
        where = f"NOT EXISTS (SELECT 1 FROM live){earlier} AND {queue.where}"
        if queue.ranked and vendor == "postgresql":
            # Each priority row in queue order probes its study by primary key, filtered and
            # locked in a subquery of its own (a locking subquery is never flattened), until
            # one is free. Joined plainly, PostgreSQL may judge that few of the stage's
            # studies pass the filters (its statistics lag a busy stage) and read, filter and
            # materialise every one of them for the join instead: 10 ms per pick on 2,019.
            ctes.append(
                f"{names[-1]} AS ({head} CROSS JOIN LATERAL (SELECT s.id FROM {_STUDY} s"
                f" WHERE s.id = p.study_id AND {free}{lock}) s WHERE {where}"
                f" ORDER BY {queue.order} LIMIT 1)"
            )
            continue
        if queue.ranked:
            head += f" JOIN {_STUDY} s ON s.id = p.study_id"
        ctes.append(
            f"{names[-1]} AS ({head} WHERE {where} AND {free} ORDER BY {queue.order} LIMIT 1{lock})"
        )
    return PreparedStatement(
        f"WITH {', '.join(ctes)} SELECT study_id, 1 FROM live"
        + "".join(f" UNION ALL SELECT id, 0 FROM {name}" for name in names)
    )


@functools.cache
def _claim_statement(vendor: str) -> PreparedStatement:
    """Re-count the locked study's slots and claim it (insert or refresh) in one statement.

    It runs after the pick locked the study, so its snapshot sees every claim and decision
    committed before the lock was granted: two reviewers never both take a study's last slot.
    Answers nothing when the study filled up meanwhile; else, on PostgreSQL, the claimed study
    as the panel shows it (`_panel_columns`: no further round trip on every decision), on
    other databases the claim's id.
    """
    decisions, claims = _taken_sql("%(study)s")
    insert = (
        f"INSERT INTO {_CLAIM}"
        " (review_id, study_id, stage_id, reviewer_id, claimed_at, expires_at, skipped)"
        " SELECT %(review)s, %(study)s, %(stage)s, %(reviewer)s, %(now)s, %(expires)s, %(no)s"
        f" WHERE {decisions} + {claims} < %(required)s"
        " ON CONFLICT (study_id, stage_id, reviewer_id) DO UPDATE SET"
        " claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at,"
        " skipped = EXCLUDED.skipped"
    )
    if vendor != "postgresql":  # SQLite has no INSERT in a WITH clause
        return PreparedStatement(f"{insert} RETURNING id")
    return PreparedStatement(
        f"WITH claimed AS ({insert} RETURNING study_id)"
        f" SELECT {_panel_columns()} FROM claimed JOIN {_STUDY} s ON s.id = claimed.study_id"
        f" LEFT JOIN {FullText._meta.db_table} f ON f.study_id = s.id"
    )


def _claim_params(*, review: Review, stage: Stage, reviewer: User, now: datetime) -> dict[str, Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return {
        "review": review.pk,
        "stage": stage.pk,
        "reviewer": reviewer.pk,
        "now": adapt(now),
        "expires": adapt(now + claim_ttl()),
        "required": stage.reviewers_required,
        "screening": Study.Outcome.SCREENING.value,
        "start": (reviewer.pk * STUDY_SHUFFLE_MULTIPLIER) % STUDY_SHUFFLE_MODULUS,
        "running": RankingRun.Status.RUNNING.value,
        "done": RankingRun.Status.DONE.value,
        "no": False,
    }


def study_claim_next(*, review: Review, stage: Stage, reviewer: User) -> Study | None:
    """The study this reviewer should screen now in the stage, claimed for them; None if done.

    A live claim is returned again (reloading the page shows the same study). Otherwise the
    first free study in queue order is locked (skipping rows another request holds), re-counted
    under the lock and claimed. Only when every queue's free studies are locked by requests in
    flight does it wait for one of them, rather than answer that the queue is empty. Skipped
    studies come back only when nothing else is left.
    """
    if stage.review_id != review.pk:
        raise ValidationError("This stage belongs to another review.")
    params = _claim_params(review=review, stage=stage, reviewer=reviewer, now=timezone.now())
    for include_skipped in (False, True):
        for wait in (False, True):
            pick = _pick_statement(
                random_order=stage.queue_order == Stage.QueueOrder.RANDOM,
                include_skipped=include_skipped,
                wait=wait,
                vendor=connection.vendor,
            )
            study = _claim_first(pick=pick, params=params)
            if study is not None:
                return study
    return None


def _panel_columns() -> str:
    """What the panel shows of a study `s` (`model_columns`) and, for its PDF link, its full
    text `f`'s id and status (`_panel_study` reads them)."""
    return f"{model_columns(Study, 's')}, f.id, f.status"


def _panel_study(read: tuple[Study, tuple[Any, ...]]) -> Study:
    """A study read with `_panel_columns`: `study.full_text` is answered without another
    query, and raises `FullText.DoesNotExist` when there is none, as after `select_related`."""
    study, (full_text_pk, full_text_status) = read
    full_text = None
    if full_text_pk is not None:
        full_text = FullText.from_db(
            connection.alias,
            ["id", "study_id", "status"],
            [full_text_pk, study.pk, full_text_status],
        )
    Study.full_text.related.set_cached_value(study, full_text)
    return study


def _study_for_panel(study_id: int) -> Study:
    """The study `study_id` as the panel shows it, in one read (SQL, see `model_columns`)."""
    [read] = model_rows(
        Study,
        f"SELECT {_panel_columns()} FROM {_STUDY} s"
        f" LEFT JOIN {FullText._meta.db_table} f ON f.study_id = s.id WHERE s.id = %s",
        [study_id],
    )
    return _panel_study(read)


def _claim_first(*, pick: PreparedStatement, params: dict[str, Any]) -> Study | None:
    """Run a pick and claim what it locked; the study as the panel shows it, or None when the
    queues are empty.

    Each round is its own short transaction holding at most one study lock, so a round that
    waits for a lock never holds another one (no deadlock), and each round's statements see
    the claims committed since the last.
    """
    for _round in range(20):
        with transaction.atomic(), connection.cursor() as cursor:
            pick.execute(cursor, params)
            row = cursor.fetchone()
            if row is None:
                return None
            study_id, live = row
            if live:
                return _study_for_panel(int(study_id))
            _claim_statement(connection.vendor).execute(cursor, {**params, "study": study_id})
            claimed = cursor.fetchall()
            if not claimed:  # claimed or decided between the pick's snapshot and its lock
                continue
            if connection.vendor == "postgresql":  # the statement answered the study itself
                return _panel_study(model_instances(Study, claimed)[0])
            return _study_for_panel(int(study_id))
    return None


def _deltas_compact(table: str, keys: str) -> int:
    """Fold the signed delta rows a migration's triggers keep in `table` into one row per
    `keys`; the rows removed.

    One statement: rows inserted meanwhile by other transactions are not in its snapshot and
    stay, and a concurrent compaction skips the rows this one deleted, so the sums stay exact.
    """
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {table} RETURNING {keys}, delta),"
            f" kept AS (INSERT INTO {table} ({keys}, delta)"
            f" SELECT {keys}, SUM(delta) FROM gone GROUP BY {keys} HAVING SUM(delta) <> 0"
            " RETURNING 1)"
            " SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM kept)"
        )
        row = cursor.fetchone()
    return int(row[0])


def stage_waiting_compact() -> int:
    """Fold each stage's waiting-count deltas (migration 0014) into one row; the rows removed."""
    return _deltas_compact("screening_stage_waiting", "stage_id")


def stage_progress_compact() -> int:
    """Fold each stage's "full" and per-reviewer progress deltas (migration 0015) into one row
    each; the rows removed."""
    return _deltas_compact("screening_stage_progress", "stage_id, reviewer_id")


def stage_decisions_compact() -> int:
    """Fold each (stage, reviewer)'s decision count deltas (migration 0016) into one row each;
    the rows removed."""
    return _deltas_compact("screening_stage_decisions", "stage_id, reviewer_id")


def stage_progress_recount(*, stage: Stage) -> None:
    """Make the stage's kept progress counts (migration 0015) equal to a recount from its
    decisions: after a change the triggers cannot follow, its reviewers_required. Call it in
    the transaction of that change, with the stage locked FOR UPDATE (the triggers wait for that
    lock before they count)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT screening_stage_progress_recount(ARRAY[%s]::bigint[])", [stage.pk])


def study_skip(*, review: Review, stage: Stage, study: Study, reviewer: User) -> None:
    """Put a study back for others; it returns to this reviewer only when the rest is done."""
    _check_scope(review=review, study=study, stage=stage)
    _claim_upsert(
        review=review, study=study, stage=stage, reviewer=reviewer, now=timezone.now(), skipped=True
    )


@transaction.atomic
def adjudicator_designate(*, review: Review, user: User, by: User) -> Adjudicator:
    """The owner names a member (not a viewer) to resolve the review's conflicts."""
    if not Membership.objects.filter(review=review, user=by, role=Membership.Role.OWNER).exists():
        raise PermissionDenied("Only the review's owner designates adjudicators.")
    if not Membership.objects.filter(
        review=review, user=user, role__in=[Membership.Role.OWNER, Membership.Role.REVIEWER]
    ).exists():
        raise ValidationError("The adjudicator must be a reviewer of this review.")
    adjudicator, created = Adjudicator.objects.get_or_create(
        review=review, user=user, defaults={"designated_by": by}
    )
    if created:
        audit_event_record(
            review=review,
            actor=by,
            action="adjudicator.designate",
            obj=adjudicator,
            after={"user": user.get_username()},
        )
    return adjudicator


@transaction.atomic
def adjudicator_remove(*, review: Review, user: User, by: User) -> None:
    if not Membership.objects.filter(review=review, user=by, role=Membership.Role.OWNER).exists():
        raise PermissionDenied("Only the review's owner removes adjudicators.")
    adjudicator_revoke(review=review, user=user, by=by, why="removed by the owner")


def adjudicator_revoke(*, review: Review, user: User, by: User, why: str) -> None:
    """End a member's adjudicator rights (call inside the caller's transaction).

    The team services call it when a member is demoted to viewer or removed, so the rights
    go with the role and re-adding the member does not bring them back.
    """
    deleted, _ = Adjudicator.objects.filter(review=review, user=user).delete()
    if deleted:
        audit_event_record(
            review=review,
            actor=by,
            action="adjudicator.remove",
            object_type="adjudicator",
            object_id=user.pk,
            before={"user": user.get_username()},
            after={"why": why},
        )


@transaction.atomic
def review_blind_mode_set(*, review: Review, blind: bool, by: User) -> Review:
    """Only the owner switches blind mode; the change is audited."""
    if not Membership.objects.filter(review=review, user=by, role=Membership.Role.OWNER).exists():
        raise PermissionDenied("Only the review's owner changes blind mode.")
    locked = Review.objects.select_for_update().get(pk=review.pk)
    if locked.blind_mode != blind:
        audit_event_record(
            review=review,
            actor=by,
            action="review.blind_mode",
            obj=locked,
            before={"blind_mode": locked.blind_mode},
            after={"blind_mode": blind},
        )
        locked.blind_mode = blind
        locked.save(update_fields=["blind_mode", "updated_at"])
    review.blind_mode = blind
    return review
