import os

from celery import Celery
from celery.signals import worker_init

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


def publisher_warm() -> None:
    """Build now what the first task send of a process would build: the producer pool, the
    message sender and the result classes (imports and set-up, 150 ms in a web process).

    A web process calls it as it starts (slrweb/wsgi.py), so the first decision of each
    process that schedules a training does not carry it. Nothing connects to the broker here.
    """
    _ = (app.producer_pool, app.amqp.send_task_message, app.AsyncResult, app.backend)


@worker_init.connect
def worker_statements_on_one_core(**_kwargs):
    """In a worker, each database connection runs its statements without parallel workers.

    A worker's counts and scans (the funnel of a million records, a ranking run's reads)
    planned as parallel queries took both of a 2-core server's cores for their duration, and
    the screening requests arriving meanwhile waited (300-400 ms, docs/benchmarks.md, "The
    funnel of a busy review"). Background work may take longer; the web's statements keep
    PostgreSQL's default. Connected when the worker starts, before its pool forks.
    """
    from django.db.backends.signals import connection_created

    connection_created.connect(parallel_workers_off, dispatch_uid="slrweb-parallel-workers-off")


def parallel_workers_off(sender, connection, **_kwargs):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")


HEAVY_QUEUE = "heavy"
LIGHT_QUEUE = "light"
# Long, memory-hungry work: a worker on the heavy queue takes these, one at a time.
HEAVY_TASKS = frozenset(
    {
        "screening.batch_import",
        "screening.review_deduplicate",
        "screening.ranking_train",
        "screening.search_documents_fill",
    }
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
