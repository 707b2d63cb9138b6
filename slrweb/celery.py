import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

app = Celery("slrweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEAVY_QUEUE = "heavy"
LIGHT_QUEUE = "light"
# Long, memory-hungry work: a worker on the heavy queue takes these, one at a time.
HEAVY_TASKS = frozenset(
    {"screening.batch_import", "screening.review_deduplicate", "screening.ranking_train"}
)


def route_task(name, args, kwargs, options, task=None, **kw):
    """Heavy tasks to `heavy`, the rest to `light`; everything to a private default queue.

    A process whose default queue is neither (the test suite's per-run queue) keeps all its
    tasks on that one queue, which its single worker reads.
    """
    default_queue = app.conf.task_default_queue
    if default_queue not in (HEAVY_QUEUE, LIGHT_QUEUE):
        return {"queue": default_queue}
    return {"queue": HEAVY_QUEUE if name in HEAVY_TASKS else LIGHT_QUEUE}
