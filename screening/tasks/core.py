"""Thin Celery wrappers: load by primary key, call a service, retry. Idempotent."""

from celery import shared_task

from ..models import Review


@shared_task(name="screening.ping")
def ping(review_id: int) -> dict:
    """A round trip through the worker and the database (used by health checks and tests)."""
    review = Review.objects.filter(pk=review_id).values("slug", "title").first()
    return {"review": review}
