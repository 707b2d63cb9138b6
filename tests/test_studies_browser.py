"""Chromium: search and filter the studies page, tag a study, add a note; what another
reviewer sees before and after the study is resolved (blind mode); owner's bulk tagging."""

import pytest
from playwright.sync_api import expect

from screening.models import StudyNote, StudyTag
from screening.services.notes import tag_create
from screening.services.screening import decision_record

from .screening_helpers import make_studies, stage
from .test_screening_browser import logged_in_page

pytestmark = pytest.mark.browser


@pytest.fixture
def corpus(review):
    studies = make_studies(review, 4)
    titles = [
        "Detecting data drift in deployed models",
        "Continuous delivery for machine learning",
        "Drift-aware retraining schedules",
        "Feature stores in practice",
    ]
    for study, title, year in zip(studies, titles, [2019, 2020, 2022, 2021], strict=True):
        study.title = title
        study.year = year
        study.save()
    return studies


def test_reviewer_searches_filters_tags_and_notes_blind_to_the_other(
    browser, live_server, review, cast, corpus
):
    seminal = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#d63384", private=False
    )
    target = corpus[2]
    contexts = []
    try:
        context, page = logged_in_page(browser, live_server, "reviewer")
        contexts.append(context)
        page.goto(f"/r/{review.slug}/studies/")
        page.wait_for_selector("#studies-count")
        assert page.locator("[data-study]").count() == 4
        page.fill("#id_q", "drift")
        page.press("#id_q", "Enter")
        expect(page.locator("[data-study]")).to_have_count(2)
        assert "q=drift" in page.url  # the search is in the address: reload keeps it
        page.fill("#id_year", "2022")
        page.press("#id_year", "Enter")
        expect(page.locator("[data-study]")).to_have_count(1)
        page.click(f'[data-study="{target.pk}"] a')
        page.wait_for_url(f"**/studies/{target.pk}/")
        # Tag it and add a note, both swapped in without a reload.
        page.select_option("#study-tag-select", str(seminal.pk))
        page.click("#study-tags button[type=submit]")
        page.wait_for_selector(f'#study-tags [data-tag="{seminal.pk}"]')
        page.fill("#id_note_text", "Check their drift <b>metric</b>")
        page.click("#study-notes button:text('Add note')")
        page.wait_for_selector("#study-notes [data-note]")
        note = StudyNote.objects.get(study=target)
        assert (note.author, note.text, note.stage.key) == (
            cast["reviewer"],
            "Check their drift <b>metric</b>",
            "title",
        )
        assert StudyTag.objects.filter(
            study=target, tag=seminal, added_by=cast["reviewer"]
        ).exists()
        page.reload()
        assert "Check their drift <b>metric</b>" in page.inner_text(f'[data-note="{note.pk}"]')
        assert page.locator(f'#study-tags [data-tag="{seminal.pk}"]').count() == 1
        # The list shows the tag and the note count to its author.
        page.goto(f"/r/{review.slug}/studies/?tag={seminal.pk}")
        row = page.locator(f'[data-study="{target.pk}"]')
        assert "seminal" in row.inner_text()
        assert row.locator("td").last.inner_text().strip() == "1"

        # Reviewer 2, blind: the tag is the review's, the note is not theirs to read yet.
        context2, other = logged_in_page(browser, live_server, "reviewer2")
        contexts.append(context2)
        other.goto(f"/r/{review.slug}/studies/{target.pk}/")
        other.wait_for_selector("#study-notes")
        assert other.locator("[data-note]").count() == 0
        assert "drift <b>metric</b>" not in other.content()
        assert other.locator(f'#study-tags [data-tag="{seminal.pk}"]').count() == 1
        other.goto(f"/r/{review.slug}/studies/?q=drift")
        other_row = other.locator(f'[data-study="{target.pk}"]')
        assert other_row.locator("td").last.inner_text().strip() == ""  # no count either

        title = stage(review, "title")
        for username in ("reviewer", "reviewer2"):
            decision_record(
                review=review, study=target, stage=title, reviewer=cast[username], verdict="include"
            )
        other.goto(f"/r/{review.slug}/studies/{target.pk}/")
        assert "Check their drift <b>metric</b>" in other.inner_text(f'[data-note="{note.pk}"]')
    finally:
        for context in contexts:
            context.close()


def test_owner_bulk_tags_selected_studies(browser, live_server, review, cast, corpus):
    seminal = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#d63384", private=False
    )
    context, page = logged_in_page(browser, live_server, "owner")
    try:
        page.goto(f"/r/{review.slug}/studies/?q=drift")
        expect(page.locator("[data-study]")).to_have_count(2)
        page.check(f'[data-study="{corpus[0].pk}"] input[type=checkbox]')
        page.check(f'[data-study="{corpus[2].pk}"] input[type=checkbox]')
        page.select_option("#bulk-tag-select", str(seminal.pk))
        page.click("#bulk-tag button[type=submit]")
        page.wait_for_selector("#messages .alert")
        assert "q=drift" in page.url
        assert set(StudyTag.objects.values_list("study_id", flat=True)) == {
            corpus[0].pk,
            corpus[2].pk,
        }
        page.reload()
        for study in (corpus[0], corpus[2]):
            assert page.locator(f'[data-study="{study.pk}"] [data-tag="{seminal.pk}"]').count() == 1
    finally:
        context.close()

    context2, viewer = logged_in_page(browser, live_server, "viewer")
    try:
        viewer.goto(f"/r/{review.slug}/studies/?tag={seminal.pk}")
        viewer.wait_for_selector("#studies-count")
        assert viewer.locator("[data-study]").count() == 2
        assert viewer.locator("#bulk-tag-select").count() == 0  # a viewer cannot tag
    finally:
        context2.close()
