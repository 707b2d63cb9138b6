"""The embedded default for real: a SQLite database file, an import process killed in the
middle of its transaction, and the sweep (another process) failing the batch through the
heartbeat file within seconds, after which it can be retried. Each step runs in its own
process with `make run`'s settings (no DATABASE_URL: SQLite under SLRWEB_VAR_DIR)."""

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import REPO_ROOT
from .waiting import wait_until

GRACE = 3  # seconds (IMPORT_HEARTBEAT_FILE_GRACE_SECONDS); the default is 30

DRIVER = textwrap.dedent(
    """
    import sys

    import django

    django.setup()
    from django.db import connection

    from screening.models import ImportBatch, Record
    from screening.services import imports
    from tests import hostile_files
    from tests.factories import review_with_cast

    assert connection.vendor == "sqlite"
    step = sys.argv[1]
    if step == "create":
        review, cast = review_with_cast()
        batch = imports.batch_create(
            review=review,
            source=imports.source_resolve(review=review, name="Scopus"),
            uploaded_by=cast["owner"],
            file_name="large.ris",
            data=hostile_files.many_records_ris(60_000),
            enqueue=False,
        )
        print(batch.pk)
    elif step == "run":
        imports.batch_run(batch_id=int(sys.argv[2]))
    elif step == "sweep":
        imports.batches_sweep()
        batch = ImportBatch.objects.get(pk=int(sys.argv[2]))
        print(batch.status, Record.objects.filter(batch=batch).count(), batch.error, sep="|")
    elif step == "retry":
        batch = ImportBatch.objects.get(pk=int(sys.argv[2]))
        print(imports.batch_retry(batch=batch, user=batch.uploaded_by).status)
    """
)


@pytest.fixture
def embedded(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "IMPORT_HEARTBEAT_FILES", "IMPORT_HEARTBEAT_DIR"}
    }
    env.update(
        SLRWEB_VAR_DIR=str(var),
        MEDIA_ROOT=str(tmp_path / "media"),
        DJANGO_SETTINGS_MODULE="slrweb.settings",
        IMPORT_HEARTBEAT_FILE_GRACE_SECONDS=str(GRACE),
        PYTHONPATH=str(REPO_ROOT),
    )
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )

    def step(*args: str, wait: bool = True):
        command = [sys.executable, str(driver), *args]
        if not wait:
            return subprocess.Popen(command, cwd=REPO_ROOT, env=env)
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
        return done.stdout.decode().strip()

    step.heartbeats = var / "import-heartbeats"
    return step


def test_sqlite_import_killed_mid_transaction_is_failed_within_seconds(embedded):
    batch_id = embedded("create")
    heartbeat = embedded.heartbeats / batch_id
    importer = embedded("run", batch_id, wait=False)
    try:
        first = wait_until(lambda: heartbeat.exists() and heartbeat.stat().st_mtime, timeout=60)
        # The worker's thread beats while the import transaction holds the write lock.
        wait_until(lambda: heartbeat.stat().st_mtime > first, timeout=GRACE * 3, every=0.1)
        assert importer.poll() is None, "the import ended before it could be killed"
    finally:
        importer.kill()
        importer.wait(timeout=10)

    def swept() -> list[str] | None:
        status, records, error = embedded("sweep", batch_id).split("|", 2)
        return [status, records, error] if status == "failed" else None

    status, records, error = wait_until(swept, timeout=GRACE * 15, every=0.5)
    assert records == "0"  # nothing of the killed transaction was kept
    assert "The worker importing this file stopped" in error and "%" not in error
    assert "Retry the import, or delete it." in error
    assert not heartbeat.exists()
    assert embedded("retry", batch_id) == "pending"
