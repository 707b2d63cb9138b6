"""In Chromium: the reports page of a review updated by a search round draws the PRISMA 2020
diagram for updated reviews; after a reload, and for another member, its boxes carry the
stored figures and drill down to as many studies."""

import pytest
from playwright.sync_api import expect

from screening.services.funnel import funnel_compute

from .conftest import PASSWORD
from .imports_helpers import media_root_fixture  # noqa: F401 (fixtures are found by name)
from .test_rounds import round_one as round_one  # the fixtures, found by name
from .test_rounds import round_two as round_two
from .test_rounds_funnel import screened as screened


def _box(page, key):
    return page.locator(f'svg.prisma-diagram g[data-box="{key}"]')


BOXES = (
    "previous_studies",
    "total_studies",
    "new_studies",
    "database_results",
    "duplicates",
    "records_screened",
    "dbr_assessed",
)


def _text(page, key):
    """A box's lines as one text (the diagram wraps long lines)."""
    return " ".join(" ".join(_box(page, key).locator("text").all_text_contents()).split())


def _drill(page, slug, key, text=None):
    """Open the reports page afresh, click a box (or one of its lines), return the count."""
    page.goto(f"/r/{slug}/reports/")
    box = _box(page, key)
    # A line of the box (its first, the box's title, unless one is named) links to its list.
    box.locator("a", has_text=text).first.click() if text else box.locator("a text").first.click()
    page.wait_for_selector("#box-table")
    return page.locator("#box-count").inner_text()


@pytest.mark.browser
def test_updated_review_diagram_adds_up_and_drills_down(
    review, cast, screened, login_page, browser, live_server, tmp_path
):
    funnel_compute(review=review)
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/reports/")
    page.reload()
    expect(_box(page, "total_studies")).to_be_visible()
    expect(page.locator("#funnel-round")).to_contain_text("updated by search round 2")
    texts = {key: _text(page, key) for key in BOXES}
    assert "Studies included in previous version of review (n = 3)" in texts["previous_studies"]
    assert "Total studies included in review (n = 4)" in texts["total_studies"]
    assert "New studies included in review (n = 1)" in texts["new_studies"]
    assert "Scopus (n = 286)" in texts["database_results"]
    assert "Duplicate records (n = 81)" in texts["duplicates"]
    assert (
        "(n = 205) Awaiting screening (n = 201) Title screening: 201" in texts["records_screened"]
    )
    assert "Awaiting a full-text decision (n = 1)" in texts["dbr_assessed"]
    page.screenshot(path=str(tmp_path / "updated-diagram.png"), full_page=True)

    assert _drill(page, review.slug, "duplicates") == "81"
    assert _drill(page, review.slug, "previous_studies") == "3"
    assert _drill(page, review.slug, "total_studies") == "4"
    assert _drill(page, review.slug, "records_screened") == "205"
    assert _drill(page, review.slug, "records_screened", "Title screening") == "201"

    # Another member sees the same stored figures once blind mode is off (while it is on, the
    # funnel is the owner's and adjudicators': tests/test_reports_blind*.py).
    review.blind_mode = False
    review.save(update_fields=["blind_mode"])
    viewer = browser.new_context(base_url=live_server.url).new_page()
    viewer.goto("/accounts/login/")
    viewer.fill("#id_username", "viewer")
    viewer.fill("#id_password", PASSWORD)
    viewer.click("button[type=submit]")
    viewer.wait_for_url(lambda url: "/accounts/login/" not in url)
    assert _drill(viewer, review.slug, "total_studies") == "4"
    viewer.context.close()
