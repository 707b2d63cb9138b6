"""Reads for the imports pages: the batch list, one batch's report, Table 1 reconciliation."""

import zlib
from dataclasses import astuple, dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from ..models import (
    Decision,
    DuplicateCandidate,
    ExtractionValue,
    FullText,
    ImportBatch,
    QualityAnswer,
    Record,
    Resolution,
    Review,
    SearchRun,
    Study,
    StudyNote,
    StudyTag,
)

# The note of a search run an import created without the library's hit count.
RUN_CREATED_BY_IMPORT = "Created by an import; the hits the library reported are not recorded yet."


def batch_list(*, review: Review) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(review=review).select_related(
        "source", "search_run__search_string", "uploaded_by"
    )


def batch_get(*, review: Review, batch_id: int) -> ImportBatch | None:
    return batch_list(review=review).filter(pk=batch_id).first()


def batch_records_sample(*, batch: ImportBatch, limit: int = 25) -> QuerySet[Record]:
    return batch.records.only("position", "title", "authors", "year", "venue", "doi", "abstract")[
        :limit
    ]


def batches_active(*, review: Review) -> bool:
    return ImportBatch.objects.filter(
        review=review, status__in=[ImportBatch.Status.PENDING, ImportBatch.Status.RUNNING]
    ).exists()


def _difference(hits: int | None, imported: int) -> dict[str, Any]:
    if hits is None:
        return {"value": None, "state": "not_recorded"}
    diff = imported - hits
    return {"value": diff, "state": "match" if diff == 0 else ("more" if diff > 0 else "fewer")}


def import_reconciliation(*, review: Review) -> dict[str, Any]:
    """Table 1 beside what was imported: per search run and per source, hits vs records.

    Only finished imports count. A run created by an import without a reported hit count
    shows "not recorded" rather than a difference against zero.
    """
    done = ImportBatch.objects.filter(review=review, status=ImportBatch.Status.DONE)
    per_run = {
        row["search_run_id"]: row
        for row in done.filter(search_run__isnull=False)
        .values("search_run_id")
        .annotate(records_sum=Sum("records_read"), files=Count("id"))
    }
    per_source = {
        row["source_id"]: row
        for row in done.values("source_id").annotate(
            records_sum=Sum("records_read"), files=Count("id")
        )
    }
    runs: list[dict[str, Any]] = []
    hits_by_source: dict[int, int | None] = {}
    for run in SearchRun.objects.filter(review=review).select_related("search_string", "source"):
        hits = (
            None
            if run.hits_reported == 0 and run.note == RUN_CREATED_BY_IMPORT
            else (run.hits_reported)
        )
        imported = (per_run.get(run.id) or {}).get("records_sum") or 0
        runs.append(
            {
                "run": run,
                "hits": hits,
                "imported": imported,
                "files": (per_run.get(run.id) or {}).get("files") or 0,
                "difference": _difference(hits, imported),
            }
        )
        if hits is not None:
            hits_by_source[run.source_id] = (hits_by_source.get(run.source_id) or 0) + hits
    sources: list[dict[str, Any]] = []
    for source in review.sources.all():
        row = per_source.get(source.id) or {}
        hits = hits_by_source.get(source.id)
        imported = row.get("records_sum") or 0
        sources.append(
            {
                "source": source,
                "hits": hits,
                "imported": imported,
                "files": row.get("files") or 0,
                "difference": _difference(hits, imported),
            }
        )
    total_hits = sum(s["hits"] or 0 for s in sources)
    total_imported = sum(s["imported"] for s in sources)
    return {
        "runs": runs,
        "sources": sources,
        "total_hits": total_hits,
        "total_imported": total_imported,
        "total_difference": _difference(total_hits, total_imported),
    }


@dataclass(frozen=True)
class DeleteImpact:
    """What deleting an import takes with it: its records; the studies left with no record
    (with everything recorded on them); the studies it shares with other imports stay."""

    records: int
    studies_removed: int
    studies_kept: int
    decisions: int
    resolutions: int
    notes: int
    tags: int
    full_texts: int
    quality_answers: int
    extraction_values: int
    candidates: int

    @property
    def has_work(self) -> bool:
        """Anything a person did would go (a confirmation is then required)."""
        return any(
            (
                self.decisions,
                self.resolutions,
                self.notes,
                self.tags,
                self.full_texts,
                self.quality_answers,
                self.extraction_values,
            )
        )

    @property
    def version(self) -> int:
        """A fingerprint of these figures: a confirmation shown before they changed is stale."""
        return zlib.crc32(repr(astuple(self)).encode())


def batch_studies_orphaned(*, batch: ImportBatch) -> QuerySet[Study]:
    """The studies whose every record comes from this import."""
    return (
        Study.objects.filter(records__batch=batch)
        .exclude(records__in=Record.objects.exclude(batch=batch))
        .distinct()
    )


def batch_delete_impact(*, batch: ImportBatch) -> DeleteImpact:
    orphaned = list(batch_studies_orphaned(batch=batch).values_list("pk", flat=True))
    touched = Study.objects.filter(records__batch=batch).distinct().count()
    records = batch.records.values_list("pk", flat=True)
    return DeleteImpact(
        records=batch.records.count(),
        studies_removed=len(orphaned),
        studies_kept=touched - len(orphaned),
        decisions=Decision.objects.filter(study__in=orphaned).count(),
        resolutions=Resolution.objects.filter(study__in=orphaned).count(),
        notes=StudyNote.objects.filter(study__in=orphaned).count(),
        tags=StudyTag.objects.filter(study__in=orphaned).count(),
        full_texts=FullText.objects.filter(study__in=orphaned).count(),
        quality_answers=QualityAnswer.objects.filter(study__in=orphaned).count(),
        extraction_values=ExtractionValue.objects.filter(study__in=orphaned).count(),
        candidates=DuplicateCandidate.objects.filter(
            Q(record_a__in=records) | Q(record_b__in=records)
        ).count(),
    )
