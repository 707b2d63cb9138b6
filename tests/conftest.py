"""Shared fixtures: the fixed cast, a real Celery worker on Redis, a Chromium page."""

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .factories import review_with_cast
from .waiting import wait_until

# Playwright's sync API runs an event loop in the test thread; Django's ORM is still used
# synchronously there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# `load_demo` in tests builds the protocol-only demo review (seconds, not minutes); the one
# test of the living demo asks for it with --living.
os.environ.setdefault("SLRWEB_DEMO_BARE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
PASSWORD = "pass-for-tests"
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every cast user is hashed per test; PBKDF2 made those hashes dominate test setup.
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture
def review_and_cast(db):
    return review_with_cast()


@pytest.fixture
def review(review_and_cast):
    return review_and_cast[0]


@pytest.fixture
def cast(review_and_cast):
    return review_and_cast[1]


@pytest.fixture
def client_for(client):
    """`client_for("owner")` logs the Django test client in as a member of the cast."""
    from django.contrib.auth import get_user_model

    def login(username: str):
        client.force_login(get_user_model().objects.get(username=username))
        return client

    return login


@pytest.fixture
def htmx_headers():
    return {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="session")
def celery_queue():
    return f"slrweb-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_worker(transactional_db, celery_queue, settings):
    """A real `celery worker` process on Redis, reading the test database.

    Tests using it run with `transactional_db`, so what they write is committed and visible to
    the worker process.
    """
    with celery_worker_process(celery_queue, settings.MEDIA_ROOT) as process:
        yield process


@contextlib.contextmanager
def celery_worker_process(queue: str, media_root) -> Iterator[subprocess.Popen]:
    """Start a `celery worker --pool=solo` on Redis for `queue`, reading the test database.

    The solo pool parses in this very process, so its /proc/<pid>/status is the worker's
    memory. Used by the per-test `celery_worker` fixture and by modules that share one worker.
    """
    from django.db import connection

    from slrweb.celery import app

    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("CELERY_BROKER_URL must point at Redis for worker tests")
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    if connection.vendor != "postgresql":
        pytest.skip("worker tests need PostgreSQL (DATABASE_URL)")
    app.conf.task_default_queue = queue
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        DB_CONN_MAX_AGE="0",
        MEDIA_ROOT=str(media_root),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "slrweb",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            f"--hostname=test-{queue}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replies = app.control.ping(
                destination=[f"test-{queue}@{os.uname().nodename}"], timeout=0.5
            )
            if replies:
                break
            if process.poll() is not None:
                raise RuntimeError("the Celery worker exited at start")
        else:
            raise RuntimeError("the Celery worker did not answer within 30 s")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def celery_worker_idle_wait(queue: str, timeout: float = 120) -> None:
    """Wait until the test worker on `queue` runs, holds and awaits no task.

    A task the worker still runs when a transactional test ends (the dedup an import queues,
    the funnel refresh after it) can deadlock with the test database's flush (TRUNCATE takes
    its locks table by table while the task holds some of them).
    """
    from slrweb.celery import app

    name = f"test-{queue}@{os.uname().nodename}"

    def idle() -> bool:
        inspect = app.control.inspect(destination=[name], timeout=1)
        held = [
            (answer or {}).get(name)
            for answer in (inspect.active(), inspect.reserved(), inspect.scheduled())
        ]
        with app.connection_for_write() as connection:
            waiting = connection.default_channel.client.llen(queue)
        return held == [[], [], []] and waiting == 0

    wait_until(idle, timeout=timeout)


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api as playwright_api

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def warm_live_server(live_server):
    """Load the URL configuration once before any browser test times its first page.

    The first request imports every view module (scikit-learn among them); on a loaded machine
    that alone came close to Playwright's 10 s default timeout.
    """
    with urllib.request.urlopen(f"{live_server.url}/accounts/login/", timeout=120) as response:
        response.read()
    return live_server


@pytest.fixture
def page(browser, live_server, warm_live_server, django_db_blocker):
    # page.wait_for_function evaluates its string in the page, which the Content-Security-Policy
    # (no 'unsafe-eval') forbids; tests/test_production_e2e.py browses with the policy enforced.
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
    # A page saves its drafts on the way out: that request may still run in the live server
    # when the test database is flushed, and deadlock with the flush's TRUNCATE.
    with django_db_blocker.unblock():
        database_quiet_wait()


def database_quiet_wait(timeout: float = 30) -> None:
    """Wait (at most `timeout`) until no other session of the test database runs a statement or
    holds a transaction open, five polls in a row (a request sent at the close may not have
    reached the server at the first poll)."""
    from django.db import connection

    quiet_polls = 0

    def quiet() -> bool:
        nonlocal quiet_polls
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
                " AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
            )
            busy = cursor.fetchone()[0]
        quiet_polls = 0 if busy else quiet_polls + 1
        return quiet_polls >= 5

    if connection.vendor != "postgresql":
        return
    try:
        wait_until(quiet, timeout=timeout, every=0.1)
    except AssertionError:
        pass  # a worker still busy after the timeout: the flush is tried all the same


@pytest.fixture
def login_page(page):
    """`login_page("owner")` logs the browser page in through the login form."""

    def login(username: str, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return login
