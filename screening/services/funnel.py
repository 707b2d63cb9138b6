"""The funnel snapshot: computed by a worker, recomputed (debounced) after every change.

Imports, merges and resolutions call `funnel_schedule(review_id=...)`; the reports page's
"recompute" button calls `funnel_request`. Both only enqueue: the computation never runs inside
a web request.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..models import FunnelSchedule, FunnelSnapshot, Review
from ..selectors.reports import funnel_live
from .audit import audit_event_record
from .queue import task_enqueue

TASK_NAME = "screening.funnel_refresh"
# A queued task older than this is presumed lost (broker flushed, worker killed before ack)
# and a new one is sent; duplicates only cost one extra snapshot.
STALE_PENDING = timedelta(minutes=10)


# A change waits for the next computation at least this many times as long as the last one
# took: at a million records one takes ~1.7 s of PostgreSQL (more under load), and with a team
# resolving studies every few seconds the worker recounted it back to back, one of the
# server's two cores busy reading records that no screening decision changes
# (docs/benchmarks.md, "The funnel of a busy review"). A small review (a few ms) keeps the
# plain debounce; the "recompute" button does not wait.
FUNNEL_BUSY_FACTOR = 10
FUNNEL_BUSY_MAX_SECONDS = 60  # however long the last one took, a change waits no longer


def _debounce_seconds() -> float:
    return float(getattr(settings, "FUNNEL_DEBOUNCE_SECONDS", 5))


def funnel_compute(*, review: Review) -> FunnelSnapshot:
    """Count everything and store the funnel as a new snapshot.

    On PostgreSQL the counts are read in one REPEATABLE READ transaction, so a snapshot never
    mixes states from before and after a concurrent decision.
    """
    isolate = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if isolate:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        data = funnel_live(review=review)
        return FunnelSnapshot.objects.create(review=review, data=data)


def _enqueue(review_id: int, *, countdown: float, debounced: bool) -> None:
    """Mark the review as wanting a fresh funnel; send a task unless one is already queued
    (`debounced`: no sooner than FUNNEL_BUSY_FACTOR times the last computation's duration)."""
    now = timezone.now()
    with transaction.atomic():
        schedule, created = FunnelSchedule.objects.select_for_update().get_or_create(
            review_id=review_id, defaults={"requested_at": now, "pending_since": now}
        )
        if debounced:
            busy = min(FUNNEL_BUSY_FACTOR * schedule.compute_seconds, FUNNEL_BUSY_MAX_SECONDS)
            countdown = max(countdown, busy)
        send = created
        if not created:
            stale = schedule.pending_since and schedule.pending_since < now - STALE_PENDING
            send = schedule.pending_since is None or bool(stale)
            schedule.requested_at = now
            if send:
                schedule.pending_since = now
            schedule.save(update_fields=["requested_at", "pending_since"])
    if send:
        _send(review_id, countdown=countdown)


def _send(review_id: int, *, countdown: float) -> bool:
    """Send the task marked pending; on a broker outage clear the mark and answer False.

    The change that asked is already committed and must not fail for a report; its
    `requested_at` keeps the request, which the next change, the button or `funnel_sweep`
    sends.
    """
    if task_enqueue(TASK_NAME, kwargs={"review_id": review_id}, countdown=countdown):
        return True
    FunnelSchedule.objects.filter(review_id=review_id).update(pending_since=None)
    return False


def funnel_sweep() -> int:
    """Send a recomputation for every review whose request was never sent (broker down).

    A request waits when it is newer than the review's latest snapshot and no task is pending;
    requests younger than the debounce delay are left to the task their change scheduled.
    """
    settled_before = timezone.now() - timedelta(seconds=_debounce_seconds())
    waiting = (
        FunnelSchedule.objects.filter(pending_since__isnull=True, requested_at__lt=settled_before)
        .annotate(latest=Max("review__funnel_snapshots__computed_at"))
        .filter(Q(latest__isnull=True) | Q(latest__lt=models.F("requested_at")))
        .values_list("review_id", flat=True)
    )
    sent = 0
    for review_id in waiting:
        claimed = FunnelSchedule.objects.filter(
            review_id=review_id, pending_since__isnull=True
        ).update(pending_since=timezone.now())
        if not claimed:
            continue  # a change sent one meanwhile
        if not _send(review_id, countdown=0):
            break  # the broker is still down: the next sweep tries again
        sent += 1
    return sent


def funnel_schedule(*, review_id: int, countdown: float | None = None) -> None:
    """Ask for a recomputation once the current transaction commits (debounced).

    Many calls within the debounce window lead to one task: the first queues it with a
    countdown, the later ones only move `requested_at`, which the queued task covers because it
    reads the data after they committed. Without an explicit `countdown` a review whose last
    computation took long waits longer (FUNNEL_BUSY_FACTOR).
    """
    delay = _debounce_seconds() if countdown is None else countdown
    transaction.on_commit(lambda: _enqueue(review_id, countdown=delay, debounced=countdown is None))


@transaction.atomic
def funnel_request(*, review: Review, user: User) -> None:
    """The "recompute" button: audited, enqueued at once (no debounce)."""
    audit_event_record(review=review, actor=user, action="funnel.request", obj=review)
    # Marked now, not on commit, so the answer to this request already shows "computing".
    FunnelSchedule.objects.update_or_create(
        review=review, defaults={"requested_at": timezone.now()}
    )
    funnel_schedule(review_id=review.pk, countdown=0)


def funnel_refresh(*, review_id: int) -> FunnelSnapshot | None:
    """What the task runs: clear the pending mark, then compute (None if the review is gone).

    Clearing first means a change committed while this runs schedules another task rather than
    being lost.
    """
    FunnelSchedule.objects.filter(review_id=review_id).update(pending_since=None)
    review = Review.objects.filter(pk=review_id).first()
    if review is None:
        return None
    started = time.perf_counter()
    snapshot = funnel_compute(review=review)
    FunnelSchedule.objects.filter(review_id=review_id).update(
        compute_seconds=round(time.perf_counter() - started, 4)
    )
    return snapshot
