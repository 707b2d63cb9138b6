"""Celery tasks, one module per workflow area; imported here so the worker registers them."""

from .core import ping

__all__ = ["ping"]
