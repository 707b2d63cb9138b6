"""Celery tasks, one module per workflow area; imported here so the worker registers them."""

from .core import ping
from .imports import batch_import

__all__ = ["batch_import", "ping"]
