"""A worker's database connections run their statements without parallel workers
(`slrweb/celery.py`), so a background count never takes every core from the web's requests;
the web's connections keep PostgreSQL's default."""

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from slrweb.celery import parallel_workers_off, worker_statements_on_one_core

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="parallel query is PostgreSQL's"
)


def _parallel_workers() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_worker_connection_plans_no_parallel_query_and_the_web_keeps_the_default():
    web_default = _parallel_workers()
    assert web_default != "0"
    worker_statements_on_one_core()  # connected to `worker_init`: what a worker runs as it starts
    try:
        connection.close()  # the worker's next connection
        assert _parallel_workers() == "0"
    finally:
        connection_created.disconnect(
            parallel_workers_off, dispatch_uid="slrweb-parallel-workers-off"
        )
        connection.close()
    assert _parallel_workers() == web_default
