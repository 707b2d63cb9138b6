"""Quality assessment writes: assessor assignment, answers, consensus, scale and threshold."""

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from ..domain import quality as rules
from ..models import (
    ExtractionAssignment,
    Membership,
    QualityAnswer,
    QualityAssignment,
    QualityConsensus,
    QualityCriterion,
    Review,
    Study,
)
from .audit import audit_event_record
from .stale import version_check

WRITER_ROLES = (Membership.Role.OWNER, Membership.Role.REVIEWER)


def _role(*, review: Review, user: User) -> str | None:
    return (
        Membership.objects.filter(review=review, user=user).values_list("role", flat=True).first()
    )


def _require_owner(*, review: Review, user: User) -> None:
    if _role(review=review, user=user) != Membership.Role.OWNER:
        raise PermissionDenied("Only the review's owners can do this.")


def _locked_included_study(*, review: Review, study: Study) -> Study:
    """Lock the study row: answers, assignments and consensus of one study are serialised."""
    locked = Study.objects.select_for_update().filter(pk=study.pk, review=review).first()
    if locked is None:
        raise ValidationError("This study does not belong to the review.")
    if locked.outcome != Study.Outcome.INCLUDED:
        raise ValidationError("Only studies included at full text are assessed.")
    return locked


def _writers(*, review: Review, users: Iterable[User], per_study: bool = True) -> list[User]:
    """Check the people are reviewers or owners (one or two of them for a single study)."""
    users = list(dict.fromkeys(users))
    if not users or (per_study and len(users) > 2):
        raise ValidationError("Choose one or two people." if per_study else "Choose someone.")
    allowed = set(
        Membership.objects.filter(review=review, user__in=users, role__in=WRITER_ROLES).values_list(
            "user_id", flat=True
        )
    )
    refused = [u for u in users if u.pk not in allowed]
    if refused:
        names = ", ".join(u.get_username() for u in refused)
        raise ValidationError(f"{names} cannot assess: only reviewers and owners can.")
    return users


def _revealed(assignments: Sequence[QualityAssignment]) -> bool:
    """Every assessor of the study marked it done: their answers are shown to each other."""
    return bool(assignments) and all(a.completed_at for a in assignments)


def _consensus_write(
    *, study: Study, criterion: QualityCriterion, current: QualityConsensus | None, **fields: Any
) -> QualityConsensus:
    """Create the consensus row, or update it one version up."""
    if current is None:
        return QualityConsensus.objects.create(study=study, criterion=criterion, **fields)
    for name, value in fields.items():
        setattr(current, name, value)
    current.version += 1
    current.save()
    return current


def _consensus_stale_check(
    *,
    review: Review,
    current: QualityConsensus | None,
    criterion: QualityCriterion,
    seen_version: int | None,
    force: bool,
) -> None:
    """Refuse an owner's decision based on a consensus that changed since the page showed it."""
    if current is None:
        shown, by = "no consensus", ""
    else:
        shown = rules.answer_label(review.quality_scale, current.answer)
        by = current.decided_by.get_username() if current.decided_by else "the agreeing assessors"
    version_check(
        stored_version=current.version if current else 0,
        seen_version=seen_version,
        force=force,
        what=f"the consensus on {criterion.code}",
        current=shown,
        by=by,
        at=current.updated_at if current else None,
    )


def _consensus_derive(
    *, review: Review, study: Study, criterion: QualityCriterion, actor: User
) -> None:
    """Write the agreed answer once every assessor marked the study done and all agree; drop
    an agreement that no longer holds.

    Nothing is derived before that: an agreement (or its absence) would tell a blind assessor
    the other's answer. An owner's adjudicated answer stays until the owner changes it.
    """
    assignments = list(QualityAssignment.objects.filter(study=study))
    assessors = [a.assessor_id for a in assignments]
    answers = list(
        QualityAnswer.objects.filter(
            study=study, criterion=criterion, assessor_id__in=assessors
        ).values_list("answer", flat=True)
    )
    agreed = rules.consensus_of(answers, len(assessors)) if _revealed(assignments) else None
    current = QualityConsensus.objects.filter(study=study, criterion=criterion).first()
    if current is not None and current.method == QualityConsensus.Method.ADJUDICATED:
        return
    before = None if current is None else str(current.answer)
    if agreed is None:
        if current is not None:
            current.delete()
            audit_event_record(
                review=review,
                actor=actor,
                action="quality.consensus_withdraw",
                object_type="qualityconsensus",
                object_id=f"{study.pk}:{criterion.pk}",
                before={"answer": before},
                after=None,
            )
        return
    if current is not None and current.answer == agreed:
        return
    consensus = _consensus_write(
        study=study,
        criterion=criterion,
        current=current,
        answer=agreed,
        method=QualityConsensus.Method.AGREEMENT,
        decided_by=None,
    )
    audit_event_record(
        review=review,
        actor=actor,
        action="quality.consensus_agree",
        obj=consensus,
        before={"answer": before},
        after={"answer": str(agreed), "criterion": criterion.code, "study": study.pk},
    )


def _consensus_derive_all(*, review: Review, study: Study, actor: User) -> None:
    for criterion in review.quality_criteria.all():
        _consensus_derive(review=review, study=study, criterion=criterion, actor=actor)


@transaction.atomic
def quality_assessors_assign(
    *, review: Review, study: Study, assessors: Iterable[User], actor: User
) -> list[QualityAssignment]:
    """Set the one or two assessors of an included study (owners only).

    Answers of an assessor who is taken off stay stored but no longer count.
    """
    _require_owner(review=review, user=actor)
    study = _locked_included_study(review=review, study=study)
    assessors = _writers(review=review, users=assessors)
    current = {
        a.assessor_id: a
        for a in QualityAssignment.objects.filter(study=study).select_related("assessor")
    }
    before = [a.assessor.get_username() for a in current.values()]
    QualityAssignment.objects.filter(study=study).delete()
    created = [
        QualityAssignment.objects.create(
            study=study,
            assessor=user,
            slot=slot,
            assigned_by=actor,
            # Someone kept on the study keeps their "done" mark.
            completed_at=current[user.pk].completed_at if user.pk in current else None,
        )
        for slot, user in enumerate(assessors, start=1)
    ]
    _consensus_derive_all(review=review, study=study, actor=actor)
    audit_event_record(
        review=review,
        actor=actor,
        action="quality.assign",
        obj=study,
        before={"assessors": before},
        after={"assessors": [u.get_username() for u in assessors]},
    )
    return created


AssignmentT = TypeVar("AssignmentT", QualityAssignment, ExtractionAssignment)


def _round_robin_assign(
    *,
    review: Review,
    studies: QuerySet[Study],
    assignments: type[AssignmentT],
    person: str,
    people: Iterable[User],
    per_study: int,
    actor: User,
    action: str,
) -> int:
    """Spread `studies` (a queryset) that have no assignment yet over `people`, evening out
    the load they already carry; `assignments` is the assignment model, `person` its field.
    Shared by quality assessors and data extractors; returns how many studies got people."""
    _require_owner(review=review, user=actor)
    people = _writers(review=review, users=people, per_study=False)
    role = f"{person}s"
    if per_study not in (1, 2) or per_study > len(people):
        raise ValidationError(f"Choose at least {per_study} {role} to give each study {per_study}.")
    study_ids = list(
        studies.select_for_update()
        .exclude(pk__in=assignments.objects.values("study_id"))
        .order_by("id")
        .values_list("pk", flat=True)
    )
    load = dict(
        assignments.objects.filter(study__review=review, **{f"{person}__in": people})
        .values_list(f"{person}_id")
        .annotate(n=Count("id"))
    )
    by_id = {u.pk: u for u in people}
    plan = rules.round_robin(study_ids, [u.pk for u in people], per_study, load)
    assignments.objects.bulk_create(
        assignments(study_id=study_id, slot=slot, assigned_by=actor, **{person: by_id[uid]})
        for study_id, uids in plan.items()
        for slot, uid in enumerate(uids, start=1)
    )
    audit_event_record(
        review=review,
        actor=actor,
        action=action,
        object_type="review",
        object_id=review.pk,
        after={
            "studies": len(plan),
            "per_study": per_study,
            role: [u.get_username() for u in people],
        },
    )
    return len(plan)


@transaction.atomic
def quality_assessors_assign_bulk(
    *, review: Review, assessors: Iterable[User], per_study: int, actor: User
) -> int:
    """Round-robin the studies that have no assessor yet over the chosen people; returns count."""
    return _round_robin_assign(
        review=review,
        studies=Study.objects.filter(review=review, outcome=Study.Outcome.INCLUDED),
        assignments=QualityAssignment,
        person="assessor",
        people=assessors,
        per_study=per_study,
        actor=actor,
        action="quality.assign_bulk",
    )


def _assessor_check(
    *, review: Review, study: Study, assessor: User
) -> tuple[Study, list[QualityAssignment]]:
    """The study, locked, and its assignments, when `assessor` may answer for it (assigned,
    and still a reviewer or owner)."""
    study = _locked_included_study(review=review, study=study)
    assignments = list(QualityAssignment.objects.filter(study=study))
    if not any(a.assessor_id == assessor.pk for a in assignments):
        raise PermissionDenied("You are not assigned to assess this study.")
    if _role(review=review, user=assessor) not in WRITER_ROLES:
        raise PermissionDenied("Your role in this review does not allow assessing.")
    return study, assignments


def _answer_stale_check(
    *,
    review: Review,
    current: QualityAnswer | None,
    criterion: QualityCriterion,
    assessor: User,
    seen_version: int | None,
    force: bool,
) -> None:
    """Refuse an answer based on one that changed since the page showed it (another tab)."""
    shown = "not answered"
    if current is not None:
        shown = rules.answer_label(review.quality_scale, current.answer)
        if current.justification:
            shown = f"{shown} “{current.justification}”"
    version_check(
        stored_version=current.version if current else 0,
        seen_version=seen_version,
        force=force,
        what=f"your answer to {criterion.code}",
        current=shown,
        by=assessor.get_username() if current else "",
        at=current.updated_at if current else None,
    )


def _answer_write(
    *,
    study: Study,
    criterion: QualityCriterion,
    assessor: User,
    current: QualityAnswer | None,
    value: Decimal,
    justification: str,
    revision: bool,
) -> QualityAnswer:
    """Create the answer, or update it one version up; a revision keeps the blind answer."""
    if current is None:
        return QualityAnswer.objects.create(
            study=study,
            criterion=criterion,
            assessor=assessor,
            answer=value,
            justification=justification,
        )
    if revision:
        if current.answer_at_reveal is None:
            current.answer_at_reveal = current.answer
        current.revised_at = timezone.now()
    current.answer, current.justification = value, justification
    current.version += 1
    current.save()
    return current


def _answer_audit(
    *,
    review: Review,
    criterion: QualityCriterion,
    assessor: User,
    record: QualityAnswer,
    before: dict[str, object] | None,
    force: bool,
    revision: bool,
) -> None:
    """Audit a stored answer: as a revision once revealed, and as an overwrite when forced."""
    after = {
        "answer": str(record.answer),
        "justification": record.justification,
        "version": record.version,
    }
    if force and before is not None:
        audit_event_record(
            review=review,
            actor=assessor,
            action="quality_answer.overwrite",
            obj=record,
            before=before,
            after=after,
        )
    audit_event_record(
        review=review,
        actor=assessor,
        action="quality.answer_revise" if revision else "quality.answer",
        obj=record,
        before=before,
        after=dict(after, criterion=criterion.code, study=record.study_id),
    )


@transaction.atomic
def quality_answer_record(
    *,
    review: Review,
    study: Study,
    criterion: QualityCriterion,
    assessor: User,
    answer: str | Decimal,
    justification: str = "",
    seen_version: int | None,
    force: bool = False,
) -> QualityAnswer:
    """Store (or change) an assigned assessor's answer and re-derive the consensus.

    `seen_version` is the version of the answer the assessor's page showed: an answer changed
    since (in another tab) is not overwritten unless `force` (StaleWrite). Once every assessor
    marked the study done the answers are revealed, and a changed answer is a revision: the
    answer given blind is kept beside it, and the change is audited as a revision.
    """
    if criterion.review_id != review.pk:
        raise ValidationError("This criterion does not belong to the review.")
    study, assignments = _assessor_check(review=review, study=study, assessor=assessor)
    try:
        value = rules.answer_parse(review.quality_scale, str(answer))
    except ValueError as error:
        raise ValidationError(str(error)) from None
    justification = justification.strip()
    current = QualityAnswer.objects.filter(
        study=study, criterion=criterion, assessor=assessor
    ).first()
    if current is not None and (current.answer, current.justification) == (value, justification):
        return current
    _answer_stale_check(
        review=review,
        current=current,
        criterion=criterion,
        assessor=assessor,
        seen_version=seen_version,
        force=force,
    )
    before = (
        None
        if current is None
        else {
            "answer": str(current.answer),
            "justification": current.justification,
            "version": current.version,
        }
    )
    revision = current is not None and current.answer != value and _revealed(assignments)
    record = _answer_write(
        study=study,
        criterion=criterion,
        assessor=assessor,
        current=current,
        value=value,
        justification=justification,
        revision=revision,
    )
    _answer_audit(
        review=review,
        criterion=criterion,
        assessor=assessor,
        record=record,
        before=before,
        force=force,
        revision=revision,
    )
    _consensus_derive(review=review, study=study, criterion=criterion, actor=assessor)
    return record


@transaction.atomic
def quality_complete_set(
    *, review: Review, study: Study, assessor: User, done: bool = True
) -> QualityAssignment:
    """Mark (or unmark) the assessor's work on a study done.

    When the last assessor marks it done the answers are revealed to each other and the
    consensus is derived. A revealed assessment cannot be un-marked (the answers have been
    seen); a later change is a revision of an answer.
    """
    study = _locked_included_study(review=review, study=study)
    assignments = list(QualityAssignment.objects.filter(study=study))
    mine = next((a for a in assignments if a.assessor_id == assessor.pk), None)
    if mine is None:
        raise PermissionDenied("You are not assigned to assess this study.")
    if _role(review=review, user=assessor) not in WRITER_ROLES:
        raise PermissionDenied("Your role in this review does not allow assessing.")
    if bool(mine.completed_at) == done:
        return mine
    if not done and _revealed(assignments):
        raise ValidationError(
            "Every assessor has marked this study done and the answers are revealed: change an "
            "answer directly; the change is recorded as a revision."
        )
    if done:
        answered = set(
            QualityAnswer.objects.filter(study=study, assessor=assessor).values_list(
                "criterion_id", flat=True
            )
        )
        missing = [c.code for c in review.quality_criteria.all() if c.pk not in answered]
        if missing:
            raise ValidationError(f"Answer every criterion first: {', '.join(missing)} missing.")
    mine.completed_at = timezone.now() if done else None
    mine.save(update_fields=["completed_at"])
    audit_event_record(
        review=review,
        actor=assessor,
        action="quality.complete" if done else "quality.reopen",
        obj=mine,
        after={"study": study.pk, "done": done},
    )
    if done and _revealed(assignments):
        audit_event_record(
            review=review,
            actor=assessor,
            action="quality.reveal",
            obj=study,
            after={"assessors": len(assignments)},
        )
    _consensus_derive_all(review=review, study=study, actor=assessor)
    return mine


@transaction.atomic
def quality_consensus_record(
    *,
    review: Review,
    study: Study,
    criterion: QualityCriterion,
    actor: User,
    answer: str | Decimal,
    note: str = "",
    seen_version: int | None,
    force: bool = False,
) -> QualityConsensus:
    """The owner's consensus answer for one criterion of one study, once it is revealed.

    Refused (StaleWrite) when the consensus changed since the owner's page showed
    `seen_version`, unless `force`.
    """
    _require_owner(review=review, user=actor)
    if criterion.review_id != review.pk:
        raise ValidationError("This criterion does not belong to the review.")
    study = _locked_included_study(review=review, study=study)
    if not _revealed(list(QualityAssignment.objects.filter(study=study))):
        raise ValidationError(
            "The assessors have not all marked this study done yet: their answers are not final."
        )
    try:
        value = rules.answer_parse(review.quality_scale, str(answer))
    except ValueError as error:
        raise ValidationError(str(error)) from None
    current = (
        QualityConsensus.objects.select_related("decided_by")
        .filter(study=study, criterion=criterion)
        .first()
    )
    _consensus_stale_check(
        review=review, current=current, criterion=criterion, seen_version=seen_version, force=force
    )
    before = (
        None
        if current is None
        else {"answer": str(current.answer), "method": current.method, "version": current.version}
    )
    consensus = _consensus_write(
        study=study,
        criterion=criterion,
        current=current,
        answer=value,
        method=QualityConsensus.Method.ADJUDICATED,
        decided_by=actor,
        note=note.strip(),
    )
    after = {
        "answer": str(value),
        "criterion": criterion.code,
        "study": study.pk,
        "note": note.strip(),
        "version": consensus.version,
    }
    if force and before is not None:
        audit_event_record(
            review=review,
            actor=actor,
            action="quality_consensus.overwrite",
            obj=consensus,
            before=before,
            after=after,
        )
    audit_event_record(
        review=review,
        actor=actor,
        action="quality.consensus",
        obj=consensus,
        before=before,
        after=after,
    )
    return consensus


@transaction.atomic
def quality_consensus_reopen(
    *,
    review: Review,
    study: Study,
    criterion: QualityCriterion,
    actor: User,
    seen_version: int | None,
    force: bool = False,
) -> None:
    """Withdraw the owner's decision so the assessors' agreement (if any) applies again."""
    _require_owner(review=review, user=actor)
    study = _locked_included_study(review=review, study=study)
    current = (
        QualityConsensus.objects.select_related("decided_by")
        .filter(study=study, criterion=criterion)
        .first()
    )
    _consensus_stale_check(
        review=review, current=current, criterion=criterion, seen_version=seen_version, force=force
    )
    if current is None or current.method != QualityConsensus.Method.ADJUDICATED:
        return
    before = {"answer": str(current.answer), "method": current.method, "version": current.version}
    current.delete()
    audit_event_record(
        review=review,
        actor=actor,
        action="quality.consensus_reopen",
        object_type="qualityconsensus",
        object_id=f"{study.pk}:{criterion.pk}",
        before=before,
    )
    _consensus_derive(review=review, study=study, criterion=criterion, actor=actor)


@transaction.atomic
def quality_settings_update(
    *, review: Review, actor: User, scale: str, threshold: Decimal | str | None
) -> Review:
    """Change the answer scale and the exclusion threshold (None or "" switches it off)."""
    _require_owner(review=review, user=actor)
    review = Review.objects.select_for_update().get(pk=review.pk)
    if scale not in Review.QualityScale.values:
        raise ValidationError(f"Unknown answer scale {scale!r}.")
    if threshold in (None, ""):
        threshold = None
    else:
        try:
            threshold = Decimal(str(threshold))
        except InvalidOperation:
            raise ValidationError(f"{threshold!r} is not a number.") from None
        if threshold < 0:
            raise ValidationError("The threshold cannot be negative.")
    if scale == Review.QualityScale.YES_NO:
        partly = rules.PARTLY
        used = (
            QualityAnswer.objects.filter(study__review=review, answer=partly).exists()
            or QualityConsensus.objects.filter(study__review=review, answer=partly).exists()
        )
        if used:
            raise ValidationError(
                "Some answers are Partly: change them before removing Partly from the scale."
            )
    before = {
        "quality_scale": review.quality_scale,
        "quality_threshold": None
        if review.quality_threshold is None
        else str(review.quality_threshold),
    }
    review.quality_scale = scale
    review.quality_threshold = threshold
    review.save(update_fields=["quality_scale", "quality_threshold", "updated_at"])
    audit_event_record(
        review=review,
        actor=actor,
        action="quality.settings",
        obj=review,
        before=before,
        after={
            "quality_scale": scale,
            "quality_threshold": None if threshold is None else str(threshold),
        },
    )
    return review
