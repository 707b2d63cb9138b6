"""A deduplication run asked for while the broker is down is answered, kept and sent later."""

from datetime import timedelta

from celery import Celery
from django.urls import reverse
from django.utils import timezone

from screening.models import ImportBatch, Record
from screening.services.dedup import dedup_sweep
from screening.services.queue import BROKER_DOWN_MESSAGE

from .dedup_helpers import APHASIA, STROKE, TRIAL, add_batch, paper
from .factories import review_with_cast
from .waiting import wait_until


def _records_waiting(review, *, minutes_ago: int = 5) -> list[Record]:
    records = add_batch(review, "Scopus", [paper(TRIAL), paper(TRIAL), paper(STROKE)])
    Record.objects.filter(pk__in=[r.pk for r in records]).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return records


def _broker_unreachable(monkeypatch):
    # This request's producer talks to a closed port (a worker, if any, keeps the real broker).
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(
        "screening.services.queue.current_app", Celery("broker-down", set_as_current=False)
    )


def test_dedup_button_while_the_broker_is_down_answers_with_the_reason_not_500(
    db, client, monkeypatch
):
    review, cast = review_with_cast()
    _records_waiting(review)
    client.force_login(cast["owner"])
    _broker_unreachable(monkeypatch)
    response = client.post(
        reverse("screening:dedup_run", kwargs={"slug": review.slug}), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert BROKER_DOWN_MESSAGE in response.content.decode()
    assert Record.objects.filter(review=review, study__isnull=True).count() == 3
    monkeypatch.undo()
    page = client.get(reverse("screening:dedup_queue", kwargs={"slug": review.slug}))
    assert "3 imported records waiting for deduplication" in page.content.decode()


def test_the_sweep_leaves_records_whose_import_is_still_going(db):
    review, _cast = review_with_cast()
    records = _records_waiting(review)
    ImportBatch.objects.filter(pk=records[0].batch_id).update(status=ImportBatch.Status.RUNNING)
    assert dedup_sweep() == 0


def test_the_sweep_leaves_records_just_imported_to_their_own_run(db, settings):
    settings.DEDUP_SWEEP_AFTER_SECONDS = 60
    review, _cast = review_with_cast()
    _records_waiting(review, minutes_ago=0)
    assert dedup_sweep() == 0


def test_the_sweep_sends_the_run_the_broker_lost_and_the_worker_deduplicates(celery_worker, client):
    review, cast = review_with_cast()
    _records_waiting(review)
    add_batch(review, "IEEE", [paper(APHASIA)])
    Record.objects.filter(review=review).update(created_at=timezone.now() - timedelta(minutes=5))

    assert dedup_sweep() == 1
    wait_until(lambda: not Record.objects.filter(review=review, study__isnull=True).exists())
    studies = set(Record.objects.filter(review=review).values_list("study_id", flat=True))
    assert len(studies) == 3  # the two copies of the trial are one study
    client.force_login(cast["reviewer"])
    page = client.get(reverse("screening:dedup_queue", kwargs={"slug": review.slug}))
    assert "Every imported record belongs to a study" in page.content.decode()
