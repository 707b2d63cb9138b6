"""Reads for the PRISMA-S report: the logged searches and duplicate removal, as domain input."""

import json

from django.db.models import Count, Q

from ..domain.prisma_s import (
    CHECKLIST,
    DedupFigures,
    PrismaSItem,
    SearchLine,
    SearchLog,
    prisma_s_items,
    prisma_s_markdown,
)
from ..models import DuplicateCandidate, PrismaSAnswers, Record, Review, SearchRun, StudyMerge


def prisma_s_answers(*, review: Review) -> PrismaSAnswers | None:
    return PrismaSAnswers.objects.filter(review=review).select_related("updated_by").first()


def prisma_s_entered(*, review: Review) -> dict[int, str]:
    stored = prisma_s_answers(review=review)
    if stored is None:
        return {}
    return {int(number): text for number, text in stored.answers.items()}


def prisma_s_search_log(*, review: Review) -> SearchLog:
    imported = {
        (row["batch__search_run_id"], row["batch__source__name"]): row["n"]
        for row in Record.objects.filter(review=review)
        .values("batch__search_run_id", "batch__source__name")
        .annotate(n=Count("id"))
    }
    runs = SearchRun.objects.filter(review=review).select_related("search_string", "source")
    lines = [
        SearchLine(
            source=run.source.name,
            string=run.search_string.text,
            run_on=run.run_on,
            hits_reported=run.hits_reported,
            records_imported=imported.get((run.id, run.source.name), 0),
            note=run.note,
        )
        for run in runs.order_by(
            "source__position", "source__name", "search_string__position", "run_on", "id"
        )
    ]
    records = Record.objects.filter(review=review).aggregate(
        total=Count("id"), deduplicated=Count("id", filter=Q(study__isnull=False))
    )
    studies = review.studies.count()
    candidates = DuplicateCandidate.objects.filter(review=review).aggregate(
        pending=Count("id", filter=Q(status=DuplicateCandidate.Status.PENDING)),
        distinct=Count("id", filter=Q(status=DuplicateCandidate.Status.NOT_DUPLICATE)),
    )
    return SearchLog(
        sources=list(review.sources.order_by("position", "name").values_list("name", flat=True)),
        lines=lines,
        dedup=DedupFigures(
            records=records["total"],
            studies=studies,
            # The funnel's own arithmetic (screening.domain.funnel): records kept minus studies.
            duplicates_removed=max(records["deduplicated"] - studies, 0),
            merged_by_reviewer=StudyMerge.objects.filter(
                review=review, undone_at__isnull=True
            ).count(),
            candidates_pending=candidates["pending"],
            candidates_not_duplicate=candidates["distinct"],
        ),
        unlogged_imports={source: n for (run_id, source), n in imported.items() if run_id is None},
    )


def prisma_s_report(*, review: Review) -> list[PrismaSItem]:
    return prisma_s_items(
        log=prisma_s_search_log(review=review), entered=prisma_s_entered(review=review)
    )


def prisma_s_asks() -> dict[int, str]:
    """What each checklist item asks, by item number (the page prints it under the item)."""
    return {entry.number: entry.asks for entry in CHECKLIST}


def prisma_s_document(*, review: Review, fmt: str) -> str:
    """The report as a download: `json` (the command's contract) or `md`."""
    items = prisma_s_report(review=review)
    if fmt == "md":
        return prisma_s_markdown(title=review.title, items=items)
    if fmt == "json":
        return json.dumps(
            {"items": [item.as_dict() for item in items]}, indent=2, ensure_ascii=False
        )
    raise ValueError(f"Unknown PRISMA-S format {fmt!r}: expected json or md.")
