"""The ranking task through a real Celery worker, and the progress panel in a browser."""

import time

import pytest
from django.urls import reverse

from screening.models import RankingRun, RankingSettings, Study
from screening.services.ranking import ranking_schedule_if_due

from .ranking_helpers import decide, studies_make


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
    assert not Study.objects.filter(review=review, priority__isnull=True).exists()
    waiting = Study.objects.filter(review=review).exclude(pk__in=[s.pk for s in labelled])
    truth = {s.pk: s.truth for s in studies}
    top4 = waiting.order_by("-priority", "pk")[:4]
    assert all(truth[s.pk] for s in top4)  # the four other on-topic studies come first


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
