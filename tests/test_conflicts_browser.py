"""Chromium: the owner resolves conflicts by keyboard alone; what is stored survives a reload
and is what another member sees."""

import pytest

from screening.models import Resolution
from screening.services.screening import decision_record

from .screening_helpers import exclusion_criteria, make_studies, stage

pytestmark = pytest.mark.browser


def _conflict(review, cast, study, verdicts, reasons=()):
    for who, verdict in zip(("reviewer", "reviewer2"), verdicts, strict=True):
        decision_record(
            review=review,
            study=study,
            stage=stage(review),
            reviewer=cast[who],
            verdict=verdict,
            reasons=reasons if verdict == "exclude" else (),
            note=f"{who} says {verdict}",
        )


def test_owner_resolves_by_keyboard_and_the_outcome_is_stored(review, cast, login_page):
    ec1, _ = exclusion_criteria(review, 2)
    first, second = make_studies(review, 2, abstract="Abstract the adjudicator reads.")
    _conflict(review, cast, first, ("include", "exclude"), reasons=[ec1])
    _conflict(review, cast, second, ("include", "exclude"), reasons=[ec1])
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/conflicts/")
    card = page.locator(f"#conflict-{first.pk}")
    # Both decisions, their reasons and notes, and the abstract; nothing chosen for the owner.
    text = card.inner_text()
    assert "reviewer says include" in text and "reviewer2 says exclude" in text
    assert "EC1 Excluded 1" in text and "Abstract the adjudicator reads." in text
    assert card.locator('input[name="verdict"]:checked').count() == 0
    page.wait_for_selector(f"#conflict-{first.pk}.conflict-active")

    # Side with the excluding reviewer: E, reason 1, Enter; no note needed.
    page.keyboard.press("e")
    page.keyboard.press("1")
    assert card.locator(f'input[name="reasons"][value="{ec1.pk}"]').is_checked()
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#conflict-{first.pk}", state="detached")
    stored = Resolution.objects.get(study=first)
    assert (stored.verdict, stored.method, stored.decided_by) == (
        "exclude",
        "adjudication",
        cast["owner"],
    )
    assert [c.code for c in stored.reasons.all()] == ["EC1"]

    # The next conflict is active. Uncertain overrides both reviewers: the note is required,
    # and Enter without one stores nothing.
    page.wait_for_selector(f"#conflict-{second.pk}.conflict-active")
    page.keyboard.press("u")
    page.keyboard.press("Enter")
    note = page.locator(f"#note-{second.pk}")
    assert note.evaluate("el => el.required && !el.validity.valid")
    assert not Resolution.objects.filter(study=second).exists()
    # The browser focused the missing note; Esc leaves it, / comes back to it.
    page.wait_for_selector(f"#note-{second.pk}:focus")
    page.keyboard.press("Escape")
    page.wait_for_selector(f"#conflict-{second.pk}:focus")
    page.keyboard.press("/")
    page.wait_for_selector(f"#note-{second.pk}:focus")
    page.keyboard.type("Neither reading settles it")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#conflict-{second.pk}", state="detached")
    stored = Resolution.objects.get(study=second)
    assert (stored.verdict, stored.note) == ("uncertain", "Neither reading settles it")

    # After a reload the queue is empty and each study page shows the stored outcome.
    page.reload()
    assert page.locator(".conflict-card").count() == 0
    page.goto(f"/r/{review.slug}/screen/studies/{second.pk}/")
    assert "Uncertain (Adjudicated by owner): Neither reading settles it" in page.inner_text(
        "#study-detail"
    )
    page.context.clear_cookies()
    other = login_page("reviewer")
    other.goto(f"/r/{review.slug}/screen/studies/{first.pk}/")
    assert "Exclude (Adjudicated by owner)" in other.inner_text("#study-detail")
