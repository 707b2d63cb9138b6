"""The WSGI module gunicorn loads in each worker process resolves the URLconf before the worker
accepts a connection: importing the views (and the libraries they bring, scikit-learn among
them) takes over a second, which the first request of every new worker process paid
(the floor of the HTTP benchmark saw 1.3 s on /healthz). The same for the task publisher: the
first request of a process that sent a task built it (150 ms in a decision that scheduled a
training). And the garbage collector's full collections walked everything loaded so far
(100-200 ms, the whole process stopped): it is frozen out of them once loaded."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _after_loading_the_wsgi_module(expression: str) -> list[str]:
    """What `expression` prints in a fresh process that has only imported slrweb.wsgi."""
    probe = f"import sys; import slrweb.wsgi; print({expression})"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "slrweb.settings"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.split()


def test_loading_the_wsgi_application_imports_the_urlconf_and_its_views():
    printed = _after_loading_the_wsgi_module(
        "'slrweb.urls' in sys.modules, 'screening.views' in sys.modules"
    )
    assert printed == ["True", "True"]


def test_loading_the_wsgi_application_builds_the_task_publisher():
    printed = _after_loading_the_wsgi_module(
        "slrweb.celery.app.amqp._producer_pool is not None, 'celery.result' in sys.modules"
    )
    assert printed == ["True", "True"]


def test_what_the_wsgi_module_loaded_is_left_out_of_full_garbage_collections():
    frozen, tracked = _after_loading_the_wsgi_module(
        "__import__('gc').get_freeze_count(), len(__import__('gc').get_objects())"
    )
    assert int(frozen) > 100_000
    assert int(frozen) > 10 * int(tracked)
