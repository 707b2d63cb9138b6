"""Sending a task to the broker without letting a broker outage fail the caller.

Every service that enqueues calls `task_enqueue` after its transaction committed. The state
that asked for the work is already stored (a pending import, a requested deduplication), so
a refused send only delays the work: the caller keeps a durable mark of what is pending and
the periodic sweep (`screening.sweep`, run by Celery beat) sends it again once the broker is
back. It answers at once instead of retrying for seconds while a web request waits.
"""

import logging
from typing import Any

from celery import current_app
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

BROKER_DOWN_MESSAGE = (
    "The background worker is unreachable right now; your request is saved and will be "
    "carried out as soon as it is back."
)


def task_enqueue(name: str, *, kwargs: dict[str, Any], countdown: float | None = None) -> bool:
    """Send the task; False (logged, not raised) when the broker cannot be reached."""
    try:
        # ignore_result: no caller reads a task's result. Without it Celery subscribes the
        # sending process to each task's result channel (a Redis round trip per send, and a
        # subscription the web process kept for nothing).
        current_app.send_task(
            name, kwargs=kwargs, countdown=countdown, retry=False, ignore_result=True
        )
    except (BrokerError, OSError) as error:
        logger.warning("task %s %s not queued, broker unreachable: %s", name, kwargs, error)
        return False
    return True
