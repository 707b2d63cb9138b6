"""A training is sent like every other task: through `task_enqueue`, so a broker outage is
logged and answered instead of failing the request after its transaction committed."""

import logging

from celery import Celery
from django.urls import reverse

from screening.models import RankingRun

from .ranking_helpers import decide, studies_make


def test_retrain_while_the_broker_is_down_keeps_the_run_and_answers(
    review, cast, client_for, htmx_headers, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    stage = review.stages.get(is_entry=True)
    for study in studies_make(review, relevant=2, irrelevant=3):
        decide(study, stage, cast["reviewer"], "include" if study.truth else "exclude")
    # The producer talks to a closed port (a worker, if any, keeps the real broker).
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(
        "screening.services.queue.current_app", Celery("broker-down", set_as_current=False)
    )
    client = client_for("owner")
    with caplog.at_level(logging.WARNING, logger="screening.services.queue"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("screening:ranking_retrain", args=[review.slug]),
                {"stage": "title"},
                **htmx_headers,
            )
    assert response.status_code == 200 and "Training queued" in response.content.decode()
    assert "screening.ranking_train" in caplog.text and "not queued" in caplog.text
    run = RankingRun.objects.get()
    assert run.status == RankingRun.Status.PENDING and run.stage_id == stage.pk


def test_a_task_is_sent_without_asking_for_its_result(monkeypatch):
    """No caller reads a task's result; a send that asked for one subscribed the sending web
    process to the task's result channel (one more Redis round trip per send)."""
    from celery.signals import before_task_publish

    from screening.services.queue import task_enqueue

    monkeypatch.setattr(
        "screening.services.queue.current_app",
        Celery("in-memory", broker="memory://", backend="cache+memory://", set_as_current=False),
    )
    sent = []

    def capture(sender=None, headers=None, **_kwargs):
        sent.append((sender, headers["ignore_result"]))

    before_task_publish.connect(capture)
    try:
        assert task_enqueue("screening.ranking_train", kwargs={"run_id": 1}) is True
    finally:
        before_task_publish.disconnect(capture)
    assert sent == [("screening.ranking_train", True)]
