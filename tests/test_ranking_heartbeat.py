"""A long retrain is judged lost by its last sign of life, not by when it was queued.

A million-study retrain runs for minutes (docs/benchmarks.md, "Ranking retrain at one million
studies"); measured from its queueing it was taken for a lost run after STALE_AFTER, and the
next decision queued another behind it.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from screening.models import Decision, RankingRun
from screening.services import ranking as ranking_service

from .ranking_helpers import decide, resolve, studies_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage(review):
    return review.stages.get(is_entry=True)


@pytest.fixture
def labelled(review, cast, stage):
    studies = studies_make(review, relevant=3, irrelevant=12)
    relevant = [s for s in studies if s.truth]
    irrelevant = [s for s in studies if not s.truth]
    for study in relevant[:2] + irrelevant[:4]:
        verdict = "include" if study.truth else "exclude"
        decide(study, stage, cast["reviewer"], verdict)
        resolve(study, stage, verdict)
    return studies


def _active(review, stage, *, status, queued_ago, started_ago=None, beat_ago=None):
    now = timezone.now()
    run = RankingRun.objects.create(review=review, stage=stage, status=status)
    RankingRun.objects.filter(pk=run.pk).update(
        created_at=now - queued_ago,
        started_at=None if started_ago is None else now - started_ago,
        heartbeat_at=None if beat_ago is None else now - beat_ago,
    )
    return run


def _schedule(review, stage, force=True):
    return ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=force)


def _every(stage, decisions):
    settings_row = ranking_service.ranking_settings_for(stage=stage)
    settings_row.retrain_every = decisions
    settings_row.save()


def _still_the_only_run(run, review):
    run.refresh_from_db()
    assert run.status == RankingRun.Status.RUNNING
    assert RankingRun.objects.filter(review=review).count() == 1


def test_a_running_retrain_that_beats_is_not_taken_for_a_lost_one(review, stage, labelled):
    running = _active(
        review,
        stage,
        status=RankingRun.Status.RUNNING,
        queued_ago=timedelta(minutes=25),
        started_ago=timedelta(minutes=24),
        beat_ago=timedelta(minutes=1),
    )

    assert _schedule(review, stage) is None

    _still_the_only_run(running, review)


@pytest.mark.parametrize("force", [True, False], ids=["forced", "due"])
@pytest.mark.parametrize(
    "status, started_ago, beat_ago",
    [
        (RankingRun.Status.RUNNING, timedelta(minutes=24), timedelta(minutes=11)),
        (RankingRun.Status.RUNNING, timedelta(minutes=11), None),
        (RankingRun.Status.PENDING, None, None),
    ],
    ids=["silent-since-its-last-beat", "silent-since-its-start", "never-started"],
)
def test_a_silent_or_never_started_run_is_abandoned_and_replaced(
    review, stage, labelled, status, started_ago, beat_ago, force
):
    _every(stage, 5)  # due without force too: the six labelled decisions came after the run
    lost = _active(
        review,
        stage,
        status=status,
        queued_ago=timedelta(minutes=25),
        started_ago=started_ago,
        beat_ago=beat_ago,
    )

    replacement = _schedule(review, stage, force=force)

    lost.refresh_from_db()
    assert lost.status == RankingRun.Status.FAILED
    assert lost.error == "Abandoned: no worker finished it in time."
    assert replacement is not None
    stored = RankingRun.objects.get(pk=replacement.pk)
    assert stored.status == RankingRun.Status.PENDING
    assert stored.decisions_seen == Decision.objects.filter(stage=stage).count() == 6


def test_a_due_check_beside_a_live_retrain_asks_one_statement_and_queues_nothing(
    review, stage, labelled
):
    """K decisions after a million-study retrain was queued, it is still running: every later
    decision's check tried to queue another run, failed on the one-active-run constraint
    (an ERROR in the server's log each time) and took nine more statements to learn it."""
    running = _active(
        review,
        stage,
        status=RankingRun.Status.RUNNING,
        queued_ago=timedelta(minutes=5),
        started_ago=timedelta(minutes=5),
        beat_ago=timedelta(seconds=30),
    )
    _every(stage, 5)  # the six labelled decisions came after the run was queued

    with CaptureQueriesContext(connection) as statements:
        assert ranking_service.ranking_schedule_if_due(review=review, stage=stage) is None

    assert len(statements) == 1, [q["sql"][:80] for q in statements]
    _still_the_only_run(running, review)


def test_a_large_retrain_beats_while_it_scores(review, stage, labelled, monkeypatch):
    monkeypatch.setattr(ranking_service.ranking_domain, "LARGE_CORPUS", 10)
    monkeypatch.setattr(ranking_service, "SCORE_CHUNK", 4)
    run = _schedule(review, stage)

    done = ranking_service.ranking_run_execute(run_id=run.pk)

    assert done.status == RankingRun.Status.DONE, done.error
    stored = RankingRun.objects.get(pk=run.pk)
    assert stored.started_at <= stored.heartbeat_at <= stored.finished_at
