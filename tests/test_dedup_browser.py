"""The duplicate queue in Chromium, driven by the keyboard only."""

import pytest

from screening.models import DuplicateCandidate, Record, StudyMerge
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


@pytest.mark.browser
def test_merged_studies_search_and_split_without_a_reload(
    transactional_db, review_and_cast, login_page
):
    review, _ = review_and_cast
    titles = [
        f"Registry cohort {n:02d} of eculizumab in atypical uraemic syndrome" for n in range(30)
    ]
    add_batch(review, "ACM", [paper(t, doi=f"10.1000/c{n}") for n, t in enumerate(titles)])
    add_batch(review, "IEEE", [paper(t, doi=f"10.1000/c{n}") for n, t in enumerate(titles)])
    review_deduplicate(review=review)

    page = login_page("owner")
    page.goto(f"/r/{review.slug}/duplicates/merged/")
    page.locator("text=Page 1 of 2").wait_for()
    page.fill("#merged-search", "cohort 07")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#dedup-merged article').length === 1")
    assert "q=cohort%2007" in page.url  # the search is in the address, for reload and sharing
    page.locator("button:has-text('Split off')").last.click()
    page.locator("text=is now study").wait_for()
    record = Record.objects.filter(review=review, title=titles[7]).order_by("id").last()
    assert record.study.records.count() == 1  # stored: the record has a study of its own
    page.reload()
    page.locator("text=No merged study matches").wait_for()
