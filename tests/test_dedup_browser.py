"""The duplicate queue in Chromium, driven by the keyboard only."""

import pytest

from screening.models import DuplicateCandidate, StudyMerge
from screening.services.dedup import review_deduplicate

from .dedup_helpers import STROKE, TRIAL, add_batch, paper


@pytest.mark.browser
def test_decide_pairs_with_the_keyboard(transactional_db, review_and_cast, login_page):
    review, _ = review_and_cast
    add_batch(review, "ACM", [paper(TRIAL, doi="10.1000/aaa1"), paper(STROKE, doi="10.1000/s1")])
    add_batch(review, "IEEE", [paper(TRIAL, doi="10.1000/aaa2"), paper(STROKE, doi="10.1000/s2")])
    review_deduplicate(review=review)
    assert DuplicateCandidate.objects.filter(review=review).count() == 2

    page = login_page("reviewer")
    page.goto(f"/r/{review.slug}/duplicates/")
    pending = page.locator("#dedup-pending")
    assert pending.inner_text() == "2"
    first_title = page.locator("#dedup-pair tbody tr").first.inner_text()

    page.keyboard.press("d")  # duplicate: the next pair swaps in without a reload
    page.wait_for_function("document.querySelector('#dedup-pending').textContent === '1'")
    assert page.locator("#dedup-pair tbody tr").first.inner_text() != first_title
    page.keyboard.press("n")  # not a duplicate
    page.locator("text=No pair left to decide").wait_for()
    page.keyboard.press("u")  # undo the last decision: that pair comes back
    page.wait_for_function("document.querySelector('#dedup-pending').textContent === '1'")

    statuses = sorted(DuplicateCandidate.objects.values_list("status", flat=True))
    assert statuses == ["duplicate", "pending"]
    assert StudyMerge.objects.filter(review=review, undone_at__isnull=True).count() == 1
    page.keyboard.press("s")  # skip it
    page.locator("text=No pair left to decide").wait_for()
