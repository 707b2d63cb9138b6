"""The ranking task through a real Celery worker, and the progress panel in a browser."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from screening.models import FunnelSnapshot, RankingRun, RankingSettings, StageStop, Study
from screening.services.ranking import ranking_schedule_if_due

from .ranking_helpers import decide, resolve, screened_until_met, studies_make
from .screening_helpers import queue_ordered, stage_priorities


@pytest.mark.worker
def test_ranking_task_runs_in_the_worker_and_writes_priorities(celery_worker, review_and_cast):
    review, cast = review_and_cast
    stage = review.stages.get(is_entry=True)
    studies = studies_make(review, relevant=5, irrelevant=25)
    labelled = [next(s for s in studies if s.truth)] + [s for s in studies if not s.truth][:4]
    for study in labelled:
        decide(study, stage, cast["reviewer"], "include" if study.truth else "exclude")
    run = ranking_schedule_if_due(review=review, stage=stage)
    assert run is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in RankingRun.ACTIVE:
            break
        time.sleep(0.3)
    assert run.status == "done", run.error
    # Two reviewers are required: the studies one reviewer decided still wait for the other.
    assert run.scored == len(studies)
    assert (run.labelled, run.relevant) == (5, 1)
    assert run.train_seconds is not None and run.finished_at is not None
    assert set(stage_priorities(stage)) == {s.pk for s in studies}
    waiting = Study.objects.filter(review=review).exclude(pk__in=[s.pk for s in labelled])
    truth = {s.pk: s.truth for s in studies}
    top4 = queue_ordered(list(waiting.values_list("pk", flat=True)), stage)[:4]
    assert all(truth[pk] for pk in top4)  # the four other on-topic studies come first


@pytest.mark.browser
def test_recall_chart_and_stopping_hint_in_the_browser(review_and_cast, login_page):
    review, cast = review_and_cast
    stage = review.stages.get(is_entry=True)
    studies = studies_make(review, relevant=2, irrelevant=8)
    for study in sorted(studies, key=lambda s: not s.truth):
        decide(study, stage, cast["owner"], "include" if study.truth else "exclude")
    RankingSettings.objects.create(stage=stage, stop_after_irrelevant=8)
    page = login_page("owner")
    page.goto(reverse("screening:ranking_progress", args=[review.slug]))
    chart = page.get_by_role(
        "img", name="Recall curve: relevant studies found against studies screened"
    )
    chart.wait_for()
    assert chart.is_visible()
    assert page.locator("polyline.curve-mine").get_attribute("points").count(",") == 11
    assert page.get_by_test_id("stopping-hint").inner_text() == (
        "stop after 8 consecutive irrelevant"
    )
    assert "reached the stopping hint" in page.get_by_test_id("stopping-hint-reached").inner_text()
    # The owner changes the hint in the settings form (htmx swap, no reload).
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Stopping hint: consecutive irrelevant decisions").fill("100")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    page.goto(reverse("screening:ranking_progress", args=[review.slug]))
    assert "stop after 100 consecutive" in page.get_by_test_id("stopping-hint").inner_text()
    assert page.get_by_test_id("stopping-hint-reached").count() == 0


@pytest.mark.browser
def test_screening_dashboard_embeds_recall_chart_and_stopping_hint(review_and_cast, login_page):
    """The dashboard loads the progress panel by htmx: chart and hint appear there."""
    review, cast = review_and_cast
    stage = review.stages.get(is_entry=True)
    studies = studies_make(review, relevant=2, irrelevant=8)
    for study in sorted(studies, key=lambda s: not s.truth):
        decide(study, stage, cast["owner"], "include" if study.truth else "exclude")
    RankingSettings.objects.create(stage=stage, stop_after_irrelevant=8)
    page = login_page("owner")
    page.goto(reverse("screening:dashboard", args=[review.slug]))
    panel = page.get_by_role("region", name="Prioritisation progress")
    chart = panel.get_by_role(
        "img", name="Recall curve: relevant studies found against studies screened"
    )
    chart.wait_for()
    assert panel.get_by_test_id("stopping-hint").inner_text() == (
        "stop after 8 consecutive irrelevant"
    )
    assert "reached the stopping hint" in panel.get_by_test_id("stopping-hint-reached").inner_text()


def _wait_for_snapshot(review, excluded_automatic: int, timeout: float = 60) -> None:
    """Wait (polling the database, not sleeping blindly) for the worker's funnel snapshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = FunnelSnapshot.objects.filter(review=review).order_by("-id").first()
        if latest is not None and latest.data["excluded_automatic"] == excluded_automatic:
            return
        time.sleep(0.2)
    pytest.fail(f"no funnel snapshot with excluded_automatic = {excluded_automatic}")


def _automation_box(page) -> str:
    text = page.locator(".prisma svg").text_content()
    return " ".join(text.split())


@pytest.mark.worker
def test_owner_stops_the_stage_on_the_rule_and_undoes_it_in_the_browser(
    celery_worker, review_and_cast, login_page, settings
):
    settings.FUNNEL_DEBOUNCE_SECONDS = 0
    review, cast = review_and_cast
    stage, remaining = screened_until_met(review, cast["reviewer"])
    page = login_page("owner")
    page.goto(reverse("screening:dashboard", args=[review.slug]))
    panel = page.get_by_role("region", name="Prioritisation progress")
    expect(panel.get_by_test_id("stop-criterion")).to_contain_text("met")
    expect(panel.get_by_test_id("stop-screened")).to_have_text("240 of 340")
    expect(panel.get_by_test_id("stop-relevant")).to_have_text("40")
    expect(panel.get_by_test_id("stop-p-value")).to_have_text("0.0363")
    expect(panel.get_by_test_id("stop-recall")).to_contain_text(" to 1)")
    page.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_test_id("stop-stage").click()
    expect(panel.get_by_test_id("stop-in-force")).to_contain_text("100 unscreened studies")
    # The database holds the stop and the excluded studies.
    stop = StageStop.objects.get(stage=stage, undone_at__isnull=True)
    assert stop.excluded == 100 and stop.stopped_by == cast["owner"]
    assert set(Study.objects.filter(outcome="excluded_automatic").values_list("pk", flat=True)) == {
        s.pk for s in remaining
    }
    # The worker recomputes the funnel; the reports page shows the automation box.
    _wait_for_snapshot(review, 100)
    page.goto(reverse("screening:reports_home", args=[review.slug]))
    assert "automation tools (n = 100)" in _automation_box(page)
    expect(page.get_by_test_id("stopping-methods-sentence")).to_contain_text(
        "The remaining 100 records were not screened"
    )
    # Undo, then reload: the stop is gone, the studies are back, the funnel shows 0 again.
    page.goto(reverse("screening:dashboard", args=[review.slug]))
    panel.get_by_test_id("stop-undo").click()
    expect(panel.get_by_test_id("stop-stage")).to_be_visible()
    page.reload()
    expect(panel.get_by_test_id("stop-criterion")).to_contain_text("met")
    expect(panel.get_by_test_id("stop-in-force")).to_have_count(0)
    assert not Study.objects.filter(outcome="excluded_automatic").exists()
    assert StageStop.objects.get(pk=stop.pk).undone_by == cast["owner"]
    _wait_for_snapshot(review, 0)
    page.goto(reverse("screening:reports_home", args=[review.slug]))
    assert "automation tools (n = 0)" in _automation_box(page)
    expect(page.get_by_test_id("stopping-methods-sentence")).to_have_count(0)


def test_stopping_figures_update_live_while_the_team_screens(review_and_cast, login_page):
    """The panel's stopping figures poll: a decision recorded elsewhere shows without a reload."""
    review, cast = review_and_cast
    stage, remaining = screened_until_met(review, cast["reviewer"])
    page = login_page("owner")
    page.goto(reverse("screening:dashboard", args=[review.slug]))
    panel = page.get_by_role("region", name="Prioritisation progress")
    expect(panel.get_by_test_id("stop-screened")).to_have_text("240 of 340")
    expect(panel.get_by_test_id("stop-stage")).to_be_visible()
    # Another reviewer includes a study the ranking had left behind: the evidence weakens.
    decide(remaining[1], stage, cast["reviewer2"], "include")
    resolve(remaining[1], stage, "include")
    expect(panel.get_by_test_id("stop-screened")).to_have_text("241 of 340", timeout=45_000)
    expect(panel.get_by_test_id("stop-relevant")).to_have_text("41")
    expect(panel.get_by_test_id("stop-criterion")).to_have_text("not met: keep screening")
    expect(panel.get_by_test_id("stop-stage")).to_have_count(0)
