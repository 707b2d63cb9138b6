"""Celery tasks, one module per workflow area; imported here so the worker registers them."""

from .core import ping
from .ranking import ranking_train

__all__ = ["ping", "ranking_train"]
