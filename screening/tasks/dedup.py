"""Deduplication task: thin, by primary key; the service's advisory lock keeps runs for one
review one at a time, and a second run finds nothing left to do."""

from celery import shared_task
from django.db import OperationalError

from ..models import Review
from ..services.dedup import TASK_NAME, review_deduplicate


# A lost database connection is worth retrying; anything else is a bug to see in the logs.
@shared_task(name=TASK_NAME, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def review_deduplicate_task(*, review_id: int) -> dict | None:
    review = Review.objects.filter(pk=review_id).first()
    if review is None:
        return None  # the review was deleted after the import that asked for this run
    return review_deduplicate(review=review)
