"""The imports page in Chromium: refused files explained in place (issue 11, bug 7), Table 1
refreshed with the batch row when an import finishes (bug 9), and a semicolon table mapped
by hand to the end (bug 8). Each test reloads and asserts the stored rows."""

import pytest
from django.urls import reverse

from screening.models import ImportBatch, Record, SearchRun
from screening.services.imports import batch_create, batch_run, source_resolve

from .factories import review_with_cast
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    SCOPUS_RIS_RECORDS,
    media_root_fixture,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("media_root")]


@pytest.mark.django_db(transaction=True)
def test_rejected_files_are_explained_in_place_whatever_the_mix(login_page, tmp_path):
    review, cast = review_with_cast()
    source = source_resolve(review=review, name="Scopus")
    batch_run(
        batch_id=batch_create(
            review=review,
            source=source,
            uploaded_by=cast["owner"],
            file_name="scopus.ris",
            data=SCOPUS_RIS.read_bytes(),
            enqueue=False,
        ).pk
    )
    png = tmp_path / "figure.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + b"x" * 300)
    again = tmp_path / "again.ris"
    again.write_bytes(SCOPUS_RIS.read_bytes())
    page = login_page("owner")
    page.goto(reverse("screening:import_list", kwargs={"slug": review.slug}))
    page.set_input_files("#id_files", [str(png), str(pdf), str(again)])
    page.select_option("#id_source", label="Scopus")
    page.click("#upload-button")
    errors = page.locator("#upload-errors")
    errors.wait_for()
    text = " ".join(errors.inner_text().split())
    assert "figure.png: figure.png is a PNG image, not a bibliographic export" in text
    assert "paper.pdf: paper.pdf is a PDF document" in text
    assert "again.ris: This file was already uploaded to this review" in text
    assert "could not complete this request" not in page.content()
    assert ImportBatch.objects.filter(review=review).count() == 1
    page.reload()
    assert page.locator("#batches tbody tr").count() == 1


@pytest.mark.worker
def test_table1_reconciliation_refreshes_when_the_import_finishes(celery_worker, login_page):
    review, cast = review_with_cast()
    source = source_resolve(review=review, name="Scopus")
    string = review.search_strings.create(text="mlops", position=0)
    run = SearchRun.objects.create(
        review=review, search_string=string, source=source, hits_reported=100
    )
    page = login_page("owner")
    page.goto(reverse("screening:import_list", kwargs={"slug": review.slug}))
    assert page.inner_text("#reconciliation-total-imported") == "0"
    page.set_input_files("#id_files", str(SCOPUS_RIS))
    page.select_option("#id_source", label="Scopus")
    page.select_option("#id_search_run", value=str(run.pk))
    page.click("#upload-button")
    page.wait_for_selector(".batch-progress[data-status=done]", timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#reconciliation-total-imported').innerText.trim() === '92'"
    )
    assert Record.objects.filter(review=review).count() == SCOPUS_RIS_RECORDS
    page.reload()
    assert page.inner_text("#reconciliation-total-imported") == "92"
    row = page.locator("#reconciliation-runs tbody tr").first
    assert row.get_attribute("data-state") == "fewer"


SEMICOLON_CSV = (
    b"Titel;Autoren;Jahr;Zusammenfassung;DOI\n"
    b"Eine Studie;Doe, J.;2021;Text eins;10.1000/a\n"
    b"Zweite Studie;Roe, R.;2022;Text zwei;10.1000/b\n"
)


@pytest.mark.django_db(transaction=True)
def test_semicolon_table_is_mapped_then_imported(login_page, monkeypatch):
    review, cast = review_with_cast()
    monkeypatch.setattr("screening.services.queue.current_app", _Synchronous())
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Uni library"),
        uploaded_by=cast["owner"],
        file_name="bibliothek.csv",
        data=SEMICOLON_CSV,
    )
    batch = ImportBatch.objects.get(pk=batch.pk)
    assert batch.status == "failed" and batch.report["needs_mapping"]
    page = login_page("owner")
    page.goto(
        reverse("screening:import_columns", kwargs={"slug": review.slug, "batch_id": batch.pk})
    )
    page.select_option("#id_title", "Titel")
    page.select_option("#id_authors", "Autoren")
    page.select_option("#id_year", "Jahr")
    page.select_option("#id_abstract", "Zusammenfassung")
    page.select_option("#id_doi", "DOI")
    page.click("text=Save and import")
    page.wait_for_url(f"**/imports/{batch.pk}/")
    page.reload()
    page.wait_for_selector(".batch-progress[data-status=done]")
    stored = list(Record.objects.filter(batch=batch).values_list("title", "year", "doi"))
    assert stored == [("Eine Studie", 2021, "10.1000/a"), ("Zweite Studie", 2022, "10.1000/b")]


class _Synchronous:
    """Runs the import task in this process when it is sent (the browser test needs no
    worker to show the mapping step; the worker path is tested in test_imports_jobs)."""

    def send_task(self, name, kwargs=None, **_options):
        if name == "screening.batch_import":
            batch_run(**kwargs)
