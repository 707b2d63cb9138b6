"""Deduplication: records into studies, the grey-zone queue, manual merges and their undoing.

`review_deduplicate` is what the Celery task and `manage.py dedup` run. Two runs for one review
take turns on an advisory lock (no row is locked while records are scored); a second run finds
no unassigned record and changes nothing (idempotent).
"""

import gc
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.contrib.auth.models import User
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..domain.dedup import (
    DedupRecord,
    Key,
    NearGroups,
    ScanFeatures,
    ScoredPair,
    display_keywords,
    most_complete,
    scan_features,
)
from ..models import (
    AuditEvent,
    Decision,
    DuplicateCandidate,
    ImportBatch,
    Record,
    Review,
    Stage,
    Study,
    StudyMerge,
)
from ..selectors.dedup import unassigned_count
from .audit import audit_event_record
from .funnel import funnel_schedule
from .locks import advisory_lock, advisory_lock_free
from .queue import task_enqueue
from .ranking import ranking_schedule_if_due
from .study_search import search_defer, search_documents_schedule

STUDY_FIELDS = (
    "title",
    "abstract",
    "authors",
    "year",
    "venue",
    "doi",
    "pmid",
    "url",
    "keywords",
    "publication_type",
)
# What duplicate detection reads of a record (the display fields come from RECORD_FIELDS).
DEDUP_FIELDS = (
    "id",
    "study_id",
    "title",
    "authors",
    "year",
    "venue",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "publication_type",
)
RECORD_FIELDS = (
    "id",
    "study_id",
    "title",
    "abstract",
    "authors",
    "year",
    "venue",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "url",
    "keywords",
    "publication_type",
)
URL_MAX = Study._meta.get_field("url").max_length
SPLIT_REASON = "separated by a reviewer"
LINKS_AUDITED = 5000
TASK_NAME = "screening.review_deduplicate"
STUDIES_PER_TRANSACTION = 2000
RECORDS_PER_TRANSACTION = 5000
STUDIES_PER_JOIN_TRANSACTION = 200
STUDIES_PER_QUERY = 10_000
# Bounds on what one run holds in memory (see review_deduplicate): 1.7 GB at a million
# records (docs/benchmarks.md). Larger passes are fewer: each pass reads every grouped record's
# id and sorts the existing titles again (200,000 and 290,000 made six passes of a million
# records, the last of 69,000, and took 5 % longer).
NEW_PER_PASS = 250_000
RECORDS_PER_PASS = 360_000  # the new records and the existing records near them
# A pass takes up to this many times the records it would, if that leaves none waiting: a pass
# has fixed costs (it reads every grouped record's id, sorts the existing titles, counts), and
# a last pass of 28,000 new records took 21 s of a million-record run.
LAST_PASS_STRETCH = 1.2
# Grouped records' rows read before the features of those not kept yet are read.
EXISTING_PER_READ = 200_000
# A record is assigned only if still unassigned. "COALESCE(study_id, 0) = 0", not "study_id IS
# NULL": statistics from before an import (every record grouped) made PostgreSQL reach the
# record through the study_id index's NULL entries, scanning every new record per UPDATE.
# The record's scan features are stored by the same UPDATE (no second row version).
ASSIGN_SQL = (
    f"UPDATE {connection.ops.quote_name(Record._meta.db_table)} "
    "SET study_id = %s, dedup_features = %s WHERE id = %s AND COALESCE(study_id, 0) = 0"
)
# The same for many records in one statement (PostgreSQL): arrays of records, their studies
# and their features' JSON. The records are also asked for by "id = ANY": joined to the
# unnested arrays alone, the planner may hash the whole record table.
# Its arrays are bound by the server, in binary (`_server_bound_cursor`).
ASSIGN_MANY_SQL = (
    f"UPDATE {connection.ops.quote_name(Record._meta.db_table)} AS r "
    "SET study_id = v.study, dedup_features = v.features::jsonb "
    "FROM unnest(%b::bigint[], %b::bigint[], %b::text[]) AS v(record, study, features) "
    "WHERE r.id = ANY(%b::bigint[]) AND r.id = v.record AND COALESCE(r.study_id, 0) = 0"
)
FEATURES_SQL = (
    f"UPDATE {connection.ops.quote_name(Record._meta.db_table)} "
    "SET dedup_features = %s WHERE id = %s"
)
# A pass whose new records are at least this share of the record table's rows (an import has
# just added them, or the last pass grouped as many) analyses the table first (see
# `_planner_statistics_refresh`).
ANALYZE_SHARE = 0.1
# The first key of the (int, int) advisory locks this app takes: "dedup" in ASCII.
ADVISORY_LOCK_SPACE = 0x6465_6475


def dedup_enqueue(*, review_id: int) -> bool:
    """Send a deduplication run now; False when the broker is unreachable.

    Nothing is lost then: the review's unassigned records are the durable mark of the work
    pending, and `dedup_sweep` sends the run once the broker is back.
    """
    return task_enqueue(TASK_NAME, kwargs={"review_id": review_id})


def dedup_schedule(*, review_id: int) -> None:
    """Enqueue a deduplication run once the current transaction commits."""
    transaction.on_commit(lambda: dedup_enqueue(review_id=review_id))


def dedup_sweep() -> int:
    """Send a run for every review whose records wait for deduplication with none running.

    Records wait when their run was never sent (the broker was down when the import
    finished or the button was pressed) or was lost with its worker. Records still being
    imported, or younger than the sweep delay, are left to the run their import sends.
    """
    settled_before = timezone.now() - timedelta(seconds=settings.DEDUP_SWEEP_AFTER_SECONDS)
    importing = ImportBatch.objects.filter(
        review_id=OuterRef("review_id"),
        status__in=[ImportBatch.Status.PENDING, ImportBatch.Status.RUNNING],
    )
    waiting = (
        Record.objects.filter(study__isnull=True, created_at__lt=settled_before)
        .exclude(Exists(importing))
        .order_by("review_id")
        .values_list("review_id", flat=True)
        .distinct()
    )
    sent = 0
    for review_id in waiting:
        if not _no_run_in_progress(review_id):
            continue
        if not dedup_enqueue(review_id=review_id):
            break  # the broker is still down: the next sweep tries again
        sent += 1
    return sent


def _no_run_in_progress(review_id: int) -> bool:
    """True when no deduplication run holds the review's advisory lock (always on SQLite)."""
    return advisory_lock_free(ADVISORY_LOCK_SPACE, review_id)


def _dedup_record(row: dict[str, Any]) -> DedupRecord:
    return DedupRecord(
        key=row["id"],
        title=row["title"] or "",
        # Duplicate detection reads the first six authors; a record may list hundreds.
        authors=tuple(str(a) for a in (row["authors"] or [])[:6]),
        year=row["year"],
        venue=row["venue"] or "",
        volume=row["volume"] or "",
        issue=row["issue"] or "",
        pages=row["pages"] or "",
        doi=row["doi"] or "",
        pmid=row["pmid"] or "",
        publication_type=row["publication_type"] or "",
        group=row["study_id"],
    )


def _display_fields(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fields = most_complete(rows)
    if URL_MAX is not None and len(fields.get("url") or "") > URL_MAX:
        fields["url"] = ""
    return fields


def _study_is_screened(study: Study, entry: Stage | None, *, decided: bool) -> bool:
    return (
        study.outcome != Study.Outcome.SCREENING
        or (entry is not None and study.current_stage_id != entry.pk)
        or decided
    )


def dedup_counts(*, review: Review) -> dict[str, int]:
    """The contract's counts: merged is records minus studies (the PRISMA duplicates box)."""
    # One scan of the review's records for both counts: at a million 0.4 s, two took 2.6 s.
    records = Record.objects.filter(review=review).aggregate(
        all=models.Count("id"), grouped=models.Count("study_id")
    )
    studies = Study.objects.filter(review=review).count()
    return {
        "records": records["all"],
        "studies": studies,
        "merged": records["grouped"] - studies,
        "candidates": DuplicateCandidate.objects.filter(
            review=review, status=DuplicateCandidate.Status.PENDING
        ).count(),
    }


class _Kept:
    """What a run keeps across its passes: the `ScanFeatures` of the review's grouped records
    by id (the records it has read or grouped), so that a pass reads only the ids and studies
    of the existing records, and reads only those it has not seen.

    A grouped record's features are stored with it (`Record.dedup_features`, written when it
    is grouped), so a run reads them rather than normalising the review's every record again:
    at 400,000 grouped records that normalisation was a quarter of the run of a 100,000-record
    import. A record without them (grouped before they were stored, or by another version of
    the normalisation) is normalised once and its features stored then."""

    def __init__(self) -> None:
        self.features: dict[int, ScanFeatures] = {}
        self.shared: dict[Any, Any] = {}

    def add(self, features: Iterable[ScanFeatures]) -> None:
        for f in features:
            if isinstance(f.key, int):
                self.features[f.key] = f

    def read(self, rows: list[tuple[Any, ...]]) -> None:
        """The features of the grouped records not seen yet (grouped before the run), from
        their rows: (id, study), or (id, study, stored features) when read with them. As
        stored, or normalised and stored now."""
        unread: list[int] = []  # their stored features to read
        unstored: list[int] = []  # none stored: to normalise
        for key, group, *stored in rows:
            if key in self.features:
                continue
            if not stored:
                unread.append(key)
            elif (f := ScanFeatures.from_stored(key, group, stored[0], self.shared)) is not None:
                self.features[key] = f
            else:
                unstored.append(key)
        for start in range(0, len(unread), STUDIES_PER_QUERY):
            stored_rows = (
                Record.objects.filter(pk__in=unread[start : start + STUDIES_PER_QUERY])
                .values_list("id", "study_id", "dedup_features")
                .iterator(chunk_size=5000)
            )
            for key, group, value in stored_rows:
                if (f := ScanFeatures.from_stored(key, group, value, self.shared)) is not None:
                    self.features[key] = f
                else:
                    unstored.append(key)
        for start in range(0, len(unstored), STUDIES_PER_QUERY):
            normalised = scan_features(
                [
                    _dedup_record(row)
                    for row in Record.objects.filter(
                        pk__in=unstored[start : start + STUDIES_PER_QUERY]
                    )
                    .values(*DEDUP_FIELDS)
                    .iterator(chunk_size=5000)
                ],
                self.shared,
            )
            self.add(normalised)
            _features_store(normalised)


def _stored_features(f: ScanFeatures) -> Any:
    """The value of `Record.dedup_features` for these features, as the connection takes it."""
    return Record._meta.get_field("dedup_features").get_db_prep_value(f.stored(), connection)


def _features_store(features: list[ScanFeatures]) -> None:
    """Store the features of grouped records (one pipelined UPDATE each, one transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(FEATURES_SQL, [(_stored_features(f), f.key) for f in features])


def review_deduplicate(*, review: Review) -> dict[str, int]:
    """Group the review's unassigned records into existing or new studies; queue the doubts.

    Only the new records are scored, against the existing studies that share a block with
    them. Existing studies (screened or not) take part as groups: a new record joins one when
    the evidence is strong, and its screening goes on where it was. Pairs a reviewer declared
    different are never merged again.

    Nothing is locked while records are read and scored; the writes are short transactions
    (a chunk of new studies, one existing study at a time), so screening never waits for a
    run. Runs for one review take turns (`_one_run_at_a_time`). A run stopped half-way has
    written whole studies only; the next run groups the records it left.

    Memory stays bounded whatever the review's size: the new records are taken at most
    NEW_PER_PASS at a time (each pass as if they had been imported alone, later passes
    joining the studies of earlier ones), fewer when the last pass found many existing
    records near its new ones, so that a pass scores about RECORDS_PER_PASS records (at a
    million records the near ones grew to 220,000 for 250,000 new); the existing records'
    scan features are kept (a third of a normalised record), and only the identifying fields
    are read until a study is written.
    """
    with _one_run_at_a_time(review.pk), _collector_between_passes() as collect:
        take = NEW_PER_PASS
        kept = _Kept()
        waiting = unassigned_count(review=review)
        while waiting:
            if waiting <= take * LAST_PASS_STRETCH:
                take = max(take, waiting)
            grouped, new_count, near_count, waiting = _deduplicate_pass(review, take, kept, collect)
            collect()
            if not grouped:
                break
            near_per_new = near_count / new_count
            take = max(1, min(NEW_PER_PASS, int(RECORDS_PER_PASS / (1 + near_per_new))))
        return dedup_counts(review=review)


@contextmanager
def _collector_between_passes() -> Iterator[Callable[..., None]]:
    """Python's cyclic garbage collector held off during each pass, run after it (by the
    function given; `freeze=False` within a pass, see `_deduplicate_pass`).

    A pass allocates tens of millions of small objects (features, pairs of them, rows) and
    keeps a million records' scan features across passes; each generational collection the
    allocations triggered walked what the run keeps: a fifth of the Python time of a pass's
    scoring and scan at a million records. Reference counting frees these objects all the
    same (they make no cycles); what cycles a pass makes wait for the collection after it.

    What survives a pass's collection is then frozen (`gc.freeze`): the next collections walk
    only what later passes made, not the features kept since the first (each full collection
    walked them all again, 12 s of a million-record run). Unfrozen when the run is over, unless
    the process had frozen objects of its own before.
    """
    enabled = gc.isenabled()
    freezing = gc.get_freeze_count() == 0

    def collect(*, freeze: bool = True) -> None:
        gc.collect()
        if freeze and freezing:
            gc.freeze()

    gc.disable()
    try:
        yield collect
    finally:
        if freezing:
            gc.unfreeze()
        if enabled:
            gc.enable()


def _deduplicate_pass(
    review: Review, take: int, kept: _Kept, collect: Callable[..., None]
) -> tuple[int, int, int, int]:
    """Deduplicate the next `take` unassigned records: how many were grouped, how many were
    taken, how many existing records were near them, and how many records wait for a pass
    now. `collect`: the run's collection (`_collector_between_passes`)."""
    # The new records are normalised by DEDUP_PROCESSES processes, which share the pass's
    # `DedupRecord`s (~1 KB a record, let go once normalised: the scan and the scoring hold
    # the run's peak); in one process they are streamed from the rows.
    near = NearGroups(
        (
            _dedup_record(row)
            for row in Record.objects.filter(review=review, study__isnull=True)
            .order_by("id")
            .values(*DEDUP_FIELDS)[:take]
            .iterator(chunk_size=5000)
        ),
        processes=settings.DEDUP_PROCESSES,
    )
    if not near.new:
        return 0, 0, 0, 0
    # The `DedupRecord`s are let go now, by a collection: a LaTeX title's conversion
    # (pylatexenc) leaves frames in reference cycles, and a frame in a cycle holds its
    # callers' frames, whose locals held every `DedupRecord` of the pass. Without it they
    # were freed only after the pass, having held their memory through the scan and the
    # scoring, the run's peak (1.2 million objects a pass at a million records).
    collect(freeze=False)
    new_count = len(near.new)
    _planner_statistics_refresh(new_count)
    compared = _records_near(review, near, kept)
    refused = _refused_pairs(review)
    if refused:  # a set of every key only then
        keys = {r.key for r in compared} | {f.key for f in near.new}
        refused = [(a, b) for a, b in refused if a in keys and b in keys]
        del keys
    result = near.deduplicate(
        compared, cannot_link=refused, known=kept.features, processes=settings.DEDUP_PROCESSES
    )
    group_of = {r.key: r.group for r in compared}
    compared_count = len(compared)
    # The new records' scan features: stored with each as it is grouped below and, if more
    # records wait, kept for the next passes' scans (a run's last pass keeps nothing).
    new_features = {f.key: f for f in near.scan_kept(kept.shared)}
    del near, compared

    joined: dict[int, list[int]] = {}
    new_clusters: list[list[int]] = []
    for cluster in result.clusters:
        # The near records are grouped (their study in `group_of`); the others are new.
        fresh = sorted(key for key in cluster if isinstance(key, int) and key not in group_of)
        if not fresh:
            continue
        existing_studies = {study for key in cluster if isinstance(study := group_of.get(key), int)}
        if existing_studies:
            # The domain never joins two existing studies, so there is exactly one.
            joined.setdefault(existing_studies.pop(), []).extend(fresh)
        else:
            new_clusters.append(fresh)

    search_deferred = len(new_clusters) >= settings.SEARCH_DEFER_FROM
    new_studies = _studies_create(
        review=review,
        clusters=new_clusters,
        features=new_features,
        search_deferred=search_deferred,
    )
    screened_joins, vanished = _studies_join(review=review, joined=joined, features=new_features)
    _candidates_create(review=review, candidates=result.candidates)
    with transaction.atomic():
        counts = dedup_counts(review=review)
        _downstream_refresh(review=review, new_studies=new_studies > 0)
        if search_deferred:
            search_documents_schedule(review_id=review.pk)
        if vanished:
            # A study merged away while this run scored: its records wait for the next run.
            dedup_schedule(review_id=review.pk)
        audit_event_record(
            review=review,
            actor=None,
            action="dedup.run",
            object_type="review",
            object_id=review.pk,
            after={
                **counts,
                "new_records": new_count,
                "compared_existing": compared_count,
                "new_studies": new_studies,
                "joined_existing": sum(len(v) for v in joined.values()),
                "joined_screened_studies": screened_joins,
                **_links(result.merges),
            },
        )
    # The records in no study: all records but the grouped ones (merged is grouped - studies).
    waiting = counts["records"] - counts["merged"] - counts["studies"]
    if waiting:
        kept.add(new_features.values())
    grouped = new_studies + sum(len(v) for v in joined.values())
    return grouped, new_count, compared_count, waiting


def _records_near(review: Review, near: NearGroups, kept: _Kept) -> list[DedupRecord]:
    """Every record of the existing studies near a new record (`near.touched`), found by one
    scan of the review's grouped records: their ids and studies are read again (a study may
    have been merged or split meanwhile), EXISTING_PER_READ rows at a time, their blocking
    fields are those the run keeps."""
    # A run's first pass keeps nothing yet: the stored features are read with the ids.
    columns = ("id", "study_id") if kept.features else ("id", "study_id", "dedup_features")
    grouped = (
        Record.objects.filter(review=review, study__isnull=False)
        .order_by("id")
        .values_list(*columns)
    )
    features: dict[int, ScanFeatures] = {}
    rows: list[tuple[Any, ...]] = []

    def read() -> None:
        kept.read(rows)
        for record, study, *_ in rows:
            f = kept.features.get(record)
            if f is not None:  # None: deleted meanwhile
                f.group = study
                features[record] = f

    for row in grouped.iterator(chunk_size=5000):
        rows.append(row)
        if len(rows) >= EXISTING_PER_READ:
            read()
            rows = []
    read()
    # The records no longer grouped (deleted, or taken apart meanwhile) are let go.
    kept.features = features
    # One scan of them all, as one blocking over the review would pair them: scanned in
    # slices, each slice made its own title neighbourhoods, and a pass at a million records
    # asked twice as many pairs.
    near.scan_features(list(features.values()), processes=settings.DEDUP_PROCESSES)
    studies = sorted(key for key in near.touched if isinstance(key, int))
    return [
        _dedup_record(row)
        for start in range(0, len(studies), STUDIES_PER_QUERY)
        for row in Record.objects.filter(study_id__in=studies[start : start + STUDIES_PER_QUERY])
        .order_by("id")
        .values(*DEDUP_FIELDS)
        .iterator(chunk_size=5000)
    ]


def _planner_statistics_refresh(new_count: int) -> None:
    """ANALYZE the record table when a pass is about to change a large share of it.

    A pass reads the grouped records and their studies, and groups the new ones, by plans
    chosen from the table's statistics: after a large import, or a pass that grouped many
    records, they described another table (all ungrouped, or none there at all) until
    autovacuum came by, which it need not do before the run is over. At a million records
    the run took 1,046 s so, 744 s after an ANALYZE of 0.6 s (a sample of the table, whatever
    its size). The estimate of the table's rows costs nothing; SQLite has no such planner."""
    if connection.vendor != "postgresql":
        return
    table = Record._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        (estimated_rows,) = cursor.fetchone()
        # reltuples is -1 for a table never analysed.
        if estimated_rows < 0 or new_count >= ANALYZE_SHARE * estimated_rows:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _links(merges: list[ScoredPair]) -> dict[str, Any]:
    """Why records were grouped, for provenance (capped: a 100k-record first run would
    otherwise write megabytes into one event)."""
    return {
        "automatic_links": len(merges),
        "links": [[p.a, p.b, p.score, p.reason] for p in merges[:LINKS_AUDITED]],
    }


def _refused_pairs(review: Review) -> list[tuple[int, int]]:
    """Pairs of records a reviewer declared different (or split apart)."""
    return list(
        DuplicateCandidate.objects.filter(
            review=review, status=DuplicateCandidate.Status.NOT_DUPLICATE
        ).values_list("record_a_id", "record_b_id")
    )


@contextmanager
def _one_run_at_a_time(review_id: int) -> Iterator[None]:
    """Runs for one review take turns on a PostgreSQL advisory lock, which locks no row: a
    second run waits, then finds only what the first one left. (SQLite, the embedded
    default, runs one writer at a time anyway.)"""
    with advisory_lock(ADVISORY_LOCK_SPACE, review_id):
        yield


def _studies_create(
    *,
    review: Review,
    clusters: list[list[int]],
    features: dict[Key, ScanFeatures],
    search_deferred: bool,
) -> int:
    """New studies at the entry stage, a chunk per transaction, each with its records (and
    their scan `features`); the chunks written on several connections at once
    (`_on_writer_connections`). `search_deferred`: their search documents are left to the
    worker (`search_defer`)."""
    entry = Stage.objects.filter(review=review, is_entry=True).first()

    def write(chunk: list[list[int]]) -> int:
        # A study of one record, on PostgreSQL, takes its fields from its row in the server.
        on_server = connection.vendor == "postgresql"
        singles = [cluster[0] for cluster in chunk if on_server and len(cluster) == 1]
        clusters = [cluster for cluster in chunk if not (on_server and len(cluster) == 1)]
        ids = [key for cluster in clusters for key in cluster]
        by_id = {row["id"]: row for row in Record.objects.filter(pk__in=ids).values(*RECORD_FIELDS)}
        with transaction.atomic():
            if search_deferred:
                search_defer()
            pks = _studies_insert(
                review=review,
                entry=entry,
                # A record deleted meanwhile leaves an empty study, removed below.
                rows=[
                    _display_fields([by_id[k] for k in cluster if k in by_id])
                    for cluster in clusters
                ],
            )
            pairs = [
                (pk, key) for pk, cluster in zip(pks, clusters, strict=True) for key in cluster
            ]
            # A record deleted meanwhile makes no study here.
            pairs += _single_studies_insert(review=review, entry=entry, records=singles)
            studies = {pk for pk, _ in pairs}
            if _assign_records(pairs, features) < len(pairs):
                # A record deleted (or grouped) meanwhile leaves no empty study behind. Only
                # looked for then: the query cost a fifth of the writes' time at 300,000.
                empty = Study.objects.filter(pk__in=studies, records__isnull=True)
                return len(studies) - empty.delete()[1].get(Study._meta.label, 0)
        return len(studies)

    return sum(_on_writer_connections(write, _chunks(clusters)))


Chunk = TypeVar("Chunk")
Done = TypeVar("Done")


def _on_writer_connections(work: Callable[[Chunk], Done], chunks: Iterator[Chunk]) -> list[Done]:
    """`work` of each chunk, by DEDUP_WRITERS threads each on its own database connection.

    Most of the cost of writing a study is the server's: its search document (the stemmed
    title and abstract, unless deferred) and its index entries, while the run's Python waits.
    One connection at a time, the writes of a million records took 390 s of one core while
    the other was idle. Each chunk is its own transaction on disjoint
    studies and records, so the threads never wait for one another; a failed chunk stops the
    others after their current one, leaving whole studies only, and is raised here.

    On this thread's connection, one chunk at a time, where other connections cannot help:
    SQLite (one writer anyway), or inside a transaction (they would not see its rows).
    """
    writers = settings.DEDUP_WRITERS
    if connection.vendor != "postgresql" or connection.in_atomic_block or writers < 2:
        return [work(chunk) for chunk in chunks]
    taking = threading.Lock()
    failed = threading.Event()

    def writer() -> list[Done]:
        results = []
        try:
            while not failed.is_set():
                with taking:
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                results.append(work(chunk))
        except Exception:  # whatever failed is raised again, after the others are told
            failed.set()  # the other writers stop after their current chunk
            raise
        finally:
            connection.close()  # this thread's own
        return results

    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="dedup-writer") as pool:
        running = [pool.submit(writer) for _ in range(writers)]
    return [result for future in running for result in future.result()]


def _chunks(clusters: list[list[int]]) -> Iterator[list[list[int]]]:
    """Clusters a transaction at a time: at most STUDIES_PER_TRANSACTION studies and, since
    their records' full rows are read at once, about RECORDS_PER_TRANSACTION records (a
    100,000-record import of one file exported many times makes clusters of ~80 records; a
    chunk of 2,000 of those held every record's abstract at once, ~700 MB)."""
    chunk: list[list[int]] = []
    records = 0
    for cluster in clusters:
        if chunk and (
            len(chunk) >= STUDIES_PER_TRANSACTION
            or records + len(cluster) > RECORDS_PER_TRANSACTION
        ):
            yield chunk
            chunk, records = [], 0
        chunk.append(cluster)
        records += len(cluster)
    if chunk:
        yield chunk


def _new_study_columns(
    *, review: Review, entry: Stage | None
) -> "tuple[list[models.Field[Any, Any]], list[Any]]":
    """A new study's columns other than its key, and each one's value as the database takes
    it for a study of no display field: the same for every new study (defaults, timestamps),
    prepared once from one unsaved study, not per row through Django's fields (a third of the
    writes' Python time at 300,000 studies)."""
    fields = [field for field in Study._meta.concrete_fields if not field.primary_key]
    template = Study(review=review, current_stage=entry, outcome=Study.Outcome.SCREENING)
    fixed = [
        field.get_db_prep_save(field.pre_save(template, add=True), connection) for field in fields
    ]
    return fields, fixed


def _study_keys_draw(cursor: Any, count: int) -> list[int]:
    """`count` new studies' primary keys, drawn from the table's sequence (PostgreSQL)."""
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [Study._meta.db_table, count],
    )
    return [pk for (pk,) in cursor.fetchall()]


def _studies_insert(
    *, review: Review, entry: Stage | None, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert new studies at the entry stage with these display fields; their primary keys.

    On PostgreSQL by COPY, the keys drawn from the table's sequence first: `bulk_create` spent
    as long in Python quoting the values into its INSERT as the server spent storing them.
    The other columns take the values `_new_study_columns` prepares once."""
    if connection.vendor != "postgresql" or not rows:
        studies = Study.objects.bulk_create(
            [
                Study(review=review, current_stage=entry, outcome=Study.Outcome.SCREENING, **row)
                for row in rows
            ],
            batch_size=1000,
        )
        return [study.pk for study in studies]
    table = Study._meta.db_table
    fields, fixed = _new_study_columns(review=review, entry=entry)
    # Per row, each display field's value as COPY takes it (JSON as text).
    per_row = [
        (position, field.name, isinstance(field, models.JSONField))
        for position, field in enumerate(fields)
        if field.name in STUDY_FIELDS
    ]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        pks = _study_keys_draw(cursor, len(rows))
        columns = ", ".join(quote(field.column) for field in [Study._meta.pk, *fields])
        with cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, row in zip(pks, rows, strict=True):
                values = list(fixed)
                for position, name, is_json in per_row:
                    if name in row:
                        value = row[name]
                        values[position] = json.dumps(value) if is_json else value
                copy.write_row([pk, *values])
    return pks


def _single_studies_insert(
    *, review: Review, entry: Stage | None, records: list[int]
) -> list[tuple[int, int]]:
    """New studies at the entry stage of one record each (PostgreSQL): their display fields
    are those `most_complete` gives one record, taken from its row by the server. Returns
    (study, record) pairs; a record deleted meanwhile has none.

    Most studies of a large import have one record: their rows (abstracts and all) went to
    Python and came back to the server by COPY, a third of a million-record run's writes.
    Their keywords are copied as the record has them and read back: the few that
    `display_keywords` changes (a word twice, more than 40) are written again, cleaned. Read
    before the insert, they cost the server a second lookup of every record (12 s of the
    writers' time at a million)."""
    if not records:
        return []
    fields, fixed = _new_study_columns(review=review, entry=entry)
    quote = connection.ops.quote_name
    table = quote(Study._meta.db_table)
    # Each display field as `most_complete` makes it of one record (`_display_fields`); the
    # keywords are cleaned below.
    from_record = {
        "title": "COALESCE(r.title, '')",
        "abstract": "COALESCE(r.abstract, '')",
        "authors": "CASE WHEN jsonb_typeof(r.authors) = 'array' THEN r.authors ELSE '[]' END",
        "year": "NULLIF(r.year, 0)",
        "venue": "COALESCE(r.venue, '')",
        "doi": "COALESCE(r.doi, '')",
        "pmid": "COALESCE(r.pmid, '')",
        "url": f"CASE WHEN length(r.url) > {URL_MAX} THEN '' ELSE COALESCE(r.url, '') END"
        if URL_MAX is not None
        else "COALESCE(r.url, '')",
        "keywords": "r.keywords",
        "publication_type": "COALESCE(r.publication_type, '')",
    }
    assert set(from_record) == set(STUDY_FIELDS)
    columns, values, params = [quote(Study._meta.pk.column)], ["v.study"], []
    keywords_column = quote(Study._meta.get_field("keywords").column)
    for field, value in zip(fields, fixed, strict=True):
        columns.append(quote(field.column))
        if field.name in from_record:
            values.append(from_record[field.name])
        else:
            values.append("%s")
            params.append(value)
    with connection.cursor() as cursor:
        pks = _study_keys_draw(cursor, len(records))
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(study, record) "
            f"JOIN {quote(Record._meta.db_table)} r ON r.id = v.record "
            f"RETURNING id, {keywords_column}::text",
            [*params, pks, records],
        )
        inserted: set[int] = set()
        cleaned: list[tuple[int, str]] = []
        for pk, stored in cursor.fetchall():
            inserted.add(pk)
            as_stored = json.loads(stored)
            keywords = display_keywords([as_stored])
            if keywords != as_stored:
                cleaned.append((pk, json.dumps(keywords, separators=(",", ":"))))
        if cleaned:
            cursor.execute(
                f"UPDATE {table} SET {keywords_column} = v.keywords::jsonb "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(study, keywords) "
                f"WHERE {table}.{quote(Study._meta.pk.column)} = v.study",
                [[pk for pk, _ in cleaned], [words for _, words in cleaned]],
            )
    return [(pk, record) for pk, record in zip(pks, records, strict=True) if pk in inserted]


def _studies_join(
    *, review: Review, joined: dict[int, list[int]], features: dict[Key, ScanFeatures]
) -> tuple[list[int], bool]:
    """New records (with their scan `features`) into existing studies, a chunk of studies per
    transaction under their row locks, the chunks on several connections at once
    (`_on_writer_connections`: the chunks hold disjoint studies). Returns the screened studies
    joined, and whether a study had vanished (merged away meanwhile)."""
    entry = Stage.objects.filter(review=review, is_entry=True).first()

    def join(chunk: list[int]) -> tuple[list[int], bool]:
        screened_joins: list[int] = []
        with transaction.atomic():
            studies = list(
                Study.objects.select_for_update(of=("self",))
                .select_related("current_stage")
                .filter(pk__in=chunk, review=review)
                .order_by("pk")
            )
            _assign_records(
                [(study.pk, key) for study in studies for key in joined[study.pk]], features
            )
            members: dict[int, list[dict[str, Any]]] = {}
            for row in Record.objects.filter(study__in=studies).values(*RECORD_FIELDS):
                members.setdefault(row["study_id"], []).append(row)
            decided = set(
                Decision.objects.filter(study__in=studies).values_list("study_id", flat=True)
            )
            events: list[AuditEvent] = []
            changes: list[tuple[int, dict[str, Any]]] = []
            for study in studies:
                screened = _study_is_screened(study, entry, decided=study.pk in decided)
                changed = _display_fields_changed(study, members[study.pk])
                if changed:
                    changes.append((study.pk, changed))
                events.append(
                    _study_join_event(
                        review=review,
                        study=study,
                        changed=changed,
                        record_ids=joined[study.pk],
                        screened=screened,
                    )
                )
                if screened:
                    screened_joins.append(study.pk)
            _display_fields_update(changes)
            # One INSERT for the chunk's events: one per study was a tenth of a run's writes.
            AuditEvent.objects.bulk_create(events, batch_size=STUDIES_PER_JOIN_TRANSACTION)
        return screened_joins, len(studies) < len(chunk)

    ids = sorted(joined)
    chunks = (
        ids[start : start + STUDIES_PER_JOIN_TRANSACTION]
        for start in range(0, len(ids), STUDIES_PER_JOIN_TRANSACTION)
    )
    results = _on_writer_connections(join, chunks)
    return sorted(pk for screened, _ in results for pk in screened), any(
        vanished for _, vanished in results
    )


def _display_fields_changed(study: Study, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The joined study's display fields, from all its records, that differ from its own."""
    after = _display_fields(members)
    return {k: v for k, v in after.items() if getattr(study, k) != v}


def _display_fields_update(changes: list[tuple[int, dict[str, Any]]]) -> None:
    """Studies' changed display fields (pairs of study and fields), and their `updated_at`:
    one UPDATE a study, prepared once for each set of fields and pipelined (by psycopg 3). An
    ORM `update()` per study cost 0.2 ms of Python each, 20 s of a million-record run."""
    if not changes:
        return
    now = timezone.now()
    by_fields: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    for pk, changed in changes:
        by_fields.setdefault(tuple(sorted(changed)), []).append((pk, changed))
    quote = connection.ops.quote_name
    concrete = {field.name: field for field in Study._meta.concrete_fields}
    stamp = concrete["updated_at"]
    with connection.cursor() as cursor:
        for names, rows in by_fields.items():
            fields = [concrete[name] for name in names]
            assignments = ", ".join(f"{quote(f.column)} = %s" for f in [*fields, stamp])
            cursor.executemany(
                f"UPDATE {quote(Study._meta.db_table)} SET {assignments} WHERE id = %s",
                [
                    [
                        *(f.get_db_prep_save(changed[f.name], connection) for f in fields),
                        stamp.get_db_prep_save(now, connection),
                        pk,
                    ]
                    for pk, changed in rows
                ],
            )


def _study_join_event(
    *,
    review: Review,
    study: Study,
    changed: dict[str, Any],
    record_ids: list[int],
    screened: bool,
) -> AuditEvent:
    """The joined study's audit event, unsaved (the caller writes a chunk's events at once,
    what `audit_event_record` would write): its display fields before and after."""
    return AuditEvent(
        review=review,
        actor=None,
        action="dedup.records_joined",
        object_type=Study._meta.model_name or "",
        object_id=str(study.pk),
        before={"fields": {k: getattr(study, k) for k in changed}},
        after={
            "records": record_ids,
            "already_screened": screened,
            "stage": study.current_stage.key if study.current_stage else None,
            "outcome": study.outcome,
            "fields": changed,
        },
    )


def _candidates_create(*, review: Review, candidates: list[ScoredPair]) -> None:
    pairs = {(min(p.a, p.b), max(p.a, p.b)): p for p in candidates}
    with transaction.atomic():
        DuplicateCandidate.objects.bulk_create(
            [
                DuplicateCandidate(
                    review=review,
                    record_a_id=a,
                    record_b_id=b,
                    score=pair.score,
                    reason=pair.reason[:300],
                )
                for (a, b), pair in pairs.items()
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )


def _downstream_refresh(*, review: Review, new_studies: bool) -> None:
    """Studies changed: the funnel is recomputed, and new studies get a place in a prioritised
    queue at once rather than waiting at its end for K more decisions."""
    funnel_schedule(review_id=review.pk)
    if new_studies:
        entry = Stage.objects.filter(review=review, is_entry=True).first()
        if entry is not None:
            ranking_schedule_if_due(review=review, stage=entry, force=True)


def _assign_records(pairs: list[tuple[int, int]], features: dict[Key, ScanFeatures]) -> int:
    """Set study_id on many records (pairs of study and record) and store their scan
    `features`. Returns how many records were assigned (a record deleted or grouped meanwhile
    is not).

    On PostgreSQL one UPDATE for all (`ASSIGN_MANY_SQL`): an UPDATE per row, even prepared and
    pipelined, cost the server a statement each, 20 s of a million-record run. Elsewhere one
    prepared UPDATE per row; Django's bulk_update builds a CASE expression per row and was 20x
    slower."""
    if not pairs:
        return 0
    if connection.vendor == "postgresql":
        records = [record for _, record in pairs]
        with _server_bound_cursor() as bound:
            bound.execute(
                ASSIGN_MANY_SQL,
                [
                    records,
                    [study for study, _ in pairs],
                    [_features_json(features[record]) for record in records],
                    records,
                ],
                prepare=False,
            )
            return int(bound.rowcount)
    with connection.cursor() as cursor:
        cursor.executemany(
            ASSIGN_SQL,
            [(study, _stored_features(features[record]), record) for study, record in pairs],
        )
        return int(cursor.rowcount)


@contextmanager
def _server_bound_cursor() -> Iterator[Any]:
    """A cursor on this thread's connection (PostgreSQL) whose parameters the server binds:
    `%b` ones are sent in binary. Django's cursors merge parameters into the statement's text
    in Python, which for the arrays of a chunk of 5,000 records (their features' JSON above
    all) cost more than the server's UPDATE: 15 s of a million-record run, under the GIL.

    In a transaction (the connection's, as Django's cursors are), its statements planned for
    their parameters' values: settings.py has the server plan statements with parameters
    generically (for the prepared pick), and the generic plan of an UPDATE of 5,000 records
    walked the unnested arrays once per record, 2.4 s instead of 0.1 s. The session's mode is
    back once they have run: the foreign-key checks at commit (one a record) are planned by
    it; planned for their values, they took 300 CPU-s of the server at a million records."""
    assert connection.in_atomic_block, "SET LOCAL needs a transaction"
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield cursor
        cursor.execute("RESET plan_cache_mode")


def _features_json(f: ScanFeatures) -> str:
    return json.dumps(f.stored(), separators=(",", ":"))


def _snapshot(study: Study) -> list[dict[str, Any]]:
    """The study and every row that cascades from it, serialised for an exact restore."""
    rows: list[dict[str, Any]] = serializers.serialize(
        "python", [study, *_cascading_rows(Study, [study.pk])]
    )
    return rows


def _cascading_rows(model: type[models.Model], pks: list[int]) -> list[models.Model]:
    """Rows that deleting `model` rows `pks` would delete with them, parents before children,
    found through the public `_meta.related_objects` API. Many-to-many rows are serialised with
    the row that owns them, so auto-created through tables are skipped."""
    rows: list[models.Model] = []
    for relation in model._meta.related_objects:
        related = relation.related_model
        if isinstance(related, str):  # only an unresolved lazy reference is a string
            continue
        if relation.on_delete is not models.CASCADE or related._meta.auto_created:
            continue
        children = list(
            related._base_manager.filter(**{f"{relation.field.name}__in": pks}).order_by("pk")
        )
        if children:
            rows.extend(children)
            rows.extend(_cascading_rows(related, [child.pk for child in children]))
    return rows


def _progress(study: Study) -> tuple[bool, int, int, bool, int]:
    """How far screening has gone on a study: the further one survives a merge."""
    return (
        study.outcome != Study.Outcome.SCREENING,
        study.resolutions.count(),
        study.decisions.count(),
        hasattr(study, "full_text"),
        -study.pk,
    )


def studies_merge(
    *,
    review: Review,
    first: Study,
    second: Study,
    user: User,
    candidate: DuplicateCandidate | None = None,
) -> StudyMerge:
    """Merge two studies: the one further in screening keeps its state; the other's records
    move to it and its own screening rows are kept in the merge history for an unmerge."""
    with transaction.atomic():
        locked = {
            s.pk: s
            for s in Study.objects.select_for_update().filter(
                review=review, pk__in=[first.pk, second.pk]
            )
        }
        if len(locked) != 2:
            raise ValidationError("These two records already belong to one study.")
        kept, absorbed = sorted(locked.values(), key=_progress, reverse=True)
        record_ids = list(absorbed.records.values_list("pk", flat=True))
        kept_before = {name: getattr(kept, name) for name in STUDY_FIELDS}
        absorbed_state = {
            "stage": absorbed.current_stage.key if absorbed.current_stage else None,
            "outcome": absorbed.outcome,
            "decisions": absorbed.decisions.count(),
            "resolutions": absorbed.resolutions.count(),
        }
        snapshot = {
            "absorbed": _snapshot(absorbed),
            "kept_fields": kept_before,
            "absorbed_state": absorbed_state,
        }
        merge = StudyMerge.objects.create(
            review=review,
            kept=kept,
            absorbed_study_id=absorbed.pk,
            absorbed_title=absorbed.title,
            candidate=candidate,
            record_ids=record_ids,
            snapshot=_jsonable(snapshot),
            merged_by=user,
        )
        Record.objects.filter(pk__in=record_ids).update(study=kept)
        absorbed.delete()
        members = list(Record.objects.filter(study=kept).values(*RECORD_FIELDS))
        after = _display_fields(members)
        Study.objects.filter(pk=kept.pk).update(**after, updated_at=timezone.now())
        audit_event_record(
            review=review,
            actor=user,
            action="dedup.studies_merged",
            obj=kept,
            before={
                "kept": kept.pk,
                "absorbed": merge.absorbed_study_id,
                **absorbed_state,
            },
            after={"kept": kept.pk, "records_moved": record_ids, "merge": merge.pk},
        )
        funnel_schedule(review_id=review.pk)
        return merge


def _jsonable(value: object) -> Any:
    """Serialised rows hold dates and decimals; JSONField needs plain JSON values."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def study_unmerge(*, review: Review, merge: StudyMerge, user: User) -> Study:
    """Undo a merge: the absorbed study comes back with its primary key, its screening rows
    and its records; the kept study gets its display fields back from its remaining records."""
    with transaction.atomic():
        merge = StudyMerge.objects.select_for_update().get(pk=merge.pk, review=review)
        if merge.undone_at is not None:
            raise ValidationError("This merge has already been undone.")
        kept = Study.objects.select_for_update().get(pk=merge.kept_id)
        for item in serializers.deserialize("python", merge.snapshot["absorbed"]):
            item.save()
        restored = Study.objects.get(pk=merge.absorbed_study_id)
        Record.objects.filter(pk__in=merge.record_ids, study=kept).update(study=restored)
        remaining = list(Record.objects.filter(study=kept).values(*RECORD_FIELDS))
        fields = merge.snapshot.get("kept_fields") or _display_fields(remaining)
        Study.objects.filter(pk=kept.pk).update(**fields, updated_at=timezone.now())
        merge.undone_at = timezone.now()
        merge.undone_by = user
        merge.save(update_fields=["undone_at", "undone_by"])
        if merge.candidate_id:
            DuplicateCandidate.objects.filter(pk=merge.candidate_id).update(
                status=DuplicateCandidate.Status.NOT_DUPLICATE,
                decided_by=user,
                decided_at=timezone.now(),
            )
        audit_event_record(
            review=review,
            actor=user,
            action="dedup.studies_unmerged",
            obj=restored,
            before={"kept": kept.pk, "merge": merge.pk},
            after={"restored": restored.pk, "records": merge.record_ids},
        )
        funnel_schedule(review_id=review.pk)
        return restored


def candidate_decide(
    *, review: Review, candidate: DuplicateCandidate, user: User, is_duplicate: bool
) -> DuplicateCandidate:
    """Record a reviewer's verdict on a grey-zone pair; a duplicate merges the two studies."""
    with transaction.atomic():
        candidate = (
            DuplicateCandidate.objects.select_for_update()
            .select_related("record_a", "record_b")
            .get(pk=candidate.pk, review=review)
        )
        wanted = (
            DuplicateCandidate.Status.DUPLICATE
            if is_duplicate
            else DuplicateCandidate.Status.NOT_DUPLICATE
        )
        if candidate.status == wanted:
            return candidate
        if candidate.status != DuplicateCandidate.Status.PENDING:
            raise ValidationError("This pair has already been decided; undo it first.")
        before = candidate.status
        candidate.status = wanted
        candidate.decided_by = user
        candidate.decided_at = timezone.now()
        candidate.save(update_fields=["status", "decided_by", "decided_at"])
        merge = None
        study_a, study_b = candidate.record_a.study_id, candidate.record_b.study_id
        if is_duplicate and study_a and study_b and study_a != study_b:
            merge = studies_merge(
                review=review,
                first=Study(pk=study_a),
                second=Study(pk=study_b),
                user=user,
                candidate=candidate,
            )
        audit_event_record(
            review=review,
            actor=user,
            action="dedup.candidate_decided",
            obj=candidate,
            before={"status": before},
            after={"status": wanted, "merge": merge.pk if merge else None},
        )
        return candidate


def candidate_undo(*, review: Review, user: User) -> DuplicateCandidate | None:
    """Undo the user's latest decision on a pair (and its merge, if any); it is pending again."""
    with transaction.atomic():
        candidate = (
            DuplicateCandidate.objects.select_for_update()
            .filter(review=review, decided_by=user)
            .exclude(status=DuplicateCandidate.Status.PENDING)
            .exclude(reason=SPLIT_REASON)
            .order_by("-decided_at", "-id")
            .first()
        )
        if candidate is None:
            return None
        before = candidate.status
        merge = StudyMerge.objects.filter(candidate=candidate, undone_at__isnull=True).first()
        if merge is not None:
            study_unmerge(review=review, merge=merge, user=user)
        candidate.status = DuplicateCandidate.Status.PENDING
        candidate.decided_by = None
        candidate.decided_at = None
        candidate.save(update_fields=["status", "decided_by", "decided_at"])
        audit_event_record(
            review=review,
            actor=user,
            action="dedup.candidate_undone",
            obj=candidate,
            before={"status": before},
            after={"status": candidate.status},
        )
        return candidate


def record_split(*, review: Review, record: Record, user: User) -> Study:
    """Take a record that was grouped automatically out of its study into a new study at the
    entry stage; the pair is remembered as "not a duplicate" so no later run regroups it."""
    with transaction.atomic():
        record = Record.objects.select_for_update().get(pk=record.pk, review=review)
        if record.study_id is None:  # split meanwhile
            raise ValidationError("This record is not grouped with others.")
        old = Study.objects.select_for_update().get(pk=record.study_id)
        others = list(old.records.exclude(pk=record.pk).values(*RECORD_FIELDS))
        if not others:
            raise ValidationError("This record is the only one of its study.")
        entry = Stage.objects.filter(review=review, is_entry=True).first()
        row = Record.objects.filter(pk=record.pk).values(*RECORD_FIELDS).get()
        study = Study.objects.create(
            review=review,
            current_stage=entry,
            outcome=Study.Outcome.SCREENING,
            **_display_fields([row]),
        )
        Record.objects.filter(pk=record.pk).update(study=study)
        Study.objects.filter(pk=old.pk).update(**_display_fields(others), updated_at=timezone.now())
        now = timezone.now()
        for other in others:
            a, b = sorted((record.pk, other["id"]))
            DuplicateCandidate.objects.update_or_create(
                record_a_id=a,
                record_b_id=b,
                defaults={
                    "review": review,
                    "score": 0.0,
                    "reason": SPLIT_REASON,
                    "status": DuplicateCandidate.Status.NOT_DUPLICATE,
                    "decided_by": user,
                    "decided_at": now,
                },
            )
        audit_event_record(
            review=review,
            actor=user,
            action="dedup.record_split",
            obj=record,
            before={"study": old.pk},
            after={"study": study.pk},
        )
        funnel_schedule(review_id=review.pk)
        return study
