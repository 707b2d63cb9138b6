"""Chromium: the same reviewer in two tabs on the same study (issue 11, bug 2), and a reviewer
whose decision completed a conflict trying to take it back (bug 18).

Every write is checked in the database and on the page after a reload, as the same user and as
another one.
"""

import pytest

from screening.models import AuditEvent, Decision
from screening.services.screening import decision_record

from .screening_helpers import make_studies, stage
from .test_screening_browser import SETTLED, logged_in_page

pytestmark = pytest.mark.browser


def test_stale_tab_decision_is_refused_then_applied_on_request(browser, live_server, review, cast):
    studies = make_studies(review, 3)
    context, tab_a = logged_in_page(browser, live_server, "reviewer")
    other_context = None
    try:
        tab_b = context.new_page()
        screen = f"/r/{review.slug}/screen/title/"
        tab_a.goto(screen)
        tab_b.goto(screen)
        first = studies[0]
        for tab in (tab_a, tab_b):
            tab.wait_for_selector(f'#screen-panel[data-study="{first.pk}"]{SETTLED}')
        tab_a.keyboard.press("i")
        tab_a.wait_for_selector(f'#screen-panel:not([data-study="{first.pk}"]){SETTLED}')
        assert Decision.objects.get(study=first).verdict == "include"

        # Tab B still shows the study as undecided: its exclusion is refused, nothing changes.
        tab_b.keyboard.press("e")
        stale = tab_b.wait_for_selector("#screen-stale [data-stale-write]")
        assert "include" in tab_b.inner_text("#screen-stale [data-stale-current]")
        assert "reviewer" in stale.inner_text()
        assert Decision.objects.get(study=first).verdict == "include"
        assert not AuditEvent.objects.filter(action="decision.overwrite").exists()

        # One key applies tab B's exclusion anyway; it is stored and audited.
        tab_b.wait_for_function(
            "document.activeElement && document.activeElement.matches('[data-stale-apply]')"
        )
        tab_b.keyboard.press("Enter")
        tab_b.wait_for_selector(f'#screen-panel:not([data-study="{first.pk}"]){SETTLED}')
        decision = Decision.objects.get(study=first)
        assert (decision.verdict, decision.version) == ("exclude", 2)
        event = AuditEvent.objects.get(action="decision.overwrite")
        assert event.before["verdict"] == "include" and event.after["verdict"] == "exclude"

        # After a reload the reviewer's study page shows the stored exclusion.
        tab_a.goto(f"/r/{review.slug}/screen/studies/{first.pk}/")
        row = tab_a.locator(f'[data-decision="{decision.pk}"]')
        assert "Exclude" in row.inner_text()
        # Blind mode: reviewer2 does not see it while the study waits for them.
        other_context, other = logged_in_page(browser, live_server, "reviewer2")
        other.goto(f"/r/{review.slug}/screen/studies/{first.pk}/")
        other.wait_for_selector("#study-detail")
        assert other.locator(f'[data-decision="{decision.pk}"]').count() == 0
    finally:
        context.close()
        if other_context is not None:
            other_context.close()


def test_undo_of_a_decision_that_completed_a_conflict_is_refused(
    browser, live_server, review, cast
):
    (study,) = make_studies(review, 1)
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="exclude",
    )
    context, page = logged_in_page(browser, live_server, "reviewer2")
    try:
        page.goto(f"/r/{review.slug}/screen/title/")
        page.wait_for_selector(f'#screen-panel[data-study="{study.pk}"]{SETTLED}')
        page.keyboard.press("i")
        page.wait_for_selector("#done-title")
        page.keyboard.press("z")
        page.wait_for_selector("#screen-feedback.text-danger")
        assert "adjudicator settles it" in page.inner_text("#screen-feedback")
        page.reload()
        page.wait_for_selector("#done-title")
        assert sorted(Decision.objects.values_list("verdict", flat=True)) == ["exclude", "include"]
        mine = Decision.objects.get(reviewer=cast["reviewer2"])
        assert mine.verdict == "include" and mine.version == 1
    finally:
        context.close()


def test_stale_conflict_resolution_is_refused_then_applied_on_request(
    browser, live_server, review, cast
):
    from screening.models import Resolution
    from screening.services.screening import adjudicator_designate, conflict_resolve

    (study,) = make_studies(review, 1)
    for user, verdict in ((cast["reviewer"], "include"), (cast["owner"], "exclude")):
        decision_record(
            review=review, study=study, stage=stage(review), reviewer=user, verdict=verdict
        )
    adjudicator_designate(review=review, user=cast["reviewer2"], by=cast["owner"])
    context, page = logged_in_page(browser, live_server, "reviewer2")
    try:
        page.goto(f"/r/{review.slug}/conflicts/")
        card = page.locator(f"#conflict-{study.pk}")
        card.get_by_text("Include I", exact=True).click()
        card.get_by_label("Note").fill("Meets IC1 on reading")
        # Meanwhile another adjudicator (the owner allowed parties) settles it as uncertain.
        review.stages.filter(key="title").update(parties_may_resolve=True)
        conflict_resolve(
            review=review,
            study=study,
            stage=stage(review),
            adjudicator=cast["owner"],
            verdict="uncertain",
            note="owner's call",
            seen_version=0,
        )
        card.get_by_role("button", name="Resolve").click()
        page.wait_for_selector(f"#conflict-stale-{study.pk} [data-stale-write]")
        assert "uncertain" in page.inner_text(f"#conflict-stale-{study.pk} [data-stale-current]")
        assert Resolution.objects.get(study=study).verdict == "uncertain"
        page.wait_for_function(
            "document.activeElement && document.activeElement.matches('[data-stale-apply]')"
        )
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#conflict-stale-{study.pk}", state="detached")
        resolution = Resolution.objects.get(study=study)
        assert (resolution.verdict, resolution.version) == ("include", 2)
        assert resolution.decided_by == cast["reviewer2"]
        assert AuditEvent.objects.filter(action="resolution.overwrite").count() == 1
        study.refresh_from_db()
        assert study.current_stage.key == "full_text"
        # The study page, reloaded as the owner, shows the applied outcome.
        owner_context, owner_page = logged_in_page(browser, live_server, "owner")
        try:
            owner_page.goto(f"/r/{review.slug}/screen/studies/{study.pk}/")
            outcomes = owner_page.inner_text("#study-detail")
            assert "Include (Adjudicated by reviewer2): Meets IC1 on reading" in outcomes
        finally:
            owner_context.close()
    finally:
        context.close()
