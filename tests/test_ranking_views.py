"""Ranking views: the progress fragment/page and the owner's settings form; blind mode."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from screening.models import AuditEvent, RankingSettings, Stage

from .ranking_helpers import decide, resolve, studies_make


@pytest.fixture
def stage(review):
    return review.stages.get(is_entry=True)


def progress_url(review, stage_key=None):
    url = reverse("screening:ranking_progress", args=[review.slug])
    return f"{url}?stage={stage_key}" if stage_key else url


def settings_url(review):
    return reverse("screening:ranking_settings", args=[review.slug])


# --- progress -----------------------------------------------------------------------------


def test_progress_page_shows_chart_streaks_and_hint(review, cast, stage, client_for):
    studies = studies_make(review, relevant=2, irrelevant=6)
    ordered = sorted(studies, key=lambda s: not s.truth)  # the includes first, then excludes
    for study in ordered:
        decide(study, stage, cast["reviewer"], "include" if study.truth else "exclude")
    RankingSettings.objects.create(stage=stage, stop_after_irrelevant=5)
    response = client_for("reviewer").get(progress_url(review))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'data-testid="recall-chart"' in html
    assert "<polyline" in html
    assert re.search(r'data-testid="streak-mine">\s*6<', html)
    assert "stop after 5 consecutive irrelevant" in html
    assert 'data-testid="stopping-hint-reached"' in html
    assert "You: 2 / 8" in html


def test_progress_fragment_for_htmx(review, stage, client_for, htmx_headers):
    response = client_for("viewer").get(progress_url(review, "abstract"), **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="ranking-progress"' in html
    assert "Abstract" in html
    assert "not yet (needs one include and one exclude)" in html


def test_progress_anonymous_outsider_method_and_bad_stage(review, client, client_for):
    response = client.get(progress_url(review))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client_for("outsider").get(progress_url(review)).status_code == 404
    assert client_for("owner").post(progress_url(review)).status_code == 405
    response = client_for("owner").get(progress_url(review, "no-such-stage"))
    assert response.status_code == 400
    assert "no stage" in response.content.decode()


def test_progress_polls_only_while_a_training_is_active(review, stage, client_for):
    from screening.models import RankingRun

    client = client_for("owner")
    assert 'hx-trigger="every 5s"' not in client.get(progress_url(review)).content.decode()
    RankingRun.objects.create(review=review, stage=stage)
    html = client.get(progress_url(review)).content.decode()
    assert 'hx-trigger="every 5s"' in html and "training now" in html


def test_blind_progress_does_not_leak_a_colleagues_decision(
    review, cast, stage, client_for, htmx_headers
):
    studies = studies_make(review, relevant=3, irrelevant=5)
    target = next(s for s in studies if s.truth)
    target.title = "Distinctive <b>title</b> of the target study"
    target.save()
    client = client_for("reviewer")

    def panel():
        return client.get(progress_url(review), **htmx_headers).content.decode()

    before = panel()
    decide(target, stage, cast["reviewer2"], "include")
    decide(next(s for s in studies if not s.truth), stage, cast["reviewer2"], "exclude")
    after = panel()
    # Nothing in the reviewer's panel moves while reviewer2's decisions are unresolved...
    assert before == after
    assert "Distinctive" not in after
    # ...and the settled outcome shows once resolved (resolutions are visible to all).
    resolve(target, stage, "include")
    resolved = panel()
    assert "Team: 1 relevant / 1 screened" in resolved
    assert "Distinctive" not in resolved


def test_unblinded_progress_counts_every_decision(review, cast, stage, client_for):
    review.blind_mode = False
    review.save()
    studies = studies_make(review, relevant=1, irrelevant=2)
    for study in studies:
        decide(study, stage, cast["reviewer2"], "include" if study.truth else "exclude")
    html = client_for("reviewer").get(progress_url(review)).content.decode()
    assert "Team: 1 relevant / 3 screened" in html
    assert "Team figures count every decision" in html


# --- settings -----------------------------------------------------------------------------


def post_settings(client, review, **overrides):
    data = {
        "stage": "title",
        "queue_order": "random",
        "retrain_every": "25",
        "stop_after_irrelevant": "150",
        "recall_target": "0.9",
        "confidence": "0.99",
        "version": "1",
    }
    data.update(overrides)
    return client.post(settings_url(review), data)


def test_settings_page_and_save(review, stage, client_for):
    client = client_for("owner")
    response = client.get(settings_url(review))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'name="retrain_every"' in html and 'value="10"' in html
    response = post_settings(client, review)
    assert response.status_code == 302
    stage.refresh_from_db()
    assert stage.queue_order == Stage.QueueOrder.RANDOM
    row = RankingSettings.objects.get(stage=stage)
    assert (row.retrain_every, row.stop_after_irrelevant) == (25, 150)
    assert (row.recall_target, row.confidence, row.version) == (0.9, 0.99, 2)
    assert AuditEvent.objects.filter(action="ranking.settings").count() == 1
    # After a reload the form shows what was stored, with the new version.
    html = client.get(settings_url(review)).content.decode()
    assert 'name="recall_target" value="0.9"' in html and 'name="confidence" value="0.99"' in html
    assert 'name="version" value="2"' in html


def test_settings_fragment_for_htmx(review, stage, client_for, htmx_headers):
    client = client_for("owner")
    response = client.post(
        settings_url(review),
        {
            "stage": "abstract",
            "queue_order": "random",
            "retrain_every": "5",
            "stop_after_irrelevant": "0",
            "recall_target": "0.95",
            "confidence": "0.95",
            "version": "1",
        },
        **htmx_headers,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "Saved." in html
    assert review.stages.get(key="abstract").queue_order == "random"
    assert stage.queue_order == "prioritised"


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"retrain_every": "0"}, "greater than or equal to 1"),
        ({"retrain_every": "many"}, "Enter a whole number"),
        ({"queue_order": "alphabetical"}, "Select a valid choice"),
        ({"stop_after_irrelevant": "-3"}, "greater than or equal to 0"),
        ({"recall_target": "1"}, "less than or equal to 0.999"),
        ({"confidence": "0.2"}, "greater than or equal to 0.5"),
    ],
)
def test_settings_bad_input_saves_nothing(review, stage, client_for, overrides, message):
    response = post_settings(client_for("owner"), review, **overrides)
    assert response.status_code == 400
    assert message in response.content.decode()
    stage.refresh_from_db()
    assert stage.queue_order == "prioritised"
    assert not RankingSettings.objects.filter(stage=stage, retrain_every=25).exists()
    assert not AuditEvent.objects.filter(action="ranking.settings").exists()


def test_stale_settings_are_refused_then_applied_on_request(review, stage, client_for, cast):
    first = Client()
    first.force_login(cast["owner"])
    second = Client()
    second.force_login(cast["owner"])
    first.get(settings_url(review))  # both tabs show version 1
    assert post_settings(first, review, retrain_every="30").status_code == 302
    stale = post_settings(second, review, retrain_every="40")
    assert stale.status_code == 409
    html = stale.content.decode()
    assert "changed since you opened it" in html and "retrain_every 30" in html
    row = RankingSettings.objects.get(stage=stage)
    assert (row.retrain_every, row.version) == (30, 2)
    forced = post_settings(second, review, retrain_every="40", version="2", force="1")
    assert forced.status_code == 302
    row.refresh_from_db()
    assert (row.retrain_every, row.version) == (40, 3)
    event = AuditEvent.objects.get(action="ranking.settings.overwrite")
    assert event.before["retrain_every"] == 30 and event.before["version"] == 2


def test_settings_bad_stage(review, client_for):
    response = post_settings(client_for("owner"), review, stage="nope")
    assert response.status_code == 400
    assert "no stage" in response.content.decode()


def test_settings_access(review, client, client_for):
    response = client.get(settings_url(review))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client_for("outsider").get(settings_url(review)).status_code == 404
    assert client_for("viewer").get(settings_url(review)).status_code == 403
    assert post_settings(client_for("viewer"), review).status_code == 403
    assert post_settings(client_for("reviewer"), review).status_code == 403
    assert client_for("owner").put(settings_url(review)).status_code == 405
    assert review.stages.get(key="title").queue_order == "prioritised"


# --- retrain now --------------------------------------------------------------------------


def retrain_url(review):
    return reverse("screening:ranking_retrain", args=[review.slug])


def test_retrain_now_queues_a_run_and_answers_with_the_panel(
    review, cast, stage, client_for, htmx_headers, django_capture_on_commit_callbacks
):
    from screening.models import RankingRun

    studies = studies_make(review, relevant=2, irrelevant=4)
    client = client_for("owner")
    response = client.post(retrain_url(review), {"stage": "title"}, **htmx_headers)
    assert "needs at least one relevant and one irrelevant" in response.content.decode()
    assert not RankingRun.objects.exists()
    for study in studies:
        decide(study, stage, cast["reviewer"], "include" if study.truth else "exclude")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(retrain_url(review), {"stage": "title"}, **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Training queued" in html and 'hx-trigger="every 5s"' in html
    assert len(callbacks) == 1
    assert RankingRun.objects.filter(status="pending").count() == 1
    assert AuditEvent.objects.filter(action="ranking.retrain").count() == 1
    response = client.post(retrain_url(review), {"stage": "title"})
    assert response.status_code == 302  # page flow: back to the progress page with a message
    assert RankingRun.objects.count() == 1  # one active run per review


def test_retrain_now_access_and_bad_input(review, client, client_for):
    assert client.post(retrain_url(review), {"stage": "title"}).status_code == 302
    assert client_for("outsider").post(retrain_url(review), {"stage": "title"}).status_code == 404
    assert client_for("reviewer").post(retrain_url(review), {"stage": "title"}).status_code == 403
    assert client_for("viewer").post(retrain_url(review), {"stage": "title"}).status_code == 403
    assert client_for("owner").get(retrain_url(review)).status_code == 405
    response = client_for("owner").post(retrain_url(review), {"stage": "../x"})
    assert response.status_code == 400 and "Enter a valid" in response.content.decode()


@pytest.mark.parametrize(
    "maximum,ticks",
    [(0, [0]), (3, [0, 1, 2, 3]), (178, [0, 44, 88, 132, 178]), (100, [0, 25, 50, 75, 100])],
)
def test_chart_ticks_never_crowd_the_maximum(maximum, ticks):
    from screening.selectors.ranking import _ticks

    assert _ticks(maximum) == ticks
