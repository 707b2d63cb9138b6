"""Celery tasks, one module per workflow area; imported here so the worker registers them."""

from .core import ping
from .dedup import review_deduplicate_task

__all__ = ["ping", "review_deduplicate_task"]
