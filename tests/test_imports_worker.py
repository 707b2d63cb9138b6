"""The import through the real Celery worker, and in a browser watching the progress bar."""

import time

import pytest
from django.urls import reverse

from screening.models import ImportBatch, Record
from screening.services.imports import batch_create, source_resolve
from screening.tasks.imports import batch_import

from .factories import review_with_cast
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    SCOPUS_RIS_RECORDS,
    media_root_fixture,
)

pytestmark = pytest.mark.usefixtures("media_root")


def wait_for(batch_id: int, status: str, timeout: float = 60) -> ImportBatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = ImportBatch.objects.get(pk=batch_id)
        if batch.status == status:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} is {batch.status}, not {status}, after {timeout} s")


@pytest.mark.worker
def test_upload_is_imported_by_the_worker_and_a_second_run_changes_nothing(celery_worker):
    review, cast = review_with_cast()
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Scopus"),
        uploaded_by=cast["owner"],
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
    )
    batch = wait_for(batch.pk, "done")
    assert batch.records_read == SCOPUS_RIS_RECORDS
    assert Record.objects.filter(batch=batch).count() == SCOPUS_RIS_RECORDS
    # A redelivered or duplicated task ends in the same state.
    result = batch_import.delay(batch.pk).get(timeout=30)
    assert result == {"batch": batch.pk, "status": "done", "records": SCOPUS_RIS_RECORDS}
    assert Record.objects.filter(batch=batch).count() == SCOPUS_RIS_RECORDS
    assert ImportBatch.objects.get(pk=batch.pk).attempts == 1


@pytest.mark.worker
@pytest.mark.browser
def test_browser_upload_shows_progress_until_done(celery_worker, login_page):
    review, _ = review_with_cast()
    page = login_page("owner")
    page.goto(reverse("screening:import_list", kwargs={"slug": review.slug}))
    page.set_input_files("#id_files", str(SCOPUS_RIS))
    page.fill("#id_new_source", "Scopus")
    page.click("#upload-button")
    page.wait_for_selector("#upload-queued")
    # The progress fragment polls until the worker is done, then stops polling.
    done = page.wait_for_selector(".batch-progress[data-status=done]", timeout=60_000)
    assert "Done: 92 records" in " ".join(done.inner_text().split())
    assert done.get_attribute("hx-trigger") is None
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
    batch = ImportBatch.objects.get(review=review)
    assert batch.status == "done" and batch.uploaded_by.username == "owner"
    page.click("#batches a:has-text('scopus.ris')")
    page.wait_for_selector("#report-counts")
    assert "3 records have no abstract" in page.inner_text("#report-warnings")
