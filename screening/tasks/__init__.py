"""Celery tasks, one module per workflow area; every module here is imported so the worker
registers its tasks (adding an area's module needs no edit of this file)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
