"""Chromium: two blind reviewers screen by keyboard alone; the owner resolves their conflict."""

import pytest

from screening.models import Decision, Study

from .conftest import PASSWORD
from .screening_helpers import exclusion_criteria, make_studies

pytestmark = pytest.mark.browser
SETTLED = ":not(.htmx-added):not(.htmx-settling)"


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


def screen_by_keyboard(page, review, studies, keys, stage_key="title"):
    page.goto(f"/r/{review.slug}/screen/{stage_key}/")
    for study, key in zip(studies, keys, strict=True):
        # Wait until htmx has settled the swapped-in panel, as a reader would.
        page.wait_for_selector(f'#screen-panel[data-study="{study.pk}"]{SETTLED}')
        shown = page.inner_text("#screen-panel")
        # The title stage never shows the abstract; the later stages do.
        assert (study.abstract in shown) is (stage_key != "title")
        for press in key.split():
            page.keyboard.press(press)
    page.wait_for_selector("#done-title")


def test_two_reviewers_keyboard_conflict_resolved_by_owner(browser, live_server, review, cast):
    """The seed's three stages for two blind reviewers, keyboard only, one conflict."""
    exclusion_criteria(review, 1)
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
        card.get_by_text("Include I", exact=True).click()
        card.get_by_label("Note").fill("Both criteria met on reading")
        card.get_by_role("button", name="Resolve").click()
        page_o.wait_for_selector("text=resolved")
        assert page_o.locator(f"#conflict-{studies[1].pk}").count() == 0
        contested = Study.objects.select_related("current_stage").get(pk=studies[1].pk)
        assert (contested.current_stage.key, contested.outcome) == ("full_text", "screening")

        # Abstract stage: the doubtful study goes on to full text when both include it.
        screen_by_keyboard(page_a, review, [studies[2]], ["i"], "abstract")
        screen_by_keyboard(page_b, review, [studies[2]], ["i"], "abstract")
        # Full text: include two; exclude the third with reason 1 ticked by its number key.
        keys = {studies[0].pk: "i", studies[1].pk: "i", studies[2].pk: "1 e"}
        for page in (page_a, page_b):
            page.goto(f"/r/{review.slug}/screen/full_text/")
            order = []
            while page.locator("#done-title").count() == 0:
                panel = page.wait_for_selector(f"#screen-panel[data-study]{SETTLED}")
                study_pk = int(panel.get_attribute("data-study"))
                assert study_pk not in order, "a reviewer never sees a study twice"
                order.append(study_pk)
                for press in keys[study_pk].split():
                    page.keyboard.press(press)
                page.wait_for_selector(f'#screen-panel:not([data-study="{study_pk}"]){SETTLED}')
            assert sorted(order) == sorted(keys)
        final = {s.pk: s.outcome for s in Study.objects.all()}
        assert final == {
            studies[0].pk: "included",
            studies[1].pk: "included",
            studies[2].pk: "excluded",
        }
    finally:
        for context in contexts:
            context.close()


def test_refused_exclusion_shows_its_reason_in_place(browser, live_server, review, cast):
    """At full text an exclusion without a reason is refused in the panel, not silently lost."""
    exclusion_criteria(review, 2)
    (study,) = make_studies(review, 1, stage_key="full_text")
    context, page = logged_in_page(browser, live_server, "reviewer")
    try:
        page.goto(f"/r/{review.slug}/screen/full_text/")
        page.wait_for_selector(f'#screen-panel[data-study="{study.pk}"]{SETTLED}')
        page.keyboard.press("/")
        page.keyboard.type("e u i typed in the note are not shortcuts")
        page.keyboard.press("Escape")
        page.keyboard.press("e")
        page.wait_for_selector("#screen-feedback.text-danger")
        assert "choose at least one exclusion reason" in page.inner_text("#screen-feedback")
        assert page.locator("#htmx-error").count() == 0
        assert not Decision.objects.exists()
        # The note survived the refusal; tick reason 2 and exclude.
        assert page.input_value("#decision-note").startswith("e u i typed")
        page.keyboard.press("2")
        page.keyboard.press("e")
        page.wait_for_selector("#done-title")
        decision = Decision.objects.get()
        assert decision.verdict == "exclude"
        assert [c.code for c in decision.reasons.all()] == ["EC2"]
        assert decision.note == "e u i typed in the note are not shortcuts"
    finally:
        context.close()
