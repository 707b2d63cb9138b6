"""Thin Celery wrapper for the funnel: load by id, call the service."""

from celery import shared_task

from ..services.funnel import TASK_NAME, funnel_refresh


@shared_task(name=TASK_NAME, acks_late=True)
def funnel_refresh_task(review_id: int) -> dict | None:
    """Recompute a review's funnel snapshot (idempotent: a rerun adds an identical snapshot)."""
    snapshot = funnel_refresh(review_id=review_id)
    if snapshot is None:
        return None
    return {"snapshot": snapshot.pk, "computed_at": snapshot.computed_at.isoformat()}
