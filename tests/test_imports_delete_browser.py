"""In Chromium, with a real worker: the owner deletes a finished import after its confirmation;
after a reload the batch is gone, the funnel (recomputed by the worker) counts fewer studies,
and the deletion is in the audit log."""

import pytest
from django.urls import reverse

from screening.models import AuditEvent, FunnelSnapshot, ImportBatch
from screening.services import dedup, screening
from screening.services.funnel import funnel_compute

from .factories import review_with_cast
from .imports_helpers import imported, media_root_fixture  # noqa: F401 (fixtures)
from .waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.usefixtures("media_root")]


def title_row(page) -> list[str]:
    return page.locator("#funnel-stages tbody tr").first.locator("td").all_inner_texts()


def test_owner_deletes_a_finished_import_and_the_funnel_follows(celery_worker, login_page):
    review, cast = review_with_cast()
    acm = imported(
        review,
        cast["owner"],
        "ACM",
        [("Feature stores at scale", "10.5555/acm-1"), ("Model registries", "10.5555/acm-2")],
    )
    imported(review, cast["owner"], "IEEE", [("Drift in production", "10.5555/ieee-1")])
    dedup.review_deduplicate(review=review)
    title = review.stages.get(key="title")
    study = review.studies.get(doi="10.5555/acm-1")
    for reviewer in (cast["reviewer"], cast["reviewer2"]):
        screening.decision_record(
            review=review, study=study, stage=title, reviewer=reviewer, verdict="exclude"
        )
    funnel_compute(review=review)

    page = login_page("owner")
    page.goto(reverse("screening:reports_home", args=[review.slug]))
    # Title stage: screened 1, include 0, uncertain 0, exclude 1, awaiting 2.
    assert title_row(page) == ["1", "0", "0", "1", "2"]

    page.goto(reverse("screening:import_detail", args=[review.slug, acm.pk]))
    page.click("#delete-link")
    impact = page.locator("#delete-impact")
    assert impact.locator('[data-count="records"]').inner_text() == "2"
    assert impact.locator('[data-count="studies_removed"]').inner_text() == "2"
    assert impact.locator('[data-count="decisions"]').inner_text() == "2"
    page.locator("#confirm-delete:focus").wait_for()
    page.click("#confirm-delete")
    page.wait_for_url(lambda url: url.endswith(f"/r/{review.slug}/imports/"))
    page.reload()
    rows = page.locator("#batches tbody tr")
    assert rows.count() == 1 and "IEEE.ris" in rows.first.inner_text()
    assert not ImportBatch.objects.filter(pk=acm.pk).exists()
    event = AuditEvent.objects.get(action="import.delete", object_id=str(acm.pk))
    assert event.actor == cast["owner"] and event.before["removed"]["decisions"] == 2

    # The worker recomputes the funnel (the imports and decisions above asked for refreshes
    # too, so no snapshot count tells which one is new): reload until the page shows it.
    page.goto(reverse("screening:reports_home", args=[review.slug]))

    def funnel_shows_the_deletion() -> bool:
        page.reload()
        return title_row(page) == ["0", "0", "0", "0", "1"]

    wait_until(funnel_shows_the_deletion, timeout=90, every=1)
    latest = FunnelSnapshot.objects.filter(review=review).latest("id")
    assert latest.data["records_screened"] == 1
