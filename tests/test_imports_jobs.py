"""Import jobs that can always finish or be undone, with a real worker on Redis: a worker
killed mid-import ends in a failed batch that can be retried or deleted, and an upload while
the broker is down is saved, answered in words (no 500) and imported once it is back."""

import time

import pytest
from celery import Celery
from django.urls import reverse

from screening.models import AuditEvent, ImportBatch, Record
from screening.services.imports import (
    batch_create,
    batch_delete,
    batch_retry,
    batch_run,
    batches_sweep,
    source_resolve,
)

from . import hostile_files
from .factories import review_with_cast
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    SCOPUS_RIS_RECORDS,
    media_root_fixture,
)
from .waiting import wait_until

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.worker]


def test_worker_killed_mid_import_ends_in_a_failed_batch_to_retry_or_delete(
    celery_worker, tmp_path
):
    review, cast = review_with_cast()
    data = hostile_files.many_records_ris(60_000)
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name="large.ris",
        data=data,
    )
    assert ImportBatch.objects.get(pk=batch.pk).queued_at is not None
    wait_until(
        lambda: ImportBatch.objects.filter(pk=batch.pk, status="running", progress__gt=0).exists()
    )
    celery_worker.kill()
    celery_worker.wait(timeout=10)
    killed_at = time.monotonic()

    # What Celery beat runs every few seconds.
    def swept_failed():
        batches_sweep()
        return ImportBatch.objects.filter(pk=batch.pk, status="failed").first()

    failed = wait_until(swept_failed, timeout=60, every=1)
    assert time.monotonic() - killed_at < 60
    assert "The worker importing this file stopped" in failed.error
    assert "Retry the import, or delete it." in failed.error
    assert Record.objects.filter(batch=batch).count() == 0
    assert AuditEvent.objects.filter(action="import.worker_lost", object_id=str(batch.pk)).exists()

    retried = batch_retry(batch=failed, user=cast["owner"])
    assert retried.status == "pending"
    done = batch_run(batch_id=batch.pk)
    assert done.status == "done" and done.records_read == 60_000
    assert Record.objects.filter(batch=batch).count() == 60_000


def test_failed_batch_can_be_deleted_and_the_file_uploaded_again(
    db, media_root, client, django_capture_on_commit_callbacks
):
    review, cast = review_with_cast()
    source = source_resolve(review=review, name="Scopus")
    batch = batch_create(
        review=review,
        source=source,
        uploaded_by=cast["owner"],
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
        enqueue=False,
    )
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", progress=35)
    ImportBatch.objects.filter(pk=batch.pk).update(status="failed", error="worker lost")
    stored = batch.file.path
    client.force_login(cast["viewer"])
    target = reverse("screening:import_delete", kwargs={"slug": review.slug, "batch_id": batch.pk})
    assert client.post(target).status_code == 403
    client.force_login(cast["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(target, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"].endswith("/imports/")
    assert not ImportBatch.objects.filter(pk=batch.pk).exists()
    assert AuditEvent.objects.filter(action="import.delete").count() == 1
    import os

    assert not os.path.exists(stored)
    again = batch_create(
        review=review,
        source=source,
        uploaded_by=cast["owner"],
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
        enqueue=False,
    )
    assert batch_run(batch_id=again.pk).status == "done"
    page = client.get(reverse("screening:import_list", kwargs={"slug": review.slug}))
    assert "Done</span>: 92 records" in page.content.decode()


def test_a_done_batch_is_deleted_only_with_its_confirmation(db, media_root):
    review, cast = review_with_cast()
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
        enqueue=False,
    )
    batch_run(batch_id=batch.pk)
    from screening.selectors.imports import batch_delete_impact
    from screening.services.stale import StaleWrite

    with pytest.raises(StaleWrite, match="92 records"):
        batch_delete(batch=batch, user=cast["owner"])
    assert Record.objects.filter(batch=batch).count() == SCOPUS_RIS_RECORDS
    version = batch_delete_impact(batch=batch).version
    batch_delete(batch=batch, user=cast["owner"], seen_version=version)
    assert not Record.objects.filter(batch_id=batch.pk).exists()


def test_upload_while_the_broker_is_down_is_saved_answered_and_imported_later(
    celery_worker, client, monkeypatch
):
    review, cast = review_with_cast()
    client.force_login(cast["owner"])
    target = reverse("screening:import_list", kwargs={"slug": review.slug})
    # This request's producer talks to a closed port (the worker keeps the real broker).
    unreachable = Celery("broker-down", set_as_current=False)
    with SCOPUS_RIS.open("rb") as export, monkeypatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
        patch.setattr("screening.services.queue.current_app", unreachable)
        started = time.monotonic()
        response = client.post(
            target, {"files": [export], "new_source": "Scopus"}, HTTP_HX_REQUEST="true"
        )
        answered_in = time.monotonic() - started
    body = response.content.decode()
    assert response.status_code == 200
    assert "The background worker is unreachable right now" in body
    assert answered_in < 10
    batch = ImportBatch.objects.get(review=review)
    assert (batch.status, batch.queued_at) == ("pending", None)
    assert batch.file and batch.sha256

    # The broker is back: the sweep (Celery beat) sends it, the worker imports it.
    assert batches_sweep()["requeued"] == 1
    done = wait_until(lambda: ImportBatch.objects.filter(pk=batch.pk, status="done").first())
    assert done.records_read == SCOPUS_RIS_RECORDS
    assert Record.objects.filter(batch=batch).count() == SCOPUS_RIS_RECORDS
    client.force_login(cast["reviewer"])
    page = client.get(target).content.decode()
    assert "Done</span>: 92 records" in page


def test_a_waiting_batch_never_sent_can_be_deleted_from_its_page(
    db, media_root, client, django_capture_on_commit_callbacks
):
    review, cast = review_with_cast()
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
        enqueue=False,
    )
    client.force_login(cast["owner"])
    detail = reverse("screening:import_detail", kwargs={"slug": review.slug, "batch_id": batch.pk})
    page = client.get(detail).content.decode()
    assert "waiting for the worker to be reachable" in page and 'id="delete-button"' in page
    target = reverse("screening:import_delete", kwargs={"slug": review.slug, "batch_id": batch.pk})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(target)
    assert response.status_code == 302
    assert not ImportBatch.objects.filter(pk=batch.pk).exists()
    assert client.get(detail).status_code == 404
