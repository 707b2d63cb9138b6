"""The funnel through a real Celery worker: debounced scheduling gives one fresh snapshot."""

import time

import pytest
from django.db import transaction

from screening.models import FunnelSchedule, FunnelSnapshot
from screening.services.funnel import funnel_schedule
from screening.services.queue import task_enqueue

from .factories import review_with_cast
from .reports_helpers import assert_seed_funnel, build_selection


@pytest.mark.worker
def test_bursts_of_changes_lead_to_one_snapshot_computed_by_the_worker(celery_worker, monkeypatch):
    from screening.services import funnel as funnel_service

    review, cast = review_with_cast(slug="worker-review")
    build_selection(review, [cast["reviewer"]])
    sent = []

    def counting_enqueue(name, **kwargs):
        sent.append(name)
        return task_enqueue(name, **kwargs)

    monkeypatch.setattr(funnel_service, "task_enqueue", counting_enqueue)
    # A burst of changes (imports, merges, resolutions) in separate transactions.
    for _ in range(4):
        with transaction.atomic():
            funnel_schedule(review_id=review.pk, countdown=1)
    assert sent == ["screening.funnel_refresh"]  # one task for the burst: one snapshot
    deadline = time.monotonic() + 30
    while not FunnelSchedule.objects.filter(review=review, pending_since=None).exists() or (
        not FunnelSnapshot.objects.filter(review=review).exists()
    ):
        assert time.monotonic() < deadline, "the worker did not compute the funnel"
        time.sleep(0.2)
    snapshots = list(FunnelSnapshot.objects.filter(review=review))
    assert len(snapshots) == 1
    assert_seed_funnel(snapshots[0].data)
    assert FunnelSchedule.objects.get(review=review).pending_since is None
