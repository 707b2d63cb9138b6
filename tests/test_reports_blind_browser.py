"""In Chromium: with blind mode on, a reviewer opening Reports (after a reload) sees the note
and no diagram, while the owner, in another browser context, sees the diagram."""

import pytest
from playwright.sync_api import expect

from screening.services.funnel import funnel_compute

from .conftest import PASSWORD


@pytest.mark.browser
def test_blind_reviewer_sees_the_note_and_the_owner_the_diagram(
    review, login_page, browser, live_server
):
    assert review.blind_mode
    funnel_compute(review=review)
    page = login_page("reviewer")
    page.goto(f"/r/{review.slug}/reports/")
    page.reload()
    expect(page.locator("#reports-blind-note")).to_contain_text("Blind mode is on")
    expect(page.locator("#reports-table1")).to_be_visible()
    assert page.locator("svg.prisma-diagram, #funnel-stages, .figure2 svg").count() == 0
    assert page.locator('[data-download="prisma.svg"]').count() == 0

    owner = browser.new_context(base_url=live_server.url).new_page()
    owner.goto("/accounts/login/")
    owner.fill("#id_username", "owner")
    owner.fill("#id_password", PASSWORD)
    owner.click("button[type=submit]")
    owner.wait_for_url(lambda url: "/accounts/login/" not in url)
    owner.goto(f"/r/{review.slug}/reports/")
    expect(owner.locator("svg.prisma-diagram")).to_be_visible()
    assert owner.locator("#reports-blind-note").count() == 0
    owner.context.close()
