"""In Chromium: the owner answers a PRISMA-S item without a reload; a second tab's stale save is
refused and can be applied on request; the viewer sees the answer after a reload."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from screening.models import PrismaSAnswers

from .conftest import PASSWORD
from .factories import review_with_cast

pytestmark = pytest.mark.browser


@pytest.fixture
def review(transactional_db):
    # The live server runs in this process: loading the URLconf here (it imports every view
    # module, scikit-learn included) keeps the browser's first page inside its timeout.
    reverse("screening:review_list")
    return review_with_cast()[0]


def test_owner_answers_an_item_and_a_stale_tab_is_refused(review, login_page, browser, live_server):
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/prisma-s/")
    expect(page.locator("#prisma-s-item-14")).to_have_attribute("data-source", "missing")
    page.evaluate("window.__noReload = 'still here'")

    # A second tab opened before the first save.
    stale_tab = page.context.new_page()
    stale_tab.goto(f"{live_server.url}/r/{review.slug}/prisma-s/")

    page.get_by_label("14. Peer review").fill("PRESS checklist, by a <b>librarian</b>")
    page.get_by_role("button", name="Save answers").click()
    expect(page.locator("#prisma-s-item-14")).to_have_attribute("data-source", "entered")
    expect(page.locator("#prisma-s-item-14 .prisma-s-text")).to_have_text(
        "PRESS checklist, by a <b>librarian</b>"
    )
    assert page.evaluate("window.__noReload") == "still here"
    assert PrismaSAnswers.objects.get(review=review).answers == {
        "14": "PRESS checklist, by a <b>librarian</b>"
    }

    stale_tab.get_by_label("3. Study registries").fill("None searched")
    stale_tab.get_by_role("button", name="Save answers").click()
    warning = stale_tab.locator("#prisma-s-form-errors [data-stale-write]")
    expect(warning).to_contain_text("changed since you opened it")
    assert PrismaSAnswers.objects.get(review=review).version == 1
    stale_tab.locator("[data-stale-apply]").click()
    expect(stale_tab.locator("#prisma-s-item-3")).to_have_attribute("data-source", "entered")
    stored = PrismaSAnswers.objects.get(review=review)
    # The stale tab's form replaced the answers as a whole, as the owner chose.
    assert (stored.answers, stored.version) == ({"3": "None searched"}, 2)

    viewer = browser.new_context(base_url=live_server.url).new_page()
    viewer.goto("/accounts/login/")
    viewer.fill("#id_username", "viewer")
    viewer.fill("#id_password", PASSWORD)
    viewer.click("button[type=submit]")
    viewer.wait_for_url(lambda url: "/accounts/login/" not in url)
    viewer.goto(f"/r/{review.slug}/prisma-s/")
    expect(viewer.locator("#prisma-s-item-3 .prisma-s-text")).to_have_text("None searched")
    expect(viewer.locator("#prisma-s-form")).to_have_count(0)
    viewer.context.close()
