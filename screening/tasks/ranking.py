"""Thin Celery wrapper for the prioritisation model's training."""

from celery import shared_task

from ..services.ranking import ranking_run_execute


@shared_task(name="screening.ranking_train", acks_late=True)
def ranking_train(run_id: int) -> dict:
    """Train the model of a claimed RankingRun and write its priorities (idempotent)."""
    run = ranking_run_execute(run_id=run_id)
    if run is None:
        return {"run": run_id, "status": "missing"}
    return {"run": run.pk, "status": run.status, "scored": run.scored}
