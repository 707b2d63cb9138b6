"""The studies page's search documents (PostgreSQL): deferred by large deduplication runs and
filled by the worker.

A study's search document (its stemmed title, DOI, authors and abstract; migration 0023) is
set by the database as the study is written. Stemming an abstract costs about 0.3 ms: more
than half of what writing a new study costs a deduplication run. A run that creates many
studies (`settings.SEARCH_DEFER_FROM` or more in one pass) defers their documents
(`search_defer`): they stay NULL, the run ends sooner, and `search_documents_fill` (the
worker's `screening.search_documents_fill` task, sent when the run commits) fills them in
short transactions. Meanwhile the studies page finds them by DOI only, and says how many are
not searchable yet (`screening.selectors.study_list.studies_not_searchable`).

Nothing else defers: a study created or edited any other way is searchable at once.
"""

from django.conf import settings
from django.db import connection, transaction

from .locks import advisory_lock, advisory_lock_free
from .queue import task_enqueue

TASK_NAME = "screening.search_documents_fill"
# The first key of the fill's advisory lock: "srch" in ASCII.
ADVISORY_LOCK_SPACE = 0x7372_6368
# Studies a fill transaction locks and writes: a decision on one of them waits at most this
# long (about 0.4 ms a study), and a study a decision holds is skipped, not waited for.
STUDIES_PER_TRANSACTION = 250
# Studies a task fills before it sends itself again (to the back of the heavy queue), so that
# a ranking retrain sent meanwhile does not wait for a million documents.
STUDIES_PER_TASK = 20_000

# The next chunk after the last one filled (`id > %s`), not the first NULLs left: with the
# statistics of a run's end (every new document NULL) PostgreSQL walks the primary key, and
# from the start it would pass every study filled so far again, chunk after chunk (a fill of
# 800,000 slowed from 2,600 to 400 studies a second).
FILL_SQL = """
WITH chunk AS (
    SELECT id FROM screening_study
    WHERE review_id = %s AND search_document IS NULL AND id > %s
    ORDER BY id LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE screening_study AS study
SET search_document = screening_study_search_document(
    study.title, study.doi, study.authors, study.abstract)
FROM chunk WHERE study.id = chunk.id
RETURNING study.id
"""


def search_defer() -> None:
    """Leave the search documents of the studies this transaction inserts NULL, for the
    worker to fill. Only inside a transaction (the setting ends with it)."""
    if connection.vendor != "postgresql":
        return
    assert connection.in_atomic_block, "search_defer() outside a transaction has no effect"
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('slrweb.search_deferred', 'on', true)")


def search_documents_enqueue(*, review_id: int, after: int = 0) -> bool:
    """Send a fill now; False when the broker is unreachable (`search_sweep` sends it later:
    the NULL documents are the durable mark of the work pending, after the sweep's delay
    DEDUP_SWEEP_AFTER_SECONDS)."""
    return task_enqueue(TASK_NAME, kwargs={"review_id": review_id, "after": after})


def search_documents_schedule(*, review_id: int) -> None:
    """Send a fill once the current transaction commits."""
    transaction.on_commit(lambda: search_documents_enqueue(review_id=review_id))


def search_documents_fill(*, review_id: int, after: int = 0, limit: int = STUDIES_PER_TASK) -> int:
    """Fill up to `limit` of the review's deferred search documents of studies numbered above
    `after`, STUDIES_PER_TRANSACTION at a time, in id order; how many were filled. Sends the
    task again, from where it stopped, when `limit` was reached. One fill per
    review at a time (a second one returns 0 at once); studies locked by another transaction
    are skipped, for a later fill (the sweep's) to take."""
    if connection.vendor != "postgresql":
        return 0
    filled = 0
    with advisory_lock(ADVISORY_LOCK_SPACE, review_id, wait=False) as held:
        if not held:
            return 0
        while filled < limit:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    FILL_SQL, [review_id, after, min(STUDIES_PER_TRANSACTION, limit - filled)]
                )
                written = [pk for (pk,) in cursor.fetchall()]
            if not written:
                return filled
            filled += len(written)
            after = max(written)
    # The share is reached: the rest, if any, in the next task.
    search_documents_enqueue(review_id=review_id, after=after)
    return filled


def search_sweep() -> int:
    """Send a fill for every review whose deferred documents have waited
    DEDUP_SWEEP_AFTER_SECONDS with no fill running (its task was lost with its worker, or
    never sent); how many were sent."""
    sent = 0
    for review_id in _reviews_waiting():
        if not advisory_lock_free(ADVISORY_LOCK_SPACE, review_id):
            continue
        if not search_documents_enqueue(review_id=review_id):
            break  # the broker is still down: the next sweep tries again
        sent += 1
    return sent


def _reviews_waiting() -> list[int]:
    """The reviews with a document deferred DEDUP_SWEEP_AFTER_SECONDS ago or more, probing
    the partial index once per review."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT review.id FROM screening_review AS review WHERE EXISTS ("
            " SELECT 1 FROM screening_study AS study"
            " WHERE study.review_id = review.id AND study.search_document IS NULL"
            " AND study.created_at < now() - make_interval(secs => %s))"
            " ORDER BY review.id",
            [settings.DEDUP_SWEEP_AFTER_SECONDS],
        )
        return [pk for (pk,) in cursor.fetchall()]
