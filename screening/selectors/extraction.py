"""Reads of data extraction: the form per study, differences, the table, synthesis counts."""

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from ..domain import extraction as values
from ..models import (
    ExtractionAssignment,
    ExtractionField,
    ExtractionValue,
    Review,
    Study,
)
from .quality import quality_excluded_studies, quality_retained_studies


def extraction_fields(*, review: Review) -> list[ExtractionField]:
    return list(
        ExtractionField.objects.filter(review=review)
        .select_related("research_question")
        .order_by("research_question__position", "research_question_id", "position", "id")
    )


def extraction_fields_grouped(*, review: Review) -> list[dict[str, Any]]:
    """Fields grouped by research question, questions in protocol order, general ones last."""
    groups: dict[int | None, dict[str, Any]] = {}
    for rq in review.research_questions.all():
        groups[rq.pk] = {"research_question": rq, "fields": []}
    general: dict[str, Any] = {"research_question": None, "fields": []}
    for f in extraction_fields(review=review):
        groups.get(f.research_question_id, general)["fields"].append(f)
    return [*groups.values(), general]


@dataclass
class FieldCell:
    field: ExtractionField
    # (extractor, value or None, entered?)
    entries: list[tuple[User, object, bool]] = dataclasses.field(default_factory=list)
    mine: object = None
    mine_entered: bool = False
    mine_version: int = 0  # the version of the user's own value (0: none stored yet)
    reconciled: ExtractionValue | None = None

    @property
    def differs(self) -> bool:
        if len(self.entries) < 2:
            return False
        first = self.entries[0][1]
        return any(not values.values_equal(first, v) for _, v, _ in self.entries[1:])

    @property
    def mine_input(self) -> str | list[str]:
        return values.value_as_input(self.mine)

    @property
    def mine_display(self) -> str:
        return values.value_display(self.mine)

    @property
    def reconciled_version(self) -> int:
        return self.reconciled.version if self.reconciled else 0

    @property
    def reconciled_display(self) -> str:
        return values.value_display(self.reconciled.value) if self.reconciled else ""


@dataclass
class StudyExtraction:
    study: Study
    assignments: list[ExtractionAssignment]
    cells: list[FieldCell]

    @property
    def all_done(self) -> bool:
        return bool(self.assignments) and all(a.completed_at for a in self.assignments)

    @property
    def open_differences(self) -> int:
        return sum(1 for c in self.cells if c.reconciled is None and self.all_done)

    @property
    def status(self) -> str:
        if not self.assignments:
            return "unassigned"
        if not self.all_done:
            return "in_progress"
        if self.open_differences:
            return "differences"
        return "reconciled"


STATUS_LABELS = {
    "unassigned": "No extractor",
    "in_progress": "In progress",
    "differences": "Values differ",
    "reconciled": "Reconciled",
}


def _extraction_rows(
    *, review: Review, studies: list[Study], user: User | None = None
) -> list[StudyExtraction]:
    fields = extraction_fields(review=review)
    ids = [s.pk for s in studies]
    assignments: dict[int, list[ExtractionAssignment]] = defaultdict(list)
    for a in ExtractionAssignment.objects.filter(study_id__in=ids).select_related("extractor"):
        assignments[a.study_id].append(a)
    stored = {
        (v.study_id, v.field_id, v.extractor_id): v
        for v in ExtractionValue.objects.filter(study_id__in=ids, field__review=review)
    }
    rows: list[StudyExtraction] = []
    for study in studies:
        cells: list[FieldCell] = []
        for f in fields:
            cell = FieldCell(field=f, reconciled=stored.get((study.pk, f.pk, None)))
            for a in assignments[study.pk]:
                entry = stored.get((study.pk, f.pk, a.extractor_id))
                value = entry.value if entry else None
                cell.entries.append((a.extractor, value, entry is not None))
                if user is not None and a.extractor_id == user.pk:
                    cell.mine, cell.mine_entered = value, entry is not None
                    cell.mine_version = entry.version if entry else 0
            cells.append(cell)
        rows.append(StudyExtraction(study=study, assignments=assignments[study.pk], cells=cells))
    return rows


def extraction_overview(*, review: Review, user: User, status: str = "") -> dict[str, Any]:
    rows = _extraction_rows(review=review, studies=list(quality_retained_studies(review=review)))
    counts = Counter(r.status for r in rows)
    mine = [r for r in rows if any(a.extractor_id == user.pk for a in r.assignments)]
    if status:
        rows = [r for r in rows if r.status == status]
    return {
        "rows": rows,
        "mine": mine,
        "mine_left": sum(
            1
            for r in mine
            for a in r.assignments
            if a.extractor_id == user.pk and not a.completed_at
        ),
        "counts": [(key, label, counts[key]) for key, label in STATUS_LABELS.items()],
        "total_studies": sum(counts.values()),
        "mine_next": next(
            (
                r.study
                for r in mine
                for a in r.assignments
                if a.extractor_id == user.pk and not a.completed_at
            ),
            None,
        ),
        "field_count": ExtractionField.objects.filter(review=review).count(),
    }


def extraction_study_sheet(
    *, review: Review, study: Study, user: User, is_owner: bool
) -> dict[str, Any]:
    """The user's own form and, unless blind mode hides them, every extractor's values.

    In blind mode an extractor sees nobody else's values until every extractor has marked the
    study done; an owner who does not extract this study sees them to reconcile.
    """
    row = _extraction_rows(review=review, studies=[study], user=user)[0]
    groups: dict[int | None, dict[str, Any]] = {}
    for cell in row.cells:
        rq = cell.field.research_question
        key = rq.pk if rq else None
        groups.setdefault(key, {"research_question": rq, "cells": []})["cells"].append(cell)
    mine = next((a for a in row.assignments if a.extractor_id == user.pk), None)
    shows_others = not review.blind_mode or row.all_done or (is_owner and mine is None)
    return {
        "row": row,
        "groups": list(groups.values()),
        "my_assignment": mine,
        "shows_others": shows_others,
    }


def extraction_cell(
    *, review: Review, study: Study, field: ExtractionField, user: User
) -> FieldCell:
    row = _extraction_rows(review=review, studies=[study], user=user)[0]
    return next(c for c in row.cells if c.field.pk == field.pk)


def extraction_field_get(*, review: Review, field_id: int) -> ExtractionField | None:
    return ExtractionField.objects.filter(review=review, pk=field_id).first()


def extraction_table(*, review: Review) -> dict[str, Any]:
    """One row per included study, one column per field, reconciled values."""
    fields = extraction_fields(review=review)
    studies = list(quality_retained_studies(review=review))
    reconciled = {
        (v.study_id, v.field_id): v.value
        for v in ExtractionValue.objects.filter(
            field__review=review, extractor=None, study__in=studies
        )
    }
    rows = [
        {
            "study": s,
            "values": [reconciled.get((s.pk, f.pk)) for f in fields],
            "display": [values.value_display(reconciled.get((s.pk, f.pk))) for f in fields],
        }
        for s in studies
    ]
    return {"fields": fields, "rows": rows}


def _reconciled(*, review: Review, field: ExtractionField) -> QuerySet[ExtractionValue]:
    return ExtractionValue.objects.filter(
        field=field, extractor=None, study__in=quality_retained_studies(review=review)
    )


def extraction_synthesis(*, review: Review) -> dict[str, Any]:
    """Studies per research question (from 'contributes to' flags), per choice, per year."""
    included = quality_retained_studies(review=review)
    flags = {
        f.research_question_id: f
        for f in ExtractionField.objects.filter(review=review, is_contribution=True)
    }
    themes: list[dict[str, Any]] = []
    for rq in review.research_questions.all():
        flag = flags.get(rq.pk)
        count = _reconciled(review=review, field=flag).filter(value=True).count() if flag else None
        themes.append({"research_question": rq, "field": flag, "count": count})
    choice_fields: list[dict[str, Any]] = []
    Kind = ExtractionField.Kind
    for f in (
        ExtractionField.objects.filter(
            review=review, kind__in=[Kind.CHOICE, Kind.MULTI_CHOICE, Kind.YES_NO]
        )
        .exclude(is_contribution=True)
        .select_related("research_question")
    ):
        counter: Counter[object] = Counter()
        for value in _reconciled(review=review, field=f).values_list("value", flat=True):
            for choice in value if isinstance(value, list) else [value]:
                if choice is not None:
                    counter[choice] += 1
        if f.kind == Kind.YES_NO:
            counts = [("Yes", "yes", counter[True]), ("No", "no", counter[False])]
        else:
            counts = [(c, c, counter[c]) for c in f.choices]
        choice_fields.append({"field": f, "counts": counts})
    years = Counter(included.values_list("year", flat=True))
    return {
        "themes": themes,
        "choice_fields": choice_fields,
        "years": sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)),
        "included": included.count(),
        "quality_excluded": quality_excluded_studies(review=review).count(),
        "max_year_count": max(years.values(), default=0),
    }


def extraction_studies_filter(
    *,
    review: Review,
    field: ExtractionField | None = None,
    raw: str = "",
    year: int | None = None,
    no_year: bool = False,
) -> QuerySet[Study]:
    """The studies behind a synthesis count: a field's reconciled choice or yes/no, a year.

    Raises ValidationError when the field cannot be counted or the value is not one of its
    answers.
    """
    studies = quality_retained_studies(review=review)
    if field is not None:
        Kind = ExtractionField.Kind
        if field.kind not in (Kind.CHOICE, Kind.MULTI_CHOICE, Kind.YES_NO):
            raise ValidationError("Only choice and yes/no fields are counted.")
        kind = Kind.CHOICE if field.kind == Kind.MULTI_CHOICE else field.kind
        try:
            value = values.value_clean(kind, raw, field.choices)
        except values.ValueInvalid as error:
            raise ValidationError(str(error)) from None
        reconciled = ExtractionValue.objects.filter(field=field, extractor=None)
        if field.kind == Kind.MULTI_CHOICE:
            # JSON containment is PostgreSQL-only; the embedded default runs on SQLite.
            ids = [
                study_id
                for study_id, picked in reconciled.values_list("study_id", "value")
                if isinstance(picked, list) and value in picked
            ]
            studies = studies.filter(pk__in=ids)
        else:
            studies = studies.filter(pk__in=reconciled.filter(value=value).values("study_id"))
    if year is not None:
        studies = studies.filter(year=year)
    if no_year:
        studies = studies.filter(year__isnull=True)
    return studies


def extraction_csv_rows(*, review: Review) -> list[list[object]]:
    """The whole extraction table for a spreadsheet: one row per study, one column per field.

    Reconciled values only; multi-choice joined with "; "; text cells made formula-safe.
    """
    table = extraction_table(review=review)
    headers: list[str] = []
    for f in table["fields"]:
        rq = f.research_question
        header = f"{rq.code}: {f.label}" if rq and not f.is_contribution else f.label
        headers.append(f"{header} ({f.key})" if header in headers else header)
    rows: list[list[object]] = [["Study ID", "Title", "Authors", "Year", "DOI", *headers]]
    for row in table["rows"]:
        study = row["study"]
        authors = study.authors if isinstance(study.authors, list) else []
        cells = [
            value if values.is_number(value) else values.spreadsheet_text(shown)
            for value, shown in zip(row["values"], row["display"], strict=True)
        ]
        rows.append(
            [
                study.pk,
                values.spreadsheet_text(study.title),
                values.spreadsheet_text("; ".join(str(a) for a in authors)),
                study.year or "",
                values.spreadsheet_text(study.doi),
                *cells,
            ]
        )
    return rows
