"""Chromium: bulk PDF upload matched by DOI, kept after a reload; the PDF in a frame beside the
quality and extraction forms, served from our own URL as a PDF that only we may frame."""

import pytest

from screening.models import FullText, Study

from .pdf_helpers import make_pdf
from .quality_helpers import seed_protocol
from .screening_helpers import make_studies

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _pdf(name, text):
    return {"name": name, "mimeType": "application/pdf", "buffer": make_pdf(text)}


def test_bulk_upload_then_the_pdf_beside_the_quality_form(review, cast, login_page):
    seed_protocol(review)
    first, second, third = make_studies(review, 3, stage_key="full_text")
    Study.objects.filter(pk=first.pk).update(doi="10.1145/3368089.3409759", title="First paper")
    Study.objects.filter(pk=second.pk).update(doi="10.1109/icse.2021.00050")
    page = login_page("reviewer")
    page.goto(f"/r/{review.slug}/fulltext/")
    assert "10.1145/3368089.3409759" in page.inner_text(f"#study-{first.pk}")  # the DOI column
    page.set_input_files(
        "#bulk-files",
        [
            _pdf("10.1145_3368089.3409759.pdf", "First paper"),
            _pdf("downloaded.pdf", "Available at https://doi.org/10.1109/ICSE.2021.00050"),
            _pdf("something-else.pdf", "No identifier"),
        ],
    )
    page.get_by_role("button", name="Upload and match").click()
    report = page.wait_for_selector("#bulk-report")
    assert "2 attached, 1 not matched, 0 refused" in report.inner_text()
    assert set(FullText.objects.values_list("study_id", flat=True)) == {first.pk, second.pk}

    page.reload()
    assert page.locator(f"#study-{first.pk} [data-pdf-link]").inner_text() == (
        "10.1145_3368089.3409759.pdf"
    )
    assert page.locator(f"#study-{second.pk} [data-pdf-link]").inner_text() == "downloaded.pdf"
    assert page.locator(f"#study-{third.pk} [data-pdf-link]").count() == 0

    # The first study is included: its quality page shows the PDF beside the form, to another user.
    Study.objects.filter(pk=first.pk).update(outcome=Study.Outcome.INCLUDED)
    page.context.clear_cookies()
    owner = login_page("owner")
    pdf_url = f"/r/{review.slug}/fulltext/{first.pk}/pdf/"
    with owner.expect_response(lambda r: r.url.endswith(pdf_url)) as served:
        quality = owner.goto(f"/r/{review.slug}/quality/study/{first.pk}/")
    response = served.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    # The bytes served (fetched again with the same session) are the stored PDF.
    served_bytes = owner.request.get(pdf_url).body()
    assert served_bytes == FullText.objects.get(study=first).file.open("rb").read()
    assert served_bytes.startswith(b"%PDF-")
    # The page around it may still not be framed by anyone.
    assert quality.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in quality.headers["content-security-policy"]
    frame = owner.locator("iframe[data-pdf-frame]")
    assert frame.get_attribute("src") == pdf_url and frame.is_visible()
    sheet = owner.locator("#sheet-heading").bounding_box()
    box = frame.bounding_box()
    assert box["x"] > sheet["x"]  # beside the form, not under it
    owner.goto(f"/r/{review.slug}/extraction/study/{first.pk}/")
    assert owner.locator("iframe[data-pdf-frame]").get_attribute("src") == pdf_url
