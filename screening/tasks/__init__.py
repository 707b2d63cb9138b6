"""Celery tasks, one module per workflow area; imported here so the worker registers them."""

from .core import ping
from .reports import funnel_refresh_task

__all__ = ["funnel_refresh_task", "ping"]
