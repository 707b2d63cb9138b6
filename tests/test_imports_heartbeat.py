"""Worker death is seen within seconds where the database cannot carry a heartbeat (SQLite,
the embedded default): the worker keeps a heartbeat FILE fresh during an import, and the
sweep fails a running batch whose file is missing or stale, so it can be retried or deleted.

The suite runs on PostgreSQL; IMPORT_HEARTBEAT_FILES (on by default with SQLite) selects the
file heartbeat here, with the real file, thread, sweep and worker process.
"""

import os
import time

import pytest
from django.utils import timezone

from screening.models import AuditEvent, ImportBatch, Record
from screening.services.imports import (
    HeartbeatFile,
    batch_create,
    batch_delete,
    batch_retry,
    batch_run,
    batches_sweep,
    heartbeat_path,
    source_resolve,
)

from . import hostile_files
from .factories import review_with_cast
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    media_root_fixture,
)
from .waiting import wait_until

pytestmark = pytest.mark.usefixtures("media_root")

GRACE = 3  # seconds; the thread touches the file every GRACE / 6 s


@pytest.fixture
def heartbeat_files(settings, tmp_path, monkeypatch):
    """File heartbeats in this process and in any worker process started after it."""
    directory = tmp_path / "import-heartbeats"
    settings.IMPORT_HEARTBEAT_FILES = True
    settings.IMPORT_HEARTBEAT_DIR = directory
    settings.IMPORT_HEARTBEAT_FILE_GRACE_SECONDS = GRACE
    monkeypatch.setenv("IMPORT_HEARTBEAT_FILES", "1")
    monkeypatch.setenv("IMPORT_HEARTBEAT_DIR", str(directory))
    monkeypatch.setenv("IMPORT_HEARTBEAT_FILE_GRACE_SECONDS", str(GRACE))
    return directory


def test_heartbeat_thread_keeps_the_file_fresh_and_removes_it_when_stopped(heartbeat_files):
    beat = HeartbeatFile(4242)
    beat.start()
    try:
        path = heartbeat_path(4242)
        assert path.parent == heartbeat_files and path.exists()
        long_ago = time.time() - 1000
        os.utime(path, (long_ago, long_ago))
        wait_until(lambda: path.stat().st_mtime > long_ago + 500, timeout=GRACE * 3)
    finally:
        beat.stop()
    assert not path.exists()


def _running_batch(review, cast, name: str) -> ImportBatch:
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name=name,
        data=SCOPUS_RIS.read_bytes() + name.encode(),  # distinct files (sha256)
        enqueue=False,
    )
    # A database heartbeat that looks alive: only the file may decide here.
    now = timezone.now()
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", progress=40, started_at=now, heartbeat_at=now
    )
    return batch


def test_sweep_fails_running_batches_whose_heartbeat_file_is_missing_or_stale(db, heartbeat_files):
    review, cast = review_with_cast()
    missing = _running_batch(review, cast, "missing.ris")
    stale = _running_batch(review, cast, "stale.ris")
    alive = _running_batch(review, cast, "alive.ris")
    heartbeat_files.mkdir(parents=True)
    heartbeat_path(stale.pk).touch()
    long_ago = time.time() - GRACE * 5
    os.utime(heartbeat_path(stale.pk), (long_ago, long_ago))
    heartbeat_path(alive.pk).touch()

    assert batches_sweep()["failed"] == 2

    for lost in (missing, stale):
        stored = ImportBatch.objects.get(pk=lost.pk)
        assert stored.status == "failed" and stored.progress == 0
        assert "The worker importing this file stopped" in stored.error
        assert "at 40 %" in stored.error and "Retry the import, or delete it." in stored.error
        assert AuditEvent.objects.filter(
            action="import.worker_lost", object_id=str(lost.pk)
        ).exists()
    assert ImportBatch.objects.get(pk=alive.pk).status == "running"
    assert not heartbeat_path(stale.pk).exists()  # the dead worker's file is cleaned up

    # Failed: it can be retried, and imports in full; or deleted.
    assert batch_retry(batch=missing, user=cast["owner"]).status == "pending"
    done = batch_run(batch_id=missing.pk)
    assert done.status == "done" and Record.objects.filter(batch=missing).count() == 92
    assert not heartbeat_path(missing.pk).exists()  # removed when the import ended
    batch_delete(batch=ImportBatch.objects.get(pk=stale.pk), user=cast["owner"])
    assert not ImportBatch.objects.filter(pk=stale.pk).exists()
    # The next sweep leaves the finished and the living batch alone.
    assert batches_sweep()["failed"] == 0
    assert ImportBatch.objects.get(pk=missing.pk).status == "done"
    assert ImportBatch.objects.get(pk=alive.pk).status == "running"


@pytest.mark.worker
def test_worker_killed_mid_import_is_failed_through_its_heartbeat_file(
    heartbeat_files, celery_worker
):
    review, cast = review_with_cast()
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name="large.ris",
        data=hostile_files.many_records_ris(60_000),
    )
    wait_until(
        lambda: ImportBatch.objects.filter(pk=batch.pk, status="running", progress__gt=0).exists()
    )
    path = heartbeat_path(batch.pk)
    assert path.exists()  # the worker process keeps it
    assert batches_sweep()["failed"] == 0  # alive: its file is fresh
    celery_worker.kill()
    celery_worker.wait(timeout=10)
    killed_at = time.monotonic()

    def swept_failed():
        batches_sweep()
        return ImportBatch.objects.filter(pk=batch.pk, status="failed").first()

    failed = wait_until(swept_failed, timeout=GRACE * 10, every=0.5)
    assert time.monotonic() - killed_at < GRACE * 10
    assert "Retry the import, or delete it." in failed.error
    assert Record.objects.filter(batch=batch).count() == 0
    assert batch_retry(batch=failed, user=cast["owner"]).status == "pending"
