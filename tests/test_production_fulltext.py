"""Full texts are served as PDFs under our own name, whatever was uploaded."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from screening.models import FullText

from .screening_helpers import make_studies

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_a_pdf_uploaded_as_html_is_served_as_a_pdf_under_a_safe_name(
    review, client_for, htmx_headers
):
    (study,) = make_studies(review, 1, stage_key="full_text")
    upload = reverse("screening:fulltext_upload", args=[review.slug, study.pk])
    stored = client_for("reviewer").post(
        upload,
        {"file": SimpleUploadedFile('x".html', PDF, content_type="text/html")},
        **htmx_headers,
    )
    assert stored.status_code == 200
    assert FullText.objects.get(study=study).file.read() == PDF

    download = reverse("screening:fulltext_download", args=[review.slug, study.pk])
    response = client_for("viewer").get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert (
        response["Content-Disposition"] == f'inline; filename="{review.slug}-study-{study.pk}.pdf"'
    )
    assert "html" not in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == PDF
    assert client_for("outsider").get(download).status_code == 404


@pytest.mark.parametrize(
    "name,data",
    [
        ("paper.pdf", b"<html><script>alert(1)</script></html>"),
        ("paper.pdf", b"GIF89a\x01\x00"),
        ("scan.pdf", b"PK\x03\x04zip pretending to be a pdf"),
    ],
)
def test_a_file_that_is_not_a_pdf_is_refused_at_upload_whatever_its_name(
    review, client_for, htmx_headers, name, data
):
    (study,) = make_studies(review, 1, stage_key="full_text")
    upload = reverse("screening:fulltext_upload", args=[review.slug, study.pk])
    response = client_for("reviewer").post(
        upload,
        {"file": SimpleUploadedFile(name, data, content_type="application/pdf")},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "This is not a PDF file" in response.content.decode()
    assert not FullText.objects.filter(study=study).exists()
    download = reverse("screening:fulltext_download", args=[review.slug, study.pk])
    assert client_for("reviewer").get(download).status_code == 404
