"""Imports views: page, htmx fragment, anonymous, outsider, viewer write, wrong method, bad
input; the polling fragment stops itself; hostile titles are escaped."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from screening.models import ImportBatch, Record, SearchRun, SearchString, Source
from screening.services.imports import batch_create, batch_run, source_resolve

from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    media_root_fixture,
    sent_tasks_fixture,
)

pytestmark = pytest.mark.usefixtures("media_root", "sent_tasks")

RIS = b"TY  - JOUR\nTI  - A small study\nAB  - Text.\nER  - \n"


def url(name, review, **kwargs):
    return reverse(f"screening:{name}", kwargs={"slug": review.slug, **kwargs})


def upload(data=RIS, name="small.ris"):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def done_batch(review):
    source = source_resolve(review=review, name="Scopus")
    batch = batch_create(
        review=review,
        source=source,
        uploaded_by=review.created_by,
        file_name="scopus.ris",
        data=SCOPUS_RIS.read_bytes(),
    )
    return batch_run(batch_id=batch.pk)


@pytest.fixture
def failed_batch(review):
    source = source_resolve(review=review, name="Lens")
    batch = batch_create(
        review=review,
        source=source,
        uploaded_by=review.created_by,
        file_name="custom.csv",
        data=b"Heading,Summary\nA study,Text\n",
    )
    return batch_run(batch_id=batch.pk)


# --- import_list (page + upload) ---------------------------------------------------------------


def test_list_page_shows_form_batches_and_reconciliation(review, client_for, done_batch):
    response = client_for("owner").get(url("import_list", review))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Upload search exports" in body and "<html" in body
    assert "scopus.ris" in body and "Done</span>: 92 records" in body
    assert 'id="reconciliation-sources"' in body


def test_list_fragment_for_htmx(review, client_for, htmx_headers):
    response = client_for("reviewer").get(url("import_list", review), **htmx_headers)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="upload-form"' in body


def test_viewer_sees_the_list_without_upload_form(review, client_for):
    response = client_for("viewer").get(url("import_list", review))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="upload-form"' not in body
    assert "As a viewer you can follow the imports but not upload exports" in body


def test_upload_stores_and_enqueues_then_redirects(
    review, client_for, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("reviewer").post(
            url("import_list", review),
            {
                "files": [upload(), upload(RIS.replace(b"small", b"other"), "other.ris")],
                "new_source": "Web of Science",
            },
        )
    assert response.status_code == 302
    batches = ImportBatch.objects.filter(review=review, source__name="Web of Science")
    assert batches.count() == 2
    assert set(batches.values_list("status", flat=True)) == {"pending"}
    # The view only stores and enqueues: nothing is parsed in the request.
    assert Record.objects.count() == 0
    assert sent_tasks.names() == ["screening.batch_import"] * 2


def test_upload_by_htmx_answers_with_polling_fragment(review, client_for, htmx_headers):
    source = Source.objects.create(review=review, name="IEEE")
    response = client_for("owner").post(
        url("import_list", review), {"files": [upload()], "source": source.pk}, **htmx_headers
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'hx-trigger="every 1s"' in body and "1 file queued for import" in body


@pytest.mark.parametrize(
    "data,name,message",
    [
        (b"", "empty.ris", "is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "photo.png", "PNG image"),
        (b"Just some prose, nothing else here at all", "notes.txt", "not in a format"),
    ],
)
def test_upload_bad_file_gets_clear_message_and_nothing_saved(
    review, client_for, data, name, message
):
    response = client_for("owner").post(
        url("import_list", review), {"files": [upload(data, name)], "new_source": "Scopus"}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_upload_without_source_is_refused(review, client_for):
    response = client_for("owner").post(url("import_list", review), {"files": [upload()]})
    assert response.status_code == 400
    assert "Choose an existing source or name a new one" in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_upload_duplicate_file_is_refused(review, client_for, done_batch):
    response = client_for("owner").post(
        url("import_list", review),
        {"files": [upload(SCOPUS_RIS.read_bytes(), "again.ris")], "new_source": "Scopus"},
    )
    assert response.status_code == 400
    assert "already uploaded to this review" in response.content.decode()
    assert ImportBatch.objects.count() == 1


def test_upload_access(review, client, client_for):
    target = url("import_list", review)
    anonymous = client.post(target, {"files": [upload()], "new_source": "X"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert client_for("outsider").post(target, {"new_source": "X"}).status_code == 404
    assert (
        client_for("viewer").post(target, {"files": [upload()], "new_source": "X"}).status_code
        == 403
    )
    assert client_for("owner").put(target).status_code == 405
    assert ImportBatch.objects.count() == 0


def test_reviewer_without_import_right_is_refused(review, client_for, cast):
    review.memberships.filter(user=cast["reviewer"]).update(can_import=False)
    client = client_for("reviewer")
    response = client.post(url("import_list", review), {"files": [upload()], "new_source": "X"})
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0
    page = client.get(url("import_list", review)).content.decode()
    assert 'id="upload-form"' not in page
    assert "An owner has not allowed you to upload exports to this review" in page


# --- import_detail / import_progress -----------------------------------------------------------


def test_detail_page_and_fragment(review, client_for, htmx_headers, done_batch):
    target = url("import_detail", review, batch_id=done_batch.pk)
    page = client_for("viewer").get(target).content.decode()
    assert "<html" in page and "Records read" in page and "3 records have no abstract" in page
    fragment = client_for("viewer").get(target, **htmx_headers).content.decode()
    assert "<html" not in fragment and 'id="report-counts"' in fragment


def test_detail_lists_skipped_entries_with_line_numbers(review, client_for):
    data = b"Provider: x\nAU  - Stray, Tag\n\n" + RIS
    source = source_resolve(review=review, name="Scopus")
    batch = batch_create(
        review=review, source=source, uploaded_by=None, file_name="stray.ris", data=data
    )
    batch = batch_run(batch_id=batch.pk)
    assert batch.skipped == 1
    body = client_for("owner").get(url("import_detail", review, batch_id=batch.pk)).content.decode()
    assert "<td>2</td><td>tag AU outside a record (no TY before it)</td>" in body


def test_detail_escapes_hostile_titles(review, client_for):
    data = b"TY  - JOUR\nTI  - <script>alert('x')</script> & co\nER  - \n"
    source = source_resolve(review=review, name="Scopus")
    batch = batch_create(
        review=review, source=source, uploaded_by=None, file_name="hostile.ris", data=data
    )
    batch_run(batch_id=batch.pk)
    body = client_for("owner").get(url("import_detail", review, batch_id=batch.pk)).content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in body


def test_detail_and_progress_access(review, client, client_for, done_batch, db):
    names = ("import_detail", "import_progress")
    for name in names:
        assert client.get(url(name, review, batch_id=done_batch.pk)).status_code == 302
    for name in names:
        target = url(name, review, batch_id=done_batch.pk)
        assert client_for("outsider").get(target).status_code == 404
        assert client_for("owner").post(target).status_code == 405
        assert client_for("owner").get(url(name, review, batch_id=999999)).status_code == 404


def test_progress_fragment_polls_only_while_unfinished(review, client_for, done_batch):
    target = url("import_progress", review, batch_id=done_batch.pk)
    done = client_for("owner").get(target).content.decode()
    assert "hx-trigger" not in done and 'data-status="done"' in done
    ImportBatch.objects.filter(pk=done_batch.pk).update(status="running", progress=40)
    running = client_for("owner").get(target).content.decode()
    assert 'hx-trigger="every 1s"' in running and 'aria-valuenow="40"' in running


# --- retry and column mapping ------------------------------------------------------------------


def test_retry_queues_a_failed_import(
    review, client_for, failed_batch, sent_tasks, django_capture_on_commit_callbacks
):
    ImportBatch.objects.filter(pk=failed_batch.pk).update(report={})
    target = url("import_retry", review, batch_id=failed_batch.pk)
    assert client_for("viewer").post(target).status_code == 403
    assert client_for("owner").get(target).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("owner").post(target)
    assert response.status_code == 302
    assert ImportBatch.objects.get(pk=failed_batch.pk).status == "pending"
    assert sent_tasks.names()[-1] == "screening.batch_import"


def test_retry_of_a_done_import_is_refused(review, client_for, done_batch, htmx_headers):
    response = client_for("owner").post(
        url("import_retry", review, batch_id=done_batch.pk), **htmx_headers
    )
    body = response.content.decode()
    assert response.status_code == 400 and "<html" not in body
    assert "Only a failed import can be retried." in body and 'id="import-refusal"' in body
    assert ImportBatch.objects.get(pk=done_batch.pk).status == "done"


def test_column_mapping_step(review, client_for, htmx_headers, failed_batch):
    target = url("import_columns", review, batch_id=failed_batch.pk)
    page = client_for("owner").get(target).content.decode()
    assert "Map the columns of custom.csv" in page and '<option value="Heading">' in page
    fragment = client_for("owner").get(target, **htmx_headers).content.decode()
    assert "<html" not in fragment and "Save and import" in fragment
    assert client_for("viewer").get(target).status_code == 403
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("owner").put(target).status_code == 405

    bad = client_for("owner").post(target, {"abstract": "Summary"})
    assert bad.status_code == 400 and "This field is required" in bad.content.decode()
    assert ImportBatch.objects.get(pk=failed_batch.pk).column_map == {}

    response = client_for("owner").post(target, {"title": "Heading", "abstract": "Summary"})
    assert response.status_code == 302
    batch = ImportBatch.objects.get(pk=failed_batch.pk)
    assert batch.column_map == {"title": "Heading", "abstract": "Summary"}
    assert batch.status == "pending"
    assert batch_run(batch_id=batch.pk).records_read == 1


def test_column_mapping_of_a_file_without_columns_is_404(review, client_for, done_batch):
    target = url("import_columns", review, batch_id=done_batch.pk)
    assert client_for("owner").get(target).status_code == 404


# --- reconciliation ----------------------------------------------------------------------------


def test_reconciliation_page_fragment_and_highlight(review, client_for, htmx_headers, done_batch):
    string = SearchString.objects.create(review=review, text="mlops")
    SearchRun.objects.create(
        review=review, search_string=string, source=done_batch.source, hits_reported=100
    )
    target = url("import_reconciliation", review)
    page = client_for("viewer").get(target).content.decode()
    assert "<html" in page and "table-warning" in page and "-8" in page
    fragment = client_for("viewer").get(target, **htmx_headers).content.decode()
    assert "<html" not in fragment and 'id="reconciliation-runs"' in fragment


def test_reconciliation_access(review, client, client_for):
    target = url("import_reconciliation", review)
    assert client.get(target).status_code == 302
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("owner").post(target).status_code == 405
