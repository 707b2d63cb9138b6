"""Bulk full-text upload: real PDFs (made here with pypdf), loose or zipped, matched to the
studies waiting for their full text by DOI (file name, text, metadata) or file name."""

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from screening.domain.pdf_match import Candidate, dois_in_pdf, match_pdf
from screening.models import FullText
from screening.services.fulltext import fulltext_bulk_upload

from .pdf_helpers import make_pdf
from .screening_helpers import make_studies


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FULLTEXT_MAX_BYTES = 200_000


@pytest.fixture
def waiting(review):
    studies = make_studies(review, 5, stage_key="full_text")
    dois = ["10.1145/3368089.3409759", "10.1109/icse.2021.00050", "10.1016/j.jss.2022.111", "", ""]
    for study, doi, title in zip(
        studies, dois, ["A", "B", "C", "Hidden technical debt in ML systems", "E"], strict=True
    ):
        study.doi, study.title = doi, title
        study.save()
    return studies


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_dois_read_from_text_and_metadata():
    assert dois_in_pdf(io.BytesIO(make_pdf("See https://doi.org/10.1145/3368089.3409759."))) == [
        "10.1145/3368089.3409759"
    ]
    meta = make_pdf("no identifier here", metadata={"/Subject": "doi:10.1109/ICSE.2021.00050"})
    assert dois_in_pdf(io.BytesIO(meta)) == ["10.1109/icse.2021.00050"]
    assert dois_in_pdf(io.BytesIO(b"%PDF-1.4 broken")) == []


def test_match_prefers_the_file_names_doi_and_says_why_not():
    candidates = [Candidate(1, "10.1/abc.12", "First"), Candidate(2, "", "Second title")]
    assert (
        match_pdf(file_name="10.1_abc.12.pdf", dois_inside=[], candidates=candidates).study.pk == 1
    )
    by_title = match_pdf(file_name="Second Title.PDF", dois_inside=[], candidates=candidates)
    assert (by_title.study.pk, by_title.how) == (2, "the file name is the study's title")
    assert match_pdf(file_name="x-study-2.pdf", dois_inside=[], candidates=candidates).study.pk == 2
    missed = match_pdf(file_name="x.pdf", dois_inside=["10.9/zz"], candidates=candidates)
    assert missed.study is None and "10.9/zz" in missed.how


def test_bulk_upload_matches_loose_and_zipped_pdfs(review, cast, waiting, settings):
    a, b, c, d, e = waiting
    loose = [
        ("10.1145_3368089.3409759.pdf", ContentFile(make_pdf("Paper A"))),
        ("scan.pdf", ContentFile(make_pdf("Published as doi:10.1109/ICSE.2021.00050"))),
        ("not-a-pdf.pdf", ContentFile(b"<html>hello</html>")),
    ]
    archive = _zip(
        {
            "papers/Hidden technical debt in ML systems.pdf": make_pdf("D"),
            "papers/mystery.pdf": make_pdf("no identifier"),
            "papers/readme.txt": b"hi",
            "papers/again-10.1145_3368089.3409759.pdf": make_pdf("A twice"),
            "papers/big.pdf": make_pdf("x" * 10) + b"%" * 250_000,
        }
    )
    rows = fulltext_bulk_upload(
        review=review,
        user=cast["reviewer"],
        files=loose + [("batch.zip", ContentFile(archive))],
    )
    report = {row.file: (row.status, row.study_id) for row in rows}
    assert report == {
        "10.1145_3368089.3409759.pdf": ("attached", a.pk),
        "scan.pdf": ("attached", b.pk),
        "not-a-pdf.pdf": ("refused", None),
        "batch.zip: papers/Hidden technical debt in ML systems.pdf": ("attached", d.pk),
        "batch.zip: papers/mystery.pdf": ("unmatched", None),
        "batch.zip: papers/readme.txt": ("refused", None),
        "batch.zip: papers/again-10.1145_3368089.3409759.pdf": ("unmatched", a.pk),
        "batch.zip: papers/big.pdf": ("refused", None),
    }
    reasons = {row.file: row.reason for row in rows}
    assert "inside the PDF" in reasons["scan.pdf"]
    assert "already took" in reasons["batch.zip: papers/again-10.1145_3368089.3409759.pdf"]
    # What is stored: exactly the three matched PDFs, each the bytes that were uploaded.
    stored = {f.study_id: f for f in FullText.objects.all()}
    assert set(stored) == {a.pk, b.pk, d.pk}
    assert (settings.MEDIA_ROOT / stored[d.pk].file.name).read_bytes() == make_pdf("D")
    assert stored[a.pk].original_name == "10.1145_3368089.3409759.pdf"
    on_disk = list((settings.MEDIA_ROOT / "fulltexts").rglob("*.pdf"))
    assert len(on_disk) == 3  # nothing half-written for the refused ones


def test_bulk_upload_view_reports_and_is_for_writers(review, waiting, client_for, htmx_headers):
    url = reverse("screening:fulltext_bulk_upload", args=[review.slug])
    files = [
        SimpleUploadedFile("10.1016_j.jss.2022.111.pdf", make_pdf("C"), "application/pdf"),
        SimpleUploadedFile("unknown.pdf", make_pdf("?"), "application/pdf"),
    ]
    assert client_for("viewer").post(url, {"files": files}).status_code == 403
    assert client_for("outsider").post(url, {"files": files}).status_code == 404
    for upload in files:
        upload.seek(0)
    response = client_for("reviewer").post(url, {"files": files}, **htmx_headers)
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 attached" in body and "1 not matched" in body and "unknown.pdf" in body
    assert list(FullText.objects.values_list("study_id", flat=True)) == [waiting[2].pk]
    empty = client_for("reviewer").post(url, {}, **htmx_headers)
    assert empty.status_code == 422 and "Choose" in empty.content.decode()
