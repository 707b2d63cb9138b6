"""Full texts: upload checks, private storage, access to the PDF, not retrievable."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from screening.models import AuditEvent, FullText
from screening.services.fulltext import fulltext_mark_not_retrievable, fulltext_upload

from .screening_helpers import make_studies

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FULLTEXT_MAX_BYTES = 1024


def test_upload_stores_privately(review, cast, settings):
    (study,) = make_studies(review, 1, stage_key="full_text")
    full_text = fulltext_upload(
        review=review,
        study=study,
        user=cast["reviewer"],
        file_name="paper.pdf",
        upload=ContentFile(PDF),
    )
    assert full_text.status == "uploaded" and full_text.original_name == "paper.pdf"
    stored = settings.MEDIA_ROOT / full_text.file.name
    assert stored.read_bytes() == PDF
    assert not str(full_text.file.name).startswith("static")
    assert AuditEvent.objects.filter(action="fulltext.upload").exists()


@pytest.mark.parametrize(
    "data,message",
    [
        (b"<html>not a pdf</html>", "not a PDF"),
        (b"", "empty"),
        (b"%PDF-" + b"x" * 2000, "limit"),
    ],
)
def test_upload_refusals(review, cast, data, message):
    (study,) = make_studies(review, 1, stage_key="full_text")
    with pytest.raises(ValidationError, match=message):
        fulltext_upload(
            review=review,
            study=study,
            user=cast["reviewer"],
            file_name="x",
            upload=ContentFile(data),
        )
    assert not FullText.objects.exists()


def test_upload_only_at_full_text(review, cast):
    (study,) = make_studies(review, 1)
    with pytest.raises(ValidationError, match="full-text stage"):
        fulltext_upload(
            review=review,
            study=study,
            user=cast["reviewer"],
            file_name="x",
            upload=ContentFile(PDF),
        )


def test_not_retrievable_counts_apart_and_upload_brings_back(review, cast):
    (study,) = make_studies(review, 1, stage_key="full_text")
    with pytest.raises(ValidationError, match="why"):
        fulltext_mark_not_retrievable(review=review, study=study, user=cast["reviewer"], reason=" ")
    fulltext_mark_not_retrievable(
        review=review, study=study, user=cast["reviewer"], reason="Paywalled, author silent"
    )
    study.refresh_from_db()
    assert study.outcome == "not_retrieved"
    assert AuditEvent.objects.filter(action="fulltext.not_retrievable").exists()
    fulltext_upload(
        review=review,
        study=study,
        user=cast["reviewer"],
        file_name="a.pdf",
        upload=ContentFile(PDF),
    )
    study.refresh_from_db()
    assert study.outcome == "screening"


def list_url(review):
    return reverse("screening:fulltext_list", args=[review.slug])


def test_list_page_fragment_and_access(review, client, client_for, htmx_headers):
    make_studies(review, 1, stage_key="full_text", title="Full text candidate")
    make_studies(review, 1, title="Still at title")
    page = client_for("viewer").get(list_url(review))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Full text candidate" in body and "Still at title" not in body
    assert "Upload" not in body  # viewers read only
    fragment = client_for("reviewer").get(list_url(review), **htmx_headers).content.decode()
    assert "<html" not in fragment and "Upload" in fragment
    assert Client().get(list_url(review)).status_code == 302
    assert client_for("outsider").get(list_url(review)).status_code == 404
    assert client_for("reviewer").post(list_url(review)).status_code == 405


def test_upload_view_and_download_for_members_only(review, client, client_for, htmx_headers):
    (study,) = make_studies(review, 1, stage_key="full_text")
    upload = reverse("screening:fulltext_upload", args=[review.slug, study.pk])
    download = reverse("screening:fulltext_download", args=[review.slug, study.pk])
    assert (
        client_for("viewer").post(upload, {"file": SimpleUploadedFile("a.pdf", PDF)}).status_code
        == 403
    )
    bad = client_for("reviewer").post(
        upload, {"file": SimpleUploadedFile("a.pdf", b"GIF89a")}, **htmx_headers
    )
    assert bad.status_code == 422 and "not a PDF" in bad.content.decode()
    missing = client_for("reviewer").post(upload, {}, **htmx_headers)
    assert missing.status_code == 422 and "Choose a PDF" in missing.content.decode()
    assert not FullText.objects.exists()
    assert client_for("reviewer").get(download).status_code == 404
    ok = client_for("reviewer").post(
        upload, {"file": SimpleUploadedFile("paper.pdf", PDF)}, **htmx_headers
    )
    assert ok.status_code == 200 and "paper.pdf" in ok.content.decode()
    response = client_for("viewer").get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF
    assert client_for("outsider").get(download).status_code == 404
    assert Client().get(download).status_code == 302
    assert client_for("reviewer").get(upload).status_code == 405
    # Never reachable as a static or media URL.
    name = FullText.objects.get().file.name
    assert client_for("reviewer").get(f"/media/{name}").status_code == 404
    assert client_for("reviewer").get(f"/static/{name}").status_code == 404


def test_not_retrievable_view(review, client_for, htmx_headers):
    (study,) = make_studies(review, 1, stage_key="full_text")
    url = reverse("screening:fulltext_not_retrievable", args=[review.slug, study.pk])
    assert client_for("viewer").post(url, {"reason": "x"}).status_code == 403
    bad = client_for("reviewer").post(url, {"reason": ""}, **htmx_headers)
    assert bad.status_code == 422 and "Say why" in bad.content.decode()
    ok = client_for("reviewer").post(url, {"reason": "Not in any library"})
    assert ok.status_code == 302
    study.refresh_from_db()
    assert study.outcome == "not_retrieved"
    assert "Not in any library" in client_for("viewer").get(list_url(review)).content.decode()


def test_a_large_pdf_is_copied_to_storage_in_chunks_not_read_whole(
    review, cast, tmp_path, settings
):
    import tracemalloc

    from django.core.files import File

    settings.FULLTEXT_MAX_BYTES = 50 * 1024 * 1024
    (study,) = make_studies(review, 1, stage_key="full_text")
    big = tmp_path / "big.pdf"
    with big.open("wb") as handle:
        handle.write(PDF)
        handle.write(b"0" * (30 * 1024 * 1024))
    with big.open("rb") as handle:
        tracemalloc.start()
        try:
            full_text = fulltext_upload(
                review=review,
                study=study,
                user=cast["reviewer"],
                file_name="big.pdf",
                upload=File(handle, name="big.pdf"),
            )
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # a 30 MB file never sits in memory
    stored = FullText.objects.get(pk=full_text.pk)
    assert stored.file.size == big.stat().st_size
