"""Reads for the deduplication pages: the next pair to decide, merged studies, source overlap."""

from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, Min, OuterRef, Prefetch, Q, QuerySet

from ..models import DuplicateCandidate, Record, Review, Source, Study, StudyMerge


@dataclass(frozen=True)
class Token:
    text: str
    changed: bool


@dataclass(frozen=True)
class FieldRow:
    label: str
    a: list[Token]
    b: list[Token]
    same: bool


def _tokens(a: str, b: str) -> tuple[list[Token], list[Token]]:
    """Word-level difference of two values: the template marks the changed words (escaped)."""
    wa, wb = a.split(), b.split()
    ka, kb = [w.lower().strip(".,;:") for w in wa], [w.lower().strip(".,;:") for w in wb]
    out_a = [Token(w, True) for w in wa]
    out_b = [Token(w, True) for w in wb]
    for block in SequenceMatcher(None, ka, kb, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            out_a[block.a + k] = Token(wa[block.a + k], False)
            out_b[block.b + k] = Token(wb[block.b + k], False)
    return out_a, out_b


def _fields(record: Record) -> list[tuple[str, str]]:
    locator = ", ".join(
        part
        for part in (
            f"vol. {record.volume}" if record.volume else "",
            f"no. {record.issue}" if record.issue else "",
            f"pp. {record.pages}" if record.pages else "",
        )
        if part
    )
    return [
        ("Title", record.title),
        ("Authors", "; ".join(str(a) for a in record.authors or [])),
        ("Year", str(record.year or "")),
        ("Venue", record.venue),
        ("Volume, issue, pages", locator),
        ("DOI", record.doi),
        ("PMID", record.pmid),
        ("Type", record.publication_type),
        ("Abstract", record.abstract),
    ]


def candidate_rows(candidate: DuplicateCandidate) -> list[FieldRow]:
    rows: list[FieldRow] = []
    for (label, a), (_, b) in zip(
        _fields(candidate.record_a), _fields(candidate.record_b), strict=True
    ):
        if not a and not b:
            continue
        ta, tb = _tokens(a, b)
        rows.append(FieldRow(label, ta, tb, a.strip().lower() == b.strip().lower()))
    return rows


def _pending(review: Review) -> QuerySet[DuplicateCandidate]:
    # A pair whose records already share a study (merged through another pair) needs no one.
    return (
        DuplicateCandidate.objects.filter(review=review, status=DuplicateCandidate.Status.PENDING)
        .exclude(record_a__study=F("record_b__study"))
        .select_related(
            "record_a__batch__source",
            "record_b__batch__source",
            "record_a__study__current_stage",
            "record_b__study__current_stage",
        )
    )


def candidate_next(*, review: Review, skip: tuple[int, ...] = ()) -> DuplicateCandidate | None:
    return _pending(review).exclude(pk__in=skip).order_by("-score", "id").first()


def candidate_for(*, review: Review, pk: int) -> DuplicateCandidate | None:
    return _pending(review).filter(pk=pk).first()


def unassigned_count(*, review: Review) -> int:
    """Records imported but not yet grouped into a study (deduplication still to run)."""
    return Record.objects.filter(review=review, study__isnull=True).count()


def pending_count(*, review: Review) -> int:
    return _pending(review).count()


def last_decided(*, review: Review, user: User) -> DuplicateCandidate | None:
    return (
        DuplicateCandidate.objects.filter(review=review, decided_by=user)
        .exclude(status=DuplicateCandidate.Status.PENDING)
        .order_by("-decided_at", "-id")
        .first()
    )


MERGED_PAGE_SIZE = 25


def merged_studies_page(*, review: Review, query: str = "", page: int = 1) -> Page[Study]:
    """One page of the studies holding more than one record, with their records and undoable
    merges; `query` finds a study by its number or a record's (a query of digits only, which
    would otherwise also match any title or DOI holding those digits), else by words of its own
    or its records' titles, DOIs or sources."""
    several = (
        Record.objects.filter(review=review, study__isnull=False)
        .values("study_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values("study_id")
    )
    studies = Study.objects.filter(review=review, pk__in=several)
    if query.isdigit():
        studies = studies.filter(Q(pk=int(query)) | Q(records__pk=int(query))).distinct()
    elif query:
        matching_records = Record.objects.filter(study=OuterRef("pk")).filter(
            Q(title__icontains=query)
            | Q(doi__icontains=query)
            | Q(batch__source__name__iexact=query)
        )
        match = Q(title__icontains=query) | Q(doi__icontains=query) | Exists(matching_records)
        studies = studies.filter(match).distinct()
    paginator = Paginator(studies.order_by("id"), MERGED_PAGE_SIZE)
    found = paginator.get_page(page)
    ids = [study.pk for study in found.object_list]
    found.object_list = list(
        Study.objects.filter(pk__in=ids)
        # Records created after the study's first decision joined it while it was screened.
        .annotate(screening_began=Min("decisions__created_at"))
        .select_related("current_stage")
        .prefetch_related(
            Prefetch(
                "records",
                queryset=Record.objects.select_related("batch__source").order_by("id"),
            ),
            Prefetch(
                "merges_received",
                queryset=StudyMerge.objects.filter(undone_at__isnull=True).select_related(
                    "merged_by"
                ),
                to_attr="active_merges",
            ),
        )
        .order_by("id")
    )
    return found


@dataclass(frozen=True)
class SourceOverview:
    sources: list[dict[str, Any]]  # [{"name", "records", "studies"}]
    matrix: list[dict[str, Any]]  # rows: {"name", "cells": [n or None on the diagonal]}


def source_overview(*, review: Review) -> SourceOverview:
    """Per-source record and study counts and how many studies each pair of sources shares."""
    names = dict(Source.objects.filter(review=review).values_list("pk", "name"))
    per_study: dict[int, set[int]] = {}
    records_per_source: dict[int, int] = {}
    for study_id, source_id in Record.objects.filter(review=review).values_list(
        "study_id", "batch__source_id"
    ):
        records_per_source[source_id] = records_per_source.get(source_id, 0) + 1
        if study_id is not None:
            per_study.setdefault(study_id, set()).add(source_id)
    ids = sorted(names, key=lambda pk: names[pk].lower())
    studies_per_source = dict.fromkeys(ids, 0)
    shared: dict[tuple[int, int], int] = {}
    for study_sources in per_study.values():
        for source_id in study_sources:
            studies_per_source[source_id] = studies_per_source.get(source_id, 0) + 1
        for a, b in combinations(sorted(study_sources), 2):
            shared[(a, b)] = shared.get((a, b), 0) + 1
    sources = [
        {
            "name": names[pk],
            "records": records_per_source.get(pk, 0),
            "studies": studies_per_source.get(pk, 0),
        }
        for pk in ids
    ]
    matrix = [
        {
            "name": names[a],
            "cells": [None if a == b else shared.get((min(a, b), max(a, b)), 0) for b in ids],
        }
        for a in ids
    ]
    return SourceOverview(sources=sources, matrix=matrix)
