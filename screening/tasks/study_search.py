"""The search-document fill after a large deduplication run: thin, by primary key; the
service's advisory lock keeps one fill per review at a time."""

from celery import shared_task
from django.db import OperationalError

from ..services.study_search import TASK_NAME, search_documents_fill


# A lost database connection is worth retrying; anything else is a bug to see in the logs.
@shared_task(name=TASK_NAME, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def search_documents_fill_task(*, review_id: int, after: int = 0) -> int:
    return search_documents_fill(review_id=review_id, after=after)
