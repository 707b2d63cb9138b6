"""Chromium at 390 x 844 (a phone): the study comes first, the verdicts are in thumb reach, the
review menu is folded away, and a tapped decision is stored."""

import pytest

from screening.models import Decision

from .conftest import PASSWORD
from .screening_helpers import make_studies

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 390, 844
SETTLED = ":not(.htmx-added):not(.htmx-settling)"


def _in_viewport(box) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= WIDTH
        and box["y"] + box["height"] <= HEIGHT
    )


def test_screening_on_a_phone(browser, live_server, review, cast):
    long_abstract = "A long abstract sentence about pipelines. " * 60
    first, second = make_studies(review, 2, stage_key="abstract", abstract=long_abstract)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": WIDTH, "height": HEIGHT},
        has_touch=True,
        is_mobile=True,
    )
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", "reviewer")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        page.goto(f"/r/{review.slug}/screen/abstract/")
        panel = page.wait_for_selector(f"#screen-panel[data-study]{SETTLED}")
        shown = int(panel.get_attribute("data-study"))
        # The study first: its title starts on the first screen; the menu is folded away.
        title = page.locator("#study-title").bounding_box()
        assert title is not None and 0 <= title["y"] < HEIGHT / 2
        assert not page.locator("#review-nav").is_visible()
        # The three verdicts are on screen without scrolling, even below a long abstract.
        assert page.evaluate("window.scrollY") == 0
        for name in ("Include", "Uncertain", "Exclude"):
            button = page.get_by_role("button", name=name, exact=False).first
            assert button.is_visible() and _in_viewport(button.bounding_box()), name
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH

        page.locator('.screen-verdicts button[value="include"]').tap()
        page.wait_for_selector(f'#screen-panel:not([data-study="{shown}"]){SETTLED}')
        stored = Decision.objects.get(study_id=shown, reviewer=cast["reviewer"])
        assert stored.verdict == "include"

        # After a reload the decision is still counted, and the study page shows it.
        page.reload()
        page.wait_for_selector(f"#screen-panel{SETTLED}")
        assert page.inner_text('[data-progress="mine"]') == "1"
        page.goto(f"/r/{review.slug}/screen/studies/{shown}/")
        assert "Include" in page.inner_text(f"#study-detail tr[data-decision='{stored.pk}']")

        # The menu opens from its button.
        page.get_by_role("button", name="Menu").tap()
        page.wait_for_selector("#review-nav.show")
        assert page.get_by_role("link", name="Screening").is_visible()
    finally:
        context.close()
    assert {first.pk, second.pk} >= {shown}
