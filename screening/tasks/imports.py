"""Import tasks: thin wrappers around screening.services.imports."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from ..services.imports import IMPORT_TASK, batch_run


@shared_task(
    name=IMPORT_TASK,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
    acks_late=True,
)
def batch_import(batch_id: int) -> dict:
    """Import one stored file. Running it twice ends in the same state (see batch_run)."""
    batch = batch_run(batch_id=batch_id)
    if batch is None:
        return {"batch": batch_id, "status": "missing"}
    return {"batch": batch.pk, "status": batch.status, "records": batch.records_read}
