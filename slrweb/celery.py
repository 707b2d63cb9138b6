import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

app = Celery("slrweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweep(sender, **_kwargs):
    """The sweep that re-sends unsent imports and fails those whose worker died; it needs a
    `celery -A slrweb beat` process (one per deployment) beside the workers."""
    from django.conf import settings

    sender.add_periodic_task(
        settings.IMPORT_SWEEP_SECONDS, sender.signature("screening.sweep"), name="import sweep"
    )


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
