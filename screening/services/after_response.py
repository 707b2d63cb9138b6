"""Work a request asks for that its answer need not wait for: run once the answer is sent.

A screening decision asks the ranking area whether a retraining is due. The check reads the
database (one statement; a tenth of the time it creates a run and sends a task), and the
reviewer waited for it before seeing the next study: the decisions that scheduled a training
were the slowest tenth of one reviewer's decisions (docs/benchmarks.md).

`after_response(work)` called while a request is being handled keeps `work` until the request
is finished: Django sends `request_finished` when the WSGI server closes the response, after
gunicorn has written all of it to the client. Called anywhere else (a Celery task, a
management command, a shell) it runs `work` at once, as before.

Only work that the next request would redo when it is lost belongs here: a worker process
killed between the answer and the work drops it (the ranking check runs again at the next
decision). A failure is logged, never raised: the answer has already gone. A database
connection the work opens after Django closed an expired one on `request_finished` is closed,
as any, by the next request's `request_started`.
"""

import logging
import threading
from collections.abc import Callable

from django.core.signals import request_finished, request_started

logger = logging.getLogger(__name__)

_request = threading.local()  # .pending: the work of the request this thread is handling


def after_response(work: Callable[[], object]) -> None:
    """Run `work` once the current request's answer is sent, or now outside a request."""
    pending: list[Callable[[], object]] | None = getattr(_request, "pending", None)
    if pending is None:
        work()
    else:
        pending.append(work)


def _request_opened(**_kwargs: object) -> None:
    _request.pending = []


def _request_closed(**_kwargs: object) -> None:
    pending: list[Callable[[], object]] | None = getattr(_request, "pending", None)
    _request.pending = None
    if not pending:
        return
    for work in pending:
        try:
            work()
        except Exception:  # the answer has gone: log it, as a task's failure would be
            logger.exception("work after the response failed: %r", work)


def after_response_connect() -> None:
    """Connected once, when the app registry is ready (ScreeningConfig.ready)."""
    request_started.connect(_request_opened, dispatch_uid="slrweb-after-response-open")
    request_finished.connect(_request_closed, dispatch_uid="slrweb-after-response-run")
