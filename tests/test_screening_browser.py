"""Chromium: two blind reviewers screen by keyboard alone; the owner resolves their conflict."""

import pytest

from screening.models import Decision, Study

from .conftest import PASSWORD
from .screening_helpers import fast_password_hashing, make_studies

pytestmark = pytest.mark.browser
SETTLED = ":not(.htmx-added):not(.htmx-settling)"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    fast_password_hashing(settings)


def logged_in_page(browser, live_server, username):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return context, page


def screen_by_keyboard(page, review, studies, keys):
    page.goto(f"/r/{review.slug}/screen/title/")
    for study, key in zip(studies, keys, strict=True):
        # Wait until htmx has settled the swapped-in panel, as a reader would.
        page.wait_for_selector(f'#screen-panel[data-study="{study.pk}"]{SETTLED}')
        # The title stage never shows the abstract.
        assert study.abstract not in page.inner_text("#screen-panel")
        page.keyboard.press(key)
    page.wait_for_selector("#done-title")


def test_two_reviewers_keyboard_conflict_resolved_by_owner(browser, live_server, review, cast):
    studies = make_studies(review, 3)
    contexts = []
    try:
        context_a, page_a = logged_in_page(browser, live_server, "reviewer")
        context_b, page_b = logged_in_page(browser, live_server, "reviewer2")
        contexts += [context_a, context_b]
        # Both reviewers are on the page at once: each study needs both of them.
        page_b.goto(f"/r/{review.slug}/screen/title/")
        screen_by_keyboard(page_a, review, studies, ["i", "e", "u"])
        # Reviewer A sees their progress; the URL never changed (htmx swaps, no reload).
        assert page_a.url.endswith("/screen/title/")
        assert page_a.inner_text('[data-progress="mine"]') == "3"
        # Undo by keyboard brings the last study back; decide it again.
        page_a.keyboard.press("z")
        page_a.wait_for_selector(f'#screen-panel[data-study="{studies[2].pk}"]{SETTLED}')
        page_a.keyboard.press("u")
        page_a.wait_for_selector("#done-title")
        screen_by_keyboard(page_b, review, studies, ["i", "i", "u"])
        assert Decision.objects.count() == 6

        outcomes = {
            s.pk: s.current_stage.key for s in Study.objects.select_related("current_stage")
        }
        assert outcomes[studies[0].pk] == "full_text"
        assert outcomes[studies[2].pk] == "abstract"
        assert outcomes[studies[1].pk] == "title"  # the conflict waits

        context_o, page_o = logged_in_page(browser, live_server, "owner")
        contexts.append(context_o)
        page_o.goto(f"/r/{review.slug}/conflicts/")
        card = page_o.locator(f"#conflict-{studies[1].pk}")
        assert "Include" in card.inner_text() and "Exclude" in card.inner_text()
        card.get_by_label("Outcome", exact=True).select_option("include")
        card.get_by_label("Reason for this outcome").fill("Both criteria met on reading")
        card.get_by_role("button", name="Resolve").click()
        page_o.wait_for_selector("text=resolved")
        assert page_o.locator(f"#conflict-{studies[1].pk}").count() == 0
        contested = Study.objects.select_related("current_stage").get(pk=studies[1].pk)
        assert (contested.current_stage.key, contested.outcome) == ("full_text", "screening")
    finally:
        for context in contexts:
            context.close()
