"""Data extraction writes: fields, extractor assignment, drafts, completion, reconciliation."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from ..domain import extraction as values
from ..models import (
    ExtractionAssignment,
    ExtractionField,
    ExtractionValue,
    ResearchQuestion,
    Review,
    Study,
)
from ..selectors.quality import quality_retained_studies
from .audit import audit_event_record
from .quality import (
    _locked_included_study,
    _require_owner,
    _role,
    _round_robin_assign,
    _writers,
)
from .stale import version_check

Kind = ExtractionField.Kind


def _field_key(*, review: Review, label: str) -> str:
    base = slugify(label)[:50] or "field"
    taken = set(
        ExtractionField.objects.filter(review=review, key__startswith=base).values_list(
            "key", flat=True
        )
    )
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key


@transaction.atomic
def extraction_field_create(
    *,
    review: Review,
    actor: User,
    label: str,
    kind: str,
    research_question: ResearchQuestion | None = None,
    choices: str | Iterable[str] = (),
    help_text: str = "",
    is_contribution: bool = False,
) -> ExtractionField:
    """Define a field of the extraction form (owners only)."""
    _require_owner(review=review, user=actor)
    label = label.strip()
    if not label:
        raise ValidationError("Give the field a label.")
    if kind not in Kind.values:
        raise ValidationError(f"Unknown field kind {kind!r}.")
    if research_question is not None and research_question.review_id != review.pk:
        raise ValidationError("This research question belongs to another review.")
    choices = values.choices_parse(choices) if isinstance(choices, str) else list(choices)
    if kind in (Kind.CHOICE, Kind.MULTI_CHOICE):
        if len(choices) < 2:
            raise ValidationError("A choice field needs at least two choices, one per line.")
    else:
        choices = []
    position = (
        ExtractionField.objects.filter(review=review).aggregate(m=Max("position"))["m"] or 0
    ) + 1
    try:
        with transaction.atomic():
            field = ExtractionField.objects.create(
                review=review,
                research_question=research_question,
                key=_field_key(review=review, label=label),
                label=label,
                kind=kind,
                choices=choices,
                help_text=help_text.strip(),
                position=position,
                is_contribution=is_contribution,
            )
    except IntegrityError:
        raise ValidationError(
            "This research question already has its 'contributes to' flag."
        ) from None
    audit_event_record(
        review=review,
        actor=actor,
        action="extraction.field_create",
        obj=field,
        after={
            "key": field.key,
            "label": label,
            "kind": kind,
            "choices": choices,
            "research_question": research_question.code if research_question else None,
            "is_contribution": is_contribution,
        },
    )
    return field


@transaction.atomic
def extraction_contribution_flags_create(*, review: Review, actor: User) -> list[ExtractionField]:
    """One click: a yes/no "Contributes to RQn" field for each research question lacking one."""
    _require_owner(review=review, user=actor)
    have = set(
        ExtractionField.objects.filter(review=review, is_contribution=True).values_list(
            "research_question_id", flat=True
        )
    )
    created = []
    for rq in review.research_questions.all():
        if rq.pk in have:
            continue
        theme = f" ({rq.theme})" if rq.theme else ""
        created.append(
            extraction_field_create(
                review=review,
                actor=actor,
                label=f"Contributes to {rq.code}{theme}",
                kind=Kind.YES_NO,
                research_question=rq,
                help_text=rq.text,
                is_contribution=True,
            )
        )
    return created


@transaction.atomic
def extraction_field_delete(*, review: Review, field: ExtractionField, actor: User) -> None:
    """Remove a field and every value entered for it (owners only; audited with the count)."""
    _require_owner(review=review, user=actor)
    if field.review_id != review.pk:
        raise ValidationError("This field belongs to another review.")
    before = {"key": field.key, "label": field.label, "values": field.values.count()}
    field_id = field.pk
    field.delete()
    audit_event_record(
        review=review,
        actor=actor,
        action="extraction.field_delete",
        object_type="extractionfield",
        object_id=field_id,
        before=before,
    )


@transaction.atomic
def extraction_extractors_assign(
    *, review: Review, study: Study, extractors: Iterable[User], actor: User
) -> list[ExtractionAssignment]:
    """Set the one or two extractors of an included study (owners only)."""
    _require_owner(review=review, user=actor)
    study = _locked_included_study(review=review, study=study)
    extractors = _writers(review=review, users=extractors)
    current = {a.extractor_id: a for a in ExtractionAssignment.objects.filter(study=study)}
    before = sorted(a.extractor.get_username() for a in current.values())
    ExtractionAssignment.objects.filter(study=study).delete()
    created = [
        ExtractionAssignment.objects.create(
            study=study,
            extractor=user,
            slot=slot,
            assigned_by=actor,
            # Someone kept on the study keeps their "done" mark.
            completed_at=current[user.pk].completed_at if user.pk in current else None,
        )
        for slot, user in enumerate(extractors, start=1)
    ]
    _reconcile_derive_all(review=review, study=study, actor=actor)
    audit_event_record(
        review=review,
        actor=actor,
        action="extraction.assign",
        obj=study,
        before={"extractors": before},
        after={"extractors": [u.get_username() for u in extractors]},
    )
    return created


@transaction.atomic
def extraction_extractors_assign_bulk(
    *, review: Review, extractors: Iterable[User], per_study: int, actor: User
) -> int:
    """Round-robin the included studies without extractors over the chosen people."""
    return _round_robin_assign(
        review=review,
        studies=Study.objects.filter(
            pk__in=[s.pk for s in quality_retained_studies(review=review)]
        ),
        assignments=ExtractionAssignment,
        person="extractor",
        people=extractors,
        per_study=per_study,
        actor=actor,
        action="extraction.assign_bulk",
    )


def _reconcile_derive(*, review: Review, study: Study, field: ExtractionField, actor: User) -> None:
    """Once every extractor marked the study done, agreeing values become the reconciled one.

    The owner's reconciliation stays until the owner changes it; a derived value that no
    longer holds (someone edited afterwards) is withdrawn.
    """
    assignments = list(ExtractionAssignment.objects.filter(study=study))
    current = ExtractionValue.objects.filter(study=study, field=field, extractor=None).first()
    if current is not None and current.reconciled_by_id is not None:
        return
    agreed, found = None, False
    if assignments and all(a.completed_at for a in assignments):
        entered = dict(
            ExtractionValue.objects.filter(
                study=study, field=field, extractor_id__in=[a.extractor_id for a in assignments]
            ).values_list("extractor_id", "value")
        )
        candidates = [entered.get(a.extractor_id) for a in assignments]
        if all(values.values_equal(candidates[0], c) for c in candidates[1:]):
            agreed, found = candidates[0], True
    if not found:
        if current is not None:
            current.delete()
            audit_event_record(
                review=review,
                actor=actor,
                action="extraction.reconcile_withdraw",
                object_type="extractionvalue",
                object_id=f"{study.pk}:{field.pk}",
                before={"value": current.value},
            )
        return
    if current is not None and values.values_equal(current.value, agreed):
        return
    _value_write(
        review=review,
        current=current,
        actor=actor,
        action="extraction.reconcile_agree",
        force=False,
        study=study,
        field=field,
        extractor=None,
        value=agreed,
        reconciled_by=None,
    )


def _reconcile_derive_all(*, review: Review, study: Study, actor: User) -> None:
    for field in review.extraction_fields.all():
        _reconcile_derive(review=review, study=study, field=field, actor=actor)


def _field_of(*, review: Review, field: ExtractionField) -> None:
    if field.review_id != review.pk:
        raise ValidationError("This field belongs to another review.")


def _clean(field: ExtractionField, raw: str | list[str] | None) -> values.Value:
    try:
        return values.value_clean(field.kind, raw, field.choices)
    except values.ValueInvalid as error:
        raise ValidationError(str(error)) from None


def _stale_check(
    *,
    current: ExtractionValue | None,
    field: ExtractionField,
    what: str,
    seen_version: int | None,
    force: bool,
) -> None:
    """Refuse a write based on a value that changed since the user saw it (see stale.py)."""
    if current is None:
        by = ""
    elif (extractor := current.extractor) is not None:
        by = extractor.get_username()
    elif (reconciler := current.reconciled_by) is not None:
        by = reconciler.get_username()
    else:
        by = "the agreeing extractors"
    version_check(
        stored_version=current.version if current else 0,
        seen_version=seen_version,
        force=force,
        what=f"{what} of “{field.label}”",
        current=values.value_display(current.value) if current else "not filled in",
        by=by,
        at=current.updated_at if current else None,
    )


def _value_write(
    *,
    review: Review,
    current: ExtractionValue | None,
    actor: User,
    action: str,
    force: bool,
    **row: Any,
) -> ExtractionValue:
    """Create or update a value row one version up, audited as `action`; a forced overwrite of
    a newer value is audited as such too, with the version it replaced."""
    before = None if current is None else {"value": current.value, "version": current.version}
    if current is None:
        saved = ExtractionValue.objects.create(**row)
    else:
        for name, value in row.items():
            setattr(current, name, value)
        current.version += 1
        current.save()
        saved = current
    after = {"value": saved.value, "version": saved.version}
    if force and before is not None:
        audit_event_record(
            review=review,
            actor=actor,
            action="extraction_value.overwrite",
            obj=saved,
            before=before,
            after=after,
        )
    audit_event_record(
        review=review,
        actor=actor,
        action=action,
        obj=saved,
        before=before,
        after=dict(after, field=row["field"].key, study=row["study"].pk),
    )
    return saved


@transaction.atomic
def extraction_value_save(
    *,
    review: Review,
    study: Study,
    field: ExtractionField,
    extractor: User,
    raw: str | list[str] | None,
    seen_version: int | None,
    force: bool = False,
) -> ExtractionValue:
    """Save an assigned extractor's value (drafts save as they type); validated per kind.

    `seen_version` is the version of the value the extractor's page showed: a value changed
    since (in another tab) is not overwritten unless `force` (StaleWrite).
    """
    _field_of(review=review, field=field)
    study = _locked_included_study(review=review, study=study)
    assignment = ExtractionAssignment.objects.filter(study=study, extractor=extractor).first()
    if assignment is None:
        raise PermissionDenied("You are not assigned to extract this study.")
    if _role(review=review, user=extractor) is None:
        raise PermissionDenied("You are no longer a member of this review.")
    value = _clean(field, raw)
    current = (
        ExtractionValue.objects.select_related("extractor")
        .filter(study=study, field=field, extractor=extractor)
        .first()
    )
    if current is not None and values.values_equal(current.value, value):
        return current
    _stale_check(
        current=current, field=field, what="your value", seen_version=seen_version, force=force
    )
    saved = _value_write(
        review=review,
        current=current,
        actor=extractor,
        action="extraction.value",
        force=force,
        study=study,
        field=field,
        extractor=extractor,
        value=value,
    )
    _reconcile_derive(review=review, study=study, field=field, actor=extractor)
    return saved


@transaction.atomic
def extraction_complete_set(
    *, review: Review, study: Study, extractor: User, done: bool = True
) -> ExtractionAssignment:
    """Mark (or unmark) the extractor's work on a study done; reconciliation follows."""
    study = _locked_included_study(review=review, study=study)
    assignment = ExtractionAssignment.objects.filter(study=study, extractor=extractor).first()
    if assignment is None:
        raise PermissionDenied("You are not assigned to extract this study.")
    assignment.completed_at = timezone.now() if done else None
    assignment.save(update_fields=["completed_at"])
    audit_event_record(
        review=review,
        actor=extractor,
        action="extraction.complete" if done else "extraction.reopen",
        obj=assignment,
        after={"study": study.pk, "done": done},
    )
    _reconcile_derive_all(review=review, study=study, actor=extractor)
    return assignment


@transaction.atomic
def extraction_reconcile(
    *,
    review: Review,
    study: Study,
    field: ExtractionField,
    actor: User,
    raw: str | list[str] | None,
    seen_version: int | None,
    force: bool = False,
) -> ExtractionValue:
    """The owner's reconciled value of a field for a study (refused when stale, see above)."""
    _require_owner(review=review, user=actor)
    _field_of(review=review, field=field)
    study = _locked_included_study(review=review, study=study)
    value = _clean(field, raw)
    current = (
        ExtractionValue.objects.select_related("reconciled_by")
        .filter(study=study, field=field, extractor=None)
        .first()
    )
    _stale_check(
        current=current,
        field=field,
        what="the reconciled value",
        seen_version=seen_version,
        force=force,
    )
    return _value_write(
        review=review,
        current=current,
        actor=actor,
        action="extraction.reconcile",
        force=force,
        study=study,
        field=field,
        extractor=None,
        value=value,
        reconciled_by=actor,
    )
