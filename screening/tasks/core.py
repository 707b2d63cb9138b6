"""Thin Celery wrappers: load by primary key, call a service, retry. Idempotent."""

from celery import shared_task
from celery.signals import worker_ready

from ..models import Review
from ..services.dedup import dedup_sweep
from ..services.funnel import funnel_sweep
from ..services.imports import batches_sweep
from ..services.screening import (
    stage_decisions_compact,
    stage_progress_compact,
    stage_waiting_compact,
)
from ..services.study_search import search_sweep


@shared_task(name="screening.ping")
def ping(review_id: int) -> dict:
    """A round trip through the worker and the database (used by health checks and tests)."""
    review = Review.objects.filter(pk=review_id).values("slug", "title").first()
    return {"review": review}


@shared_task(name="screening.sweep", ignore_result=True)
def sweep() -> dict:
    """Periodic (Celery beat): re-send unsent imports, deduplication runs, funnel
    recomputations and search-document fills, fail the imports whose worker died, fold the
    stages' waiting, progress and decision counts."""
    return {
        **batches_sweep(),
        "dedup_sent": dedup_sweep(),
        "funnel_sent": funnel_sweep(),
        "search_fills_sent": search_sweep(),
        "waiting_rows_folded": stage_waiting_compact(),
        "progress_rows_folded": stage_progress_compact(),
        "decisions_rows_folded": stage_decisions_compact(),
    }


@worker_ready.connect
def _sweep_on_start(sender, **_kwargs):
    # A worker that starts (again) picks up what waited for it without waiting for beat.
    batches_sweep()
    dedup_sweep()
    funnel_sweep()
    search_sweep()
