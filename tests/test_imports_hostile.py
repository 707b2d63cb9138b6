"""Hostile files through the real upload path (streaming handler, service, worker code):
each is refused or cut in words, nothing of a refused file is stored, memory stays flat.

Memory is bounded with tracemalloc around the request or the import run, as a correctness
bound on what the process holds (not a timing)."""

import html
import re
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from screening.models import AuditEvent, ImportBatch, Record
from screening.services.imports import batch_create, batch_run, source_resolve

from . import hostile_files
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    media_root_fixture,
    sent_tasks_fixture,
)

pytestmark = pytest.mark.usefixtures("media_root", "sent_tasks")

MEMORY_BOUND = 30 * 2**20


def post_files(client, review, *files, **extra):
    return client.post(
        reverse("screening:import_list", kwargs={"slug": review.slug}),
        {"files": list(files), "new_source": "Hostile library"},
        HTTP_HX_REQUEST="true",
        **extra,
    )


def measured(function):
    tracemalloc.start()
    try:
        result = function()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def assert_nothing_stored(media_root):
    assert ImportBatch.objects.count() == 0
    assert Record.objects.count() == 0
    assert not AuditEvent.objects.filter(action="import.upload").exists()
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))


@pytest.fixture(scope="module")
def zip_bomb():
    return hostile_files.xlsx_zip_bomb()


@pytest.mark.parametrize(
    "name,data_factory,message",
    [
        (
            "laughs.xml",
            hostile_files.billion_laughs,
            "laughs.xml was refused: the XML declares its own entity 'lol'",
        ),
        (
            "blowup.xml",
            hostile_files.quadratic_blowup,
            "blowup.xml was refused: the XML declares its own entity 'big'",
        ),
    ],
)
def test_entity_bomb_upload_is_refused_in_words_and_nothing_stored(
    review, client_for, media_root, name, data_factory, message
):
    data = data_factory()
    client = client_for("owner")
    response, peak = measured(lambda: post_files(client, review, SimpleUploadedFile(name, data)))
    body = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert message in body and "billion laughs" in body
    assert peak < MEMORY_BOUND + 2 * len(data)
    assert_nothing_stored(media_root)


def test_external_entity_upload_is_refused_and_the_file_never_read(
    review, client_for, media_root, tmp_path
):
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret")
    data = hostile_files.external_entity(secret)
    response = post_files(client_for("owner"), review, SimpleUploadedFile("xxe.xml", data))
    body = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert "xxe.xml was refused: the XML refers to an outside file" in body
    assert "server secret" not in body
    assert_nothing_stored(media_root)


def test_xlsx_zip_bomb_upload_is_refused_before_unpacking(review, client_for, media_root, zip_bomb):
    client = client_for("owner")
    response, peak = measured(
        lambda: post_files(client, review, SimpleUploadedFile("bomb.xlsx", zip_bomb))
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "bomb.xlsx was refused:" in body and "a ZIP bomb, not a spreadsheet" in body
    assert "1,073,741,824 bytes" in body
    assert peak < MEMORY_BOUND + 3 * len(zip_bomb)
    assert_nothing_stored(media_root)


def test_zip_bomb_stored_before_the_check_still_fails_in_the_worker_with_memory_flat(
    review, zip_bomb, monkeypatch
):
    # A bomb stored before uploads were checked: the worker code refuses it by itself.
    monkeypatch.setattr("screening.domain.parsers.check_container", lambda *a, **k: None)
    source = source_resolve(review=review, name="Lens")
    batch = batch_create(
        review=review, source=source, uploaded_by=None, file_name="b.xlsx", data=zip_bomb
    )
    batch, peak = measured(lambda: batch_run(batch_id=batch.pk))
    assert batch.status == "failed"
    assert "a ZIP bomb, not a spreadsheet" in batch.error
    assert "match no known export" not in batch.error
    assert peak < MEMORY_BOUND
    assert Record.objects.count() == 0


def test_utf16_export_is_imported_not_called_binary(review, client_for, sent_tasks):
    data = hostile_files.utf16_ris()
    response = post_files(client_for("owner"), review, SimpleUploadedFile("wide.ris", data))
    assert response.status_code == 200, re.findall(r"(?s)<li>(.*?)</li>", response.content.decode())
    batch = ImportBatch.objects.get()
    assert batch.format == "ris" and batch.sha256
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == "done"
    record = Record.objects.get(batch=batch)
    assert record.title == "Über Qualität 1<p≤2"
    assert record.authors == ["Müller, Jörg"]
    # Shown escaped once on the report page.
    page = client_for("reviewer").get(
        reverse("screening:import_detail", kwargs={"slug": review.slug, "batch_id": batch.pk})
    )
    assert "Über Qualität 1&lt;p≤2" in page.content.decode()


def test_oversize_field_is_cut_and_the_cut_in_the_report(review, client_for):
    data = hostile_files.oversize_title_csv(5_000_000)
    client = client_for("owner")
    response = post_files(client, review, SimpleUploadedFile("long.csv", data))
    assert response.status_code == 200
    batch, peak = measured(lambda: batch_run(batch_id=ImportBatch.objects.get().pk))
    assert batch.status == "done"
    record = Record.objects.get(batch=batch)
    assert len(record.title) == 2_000
    assert len(record.raw["Title"]) == 50_000
    assert peak < MEMORY_BOUND + 12 * len(data)
    warnings = batch.report["warnings"]
    assert "line 2: title cut from 5,000,000 to 2,000 characters" in " ".join(warnings)
    page = client.get(
        reverse("screening:import_detail", kwargs={"slug": review.slug, "batch_id": batch.pk})
    ).content.decode()
    assert "title cut from 5,000,000 to 2,000 characters" in page


def test_oversize_cell_fails_the_file_in_words_and_stores_no_record(review):
    source = source_resolve(review=review, name="Lens")
    batch = batch_create(
        review=review,
        source=source,
        uploaded_by=None,
        file_name="cell.csv",
        data=hostile_files.oversize_title_csv(10_000_001),
    )
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == "failed"
    assert "a cell holds more than 10,000,000 characters" in batch.error
    assert Record.objects.count() == 0


def test_oversize_upload_is_dropped_as_it_streams_and_nothing_stored(
    review, client_for, media_root, settings
):
    settings.UPLOAD_MAX_FILE_BYTES = 2 * 2**20
    data = b"TY  - JOUR\nTI  - x\nER  - \n" * (6 * 2**20 // 26)
    client = client_for("owner")
    response, peak = measured(
        lambda: post_files(client, review, SimpleUploadedFile("huge.ris", data))
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "huge.ris is larger than 2.0 MB, the limit for one file; it was not stored." in body
    # The test client holds the request body itself; the handler adds no copy of the file.
    assert peak < MEMORY_BOUND + 2 * len(data)
    assert_nothing_stored(media_root)


def test_request_over_the_body_cap_is_refused_unread(review, client_for, media_root, settings):
    settings.UPLOAD_MAX_REQUEST_BYTES = 2**20
    data = b"TY  - JOUR\nTI  - x\nER  - \n" * 80_000
    response = post_files(client_for("owner"), review, SimpleUploadedFile("big.ris", data))
    body = response.content.decode()
    assert response.status_code == 400
    assert "more than the 1.0 MB one request may carry" in body
    assert_nothing_stored(media_root)


def test_uploaded_file_is_hashed_while_streamed_and_stored_whole(review, client_for):
    from .imports_helpers import SCOPUS_RIS

    data = SCOPUS_RIS.read_bytes()
    response = post_files(client_for("owner"), review, SimpleUploadedFile("scopus.ris", data))
    assert response.status_code == 200
    batch = ImportBatch.objects.get()
    import hashlib

    assert batch.sha256 == hashlib.sha256(data).hexdigest()
    assert batch.size_bytes == len(data)
    with batch.file.open("rb") as stored:
        assert stored.read() == data
