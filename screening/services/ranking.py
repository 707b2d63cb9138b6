"""Prioritised screening queues: schedule, train and write the queue's StudyPriority rows;
owner settings.

Labels. The model learns, per stage, from every reviewer's decisions in that stage (blind mode
hides decisions from people, not from the model). A study counts as relevant when its resolution
in the stage is include or uncertain (the team's settled outcome, adjudication included, wins);
without a resolution yet, when any reviewer's decision is include or uncertain. Uncertain counts
as relevant because it keeps the study in the review (it goes on to the next stage); the queue's
aim is to show first what will not be excluded. A study whose every decision is exclude is
irrelevant.

Blind mode. A study some reviewers have decided but others have not is still in the others'
queues; scoring it with a model trained on its own label would put exactly the studies a
colleague included at the top of your queue. Such studies are scored out of fold (by models
trained without their labels), so a queue never reveals another reviewer's verdict on that study.

Concurrency. At most one run per review is pending or running (a partial unique constraint on
RankingRun; the scheduler claims the slot by inserting). The new priorities are written in short
chunked transactions (`ranking_priorities_write`) to StudyPriority, a narrow table of its own: a
retrain never writes a study row, so a reviewer's claim and a write never wait for each other.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import statistics
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.functions import MD5, Coalesce, Concat
from django.utils import timezone

from ..domain import metrics as ranking_metrics
from ..domain import ranking as ranking_domain
from ..domain import stopping as stopping_domain
from ..models import (
    AuditSample,
    Decision,
    RankingRun,
    RankingSettings,
    Resolution,
    Review,
    ScreeningClaim,
    Stage,
    StageStop,
    Study,
    StudyPriority,
)
from ..selectors.ranking import (
    RELEVANT_VERDICTS,
    StageLabels,
    audit_sample_result,
    stage_labels,
    stage_stop_in_force,
    stage_team_labels,
    stage_unscreened_studies,
    stage_waiting_count,
)
from ..selectors.screening import stage_decisions_count
from .audit import audit_event_record
from .funnel import funnel_schedule
from .queue import task_enqueue
from .stale import version_check

logger = logging.getLogger(__name__)

# A run left pending this long, or running this long since its last sign of life (its start, or
# a large stage's heartbeat after each scored chunk), was lost (worker killed, broker flushed);
# it no longer blocks the review's next training. A million-study retrain takes minutes of CPU,
# so a running one is judged by its heartbeat, not by when it was queued.
STALE_AFTER = timedelta(minutes=10)
# A run's last sign of life, newest first: the columns both the due check (in SQL) and the
# abandoning of lost runs (in the ORM) coalesce.
_SIGN_OF_LIFE = ("heartbeat_at", "started_at", "created_at")
WRITE_BATCH = 500
SCORE_CHUNK = 5_000  # waiting studies read and scored at a time (large stages)
# A large stage's retrain writes the priorities of its best-scored RANKED_HEAD waiting studies
# only, and clears those of the studies that left the head: at most 2 x RANKED_HEAD rows per
# retrain, not one per waiting study (a million rows was ~15 min of writes and as many dead row
# versions in the queue's indexes). The rest are served after the head, by id. 20,000 is far
# more than a team takes between two retrains: 20 reviewers at one decision per 5 s take 14,400
# an hour, and a retrain is due every K (default 10) decisions and takes minutes; if the head
# ever ran out, the queue goes on by id until the next retrain. At ~0.45 ms a row on a loaded
# machine its write is ~10 s.
RANKED_HEAD = 20_000
TRAIN_TASK = "screening.ranking_train"


def ranking_settings_for(*, stage: Stage) -> RankingSettings:
    """The stage's settings row, created with the defaults on first use."""
    row, _ = RankingSettings.objects.get_or_create(stage=stage)
    return row


def _labels_ready(labels: StageLabels) -> bool:
    values = set(labels.relevant.values())
    return values == {True, False}


class _Due(NamedTuple):
    retrain_every: int  # K
    last_status: str | None  # of the stage's last run that did not fail
    new: int  # decisions made or changed since that run was queued, counted up to K
    last_live: bool  # that run is pending or running and has shown life within STALE_AFTER


def _due_read(*, stage: Stage) -> _Due:
    """What the check after every decision needs, in one statement (written in SQL: the ORM
    took more CPU to build these reads than the database took to answer them). The
    newest-first LIMIT makes PostgreSQL walk the index (stage, updated_at) and stop after K; a
    plain count planned a scan of all the stage's decisions (~100 ms at 500,000,
    docs/benchmarks.md)."""
    settings_table = RankingSettings._meta.db_table
    k = f"(SELECT retrain_every FROM {settings_table} WHERE stage_id = %(stage)s)"
    sql = (
        f"WITH last AS (SELECT status, created_at,"
        f" COALESCE({', '.join(_SIGN_OF_LIFE)}) AS alive"
        f" FROM {RankingRun._meta.db_table}"
        " WHERE stage_id = %(stage)s AND status <> %(failed)s"
        " ORDER BY created_at DESC, id DESC LIMIT 1)"
        f" SELECT {k}, (SELECT status FROM last),"
        f" (SELECT COUNT(*) FROM (SELECT 1 FROM {Decision._meta.db_table} d"
        " WHERE d.stage_id = %(stage)s AND d.updated_at > (SELECT created_at FROM last)"
        f" ORDER BY d.updated_at DESC LIMIT COALESCE({k}, %(default)s)) new),"
        " COALESCE((SELECT status IN (%(pending)s, %(running)s) AND alive >= %(cutoff)s"
        " FROM last), false)"
    )
    default = RankingSettings(stage=stage).retrain_every
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "stage": stage.pk,
                "failed": RankingRun.Status.FAILED.value,
                "pending": RankingRun.Status.PENDING.value,
                "running": RankingRun.Status.RUNNING.value,
                "cutoff": timezone.now() - STALE_AFTER,
                "default": default,
            },
        )
        retrain_every, status, new, last_live = cursor.fetchone()
    if retrain_every is None:  # the owner never saved settings: the defaults
        retrain_every = default
    return _Due(int(retrain_every), status, int(new), bool(last_live))


def _labels_ready_read(*, stage: Stage) -> bool:
    """`_labels_ready(stage_labels(stage=stage))` asked of the database, which stops at the
    first study of each class instead of sending every label of the stage to the web process.

    A study's label is its resolution's verdict in the stage when it has one, otherwise
    relevant when any of its decisions there is (see `stage_labels`).
    """
    decision = Decision._meta.db_table
    resolution = Resolution._meta.db_table
    relevant = ", ".join(["%s"] * len(RELEVANT_VERDICTS))
    unresolved = (
        f"NOT EXISTS (SELECT 1 FROM {resolution} r WHERE r.study_id = d.study_id"
        " AND r.stage_id = d.stage_id)"
    )
    sql = (
        f"SELECT (EXISTS (SELECT 1 FROM {resolution} r WHERE r.stage_id = %s"
        f" AND r.verdict IN ({relevant}))"
        f" OR EXISTS (SELECT 1 FROM {decision} d WHERE d.stage_id = %s"
        f" AND d.verdict IN ({relevant}) AND {unresolved})),"
        f" (EXISTS (SELECT 1 FROM {resolution} r WHERE r.stage_id = %s"
        f" AND r.verdict NOT IN ({relevant}))"
        f" OR EXISTS (SELECT 1 FROM {decision} d WHERE d.stage_id = %s AND {unresolved}"
        f" AND NOT EXISTS (SELECT 1 FROM {decision} o WHERE o.study_id = d.study_id"
        f" AND o.stage_id = d.stage_id AND o.verdict IN ({relevant}))))"
    )
    verdicts = sorted(RELEVANT_VERDICTS)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stage.pk, *verdicts, stage.pk, *verdicts] * 2)
        has_relevant, has_irrelevant = cursor.fetchone()
    return bool(has_relevant) and bool(has_irrelevant)


def ranking_schedule_if_due(
    *, review: Review, stage: Stage, force: bool = False, requested_by: User | None = None
) -> RankingRun | None:
    """Schedule a training of the stage's model when K new decisions have come in since the last.

    Call it after a decision is recorded (inside or outside the decision's transaction). The
    first training is due as soon as the stage has one relevant and one irrelevant study.
    Returns the claimed run, or None when nothing is due or another run of the review is already
    pending or running (it will read the newest decisions when it starts).

    Every decision pays the check: when nothing is due it costs one statement.
    """
    if stage.queue_order != Stage.QueueOrder.PRIORITISED:
        return None
    if not force:
        due = _due_read(stage=stage)
        if due.last_status not in (None, RankingRun.Status.SKIPPED) and due.new < due.retrain_every:
            return None
        if due.last_live:
            # It reads the newest decisions when it starts; a running one is followed by
            # the next check after it is done. Trying to queue another would only meet the
            # one-active-run constraint, an error in the server's log at every decision.
            return None
    if not _labels_ready_read(stage=stage):
        return None
    with transaction.atomic():
        cutoff = timezone.now() - STALE_AFTER
        RankingRun.objects.filter(review=review).alias(alive=Coalesce(*_SIGN_OF_LIFE)).filter(
            Q(status=RankingRun.Status.PENDING, created_at__lt=cutoff)
            | Q(status=RankingRun.Status.RUNNING, alive__lt=cutoff)
        ).update(
            status=RankingRun.Status.FAILED,
            error="Abandoned: no worker finished it in time.",
            finished_at=timezone.now(),
        )
        try:
            with transaction.atomic():
                run = RankingRun.objects.create(
                    review=review,
                    stage=stage,
                    model_name=ranking_domain.DEFAULT_MODEL,
                    requested_by=requested_by,
                    decisions_seen=stage_decisions_count(stage=stage),
                )
        except IntegrityError:
            return None
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def ranking_retrain_request(*, review: Review, stage: Stage, actor: User) -> str:
    """Owner's "retrain now": schedule a training regardless of K (audited). Returns what
    happened, in words for the owner."""
    if stage.queue_order != Stage.QueueOrder.PRIORITISED:
        return "This stage's queue is in random order: switch it to prioritised first."
    with transaction.atomic():
        run = ranking_schedule_if_due(review=review, stage=stage, force=True, requested_by=actor)
        if run is None:
            if RankingRun.objects.filter(review=review, status__in=RankingRun.ACTIVE).exists():
                return "A training is already queued or running for this review."
            return "Training needs at least one relevant and one irrelevant decision."
        audit_event_record(review=review, actor=actor, action="ranking.retrain", obj=run)
    return "Training queued: the new order replaces the old one when it is done."


def _enqueue(run_id: int) -> None:
    # By name through the one sender (services never import tasks): a broker outage leaves the
    # pending run, which the next decision's scheduling or its staleness timeout replaces.
    task_enqueue(TRAIN_TASK, kwargs={"run_id": run_id})


def ranking_run_execute(*, run_id: int) -> RankingRun | None:
    """Train and write the priorities of a claimed run. Idempotent: only a pending run runs."""
    claimed = RankingRun.objects.filter(pk=run_id, status=RankingRun.Status.PENDING).update(
        status=RankingRun.Status.RUNNING, started_at=timezone.now()
    )
    run = RankingRun.objects.select_related("stage").filter(pk=run_id).first()
    if not claimed or run is None:
        return run
    try:
        _train_and_write(run)
    except (ValueError, DatabaseError, MemoryError) as error:
        logger.exception("ranking run %s failed", run_id)
        RankingRun.objects.filter(pk=run_id).update(
            status=RankingRun.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
    run.refresh_from_db()
    return run


def _train_and_write(run: RankingRun) -> None:
    stage = run.stage
    labels = stage_labels(stage=stage)
    waiting_ids = list(stage_unscreened_studies(stage).values_list("id", flat=True))
    finish = {"labelled": len(labels.relevant), "relevant": sum(labels.relevant.values())}
    if not _labels_ready(labels) or not waiting_ids:
        RankingRun.objects.filter(pk=run.pk).update(
            status=RankingRun.Status.SKIPPED, finished_at=timezone.now(), **finish
        )
        return
    started = time.perf_counter()
    model_name = run.model_name or ranking_domain.DEFAULT_MODEL
    sample = AuditSample.objects.filter(stage=stage).first()
    sampled = set(sample.study_ids) if sample else set()
    corpus = set(labels.relevant) | set(waiting_ids)
    large = len(corpus) > ranking_domain.LARGE_CORPUS
    if large:
        del corpus
        train_seconds, scored = _train_and_write_large(
            run, labels=labels, waiting_ids=waiting_ids, sampled=sampled, model_name=model_name
        )
        written = time.perf_counter() - started - train_seconds
    else:
        corpus_ids, texts, features = _corpus_features(
            stage=stage, study_ids=corpus, model_name=model_name
        )
        row_of = {pk: row for row, pk in enumerate(corpus_ids)}
        labelled_ids = [pk for pk in corpus_ids if pk in labels.relevant]
        scores = ranking_domain.scores_rank(
            texts,
            features=features,
            labelled=[row_of[pk] for pk in labelled_ids],
            labels=[labels.relevant[pk] for pk in labelled_ids],
            held_out=[row_of[pk] for pk in labelled_ids if pk in labels.pending],
            model_name=model_name,
            # A fixed seed per review: the same decisions give the same order, whichever run.
            seed=run.review_id,
        )
        train_seconds = time.perf_counter() - started
        priorities = {
            pk: float(scores[row_of[pk]])
            for pk in waiting_ids
            if pk in row_of and pk not in sampled
        }
        write_started = time.perf_counter()
        scored = ranking_priorities_write(stage=stage, priorities=priorities)
        # Rows of studies that left the stage's queue since the last retrain (screened,
        # merged) go: the ranked queue walks the stage's rows in order, and a screened study's
        # row at the top would be read and passed over by every pick.
        _priorities_clear(stage=stage, keep=set(priorities) | (sampled & set(waiting_ids)))
        written = time.perf_counter() - write_started
    _priorities_vacuum(stage=stage, large=large)
    RankingRun.objects.filter(pk=run.pk).update(
        status=RankingRun.Status.DONE,
        scored=scored,
        train_seconds=round(train_seconds, 4),
        write_seconds=round(written, 4),
        finished_at=timezone.now(),
        **finish,
    )


def _texts_read(
    study_ids: np.ndarray, *, model: ranking_domain.RankingModel
) -> tuple[np.ndarray, list[str]]:
    """The texts the model judges these studies on (ids ascending), read 2,000 at a time, and
    the ids they belong to: a study merged or deleted since its id was read has none."""
    found: list[int] = []
    texts: list[str] = []
    for start in range(0, len(study_ids), 2000):
        chunk = [int(pk) for pk in study_ids[start : start + 2000]]
        rows = Study.objects.filter(pk__in=chunk).order_by("pk")
        for pk, title, abstract in rows.values_list("pk", "title", "abstract"):
            found.append(pk)
            texts.append(
                ranking_domain.document_text(title, abstract, title_repeats=model.title_repeats)
            )
    return np.asarray(found, dtype=np.int64), texts


def _train_and_write_large(
    run: RankingRun,
    *,
    labels: StageLabels,
    waiting_ids: list[int],
    sampled: set[int],
    model_name: str,
) -> tuple[float, int]:
    """Train on a bounded set and score the stage's waiting studies chunk by chunk (domain/
    ranking.py, "Large corpora"), then write the priorities of the RANKED_HEAD best and clear
    the others': memory is bounded by the training set, the sample and an id and a score per
    waiting study, not by the stage's texts. Returns the training seconds and the number of
    priorities written.

    Pending labelled studies are scored out of fold when they are among the training rows; a
    pending study left out of the training rows is scored by the model, which never saw its
    label. A study merged or deleted during the run is left out wherever it was.
    """
    started = time.perf_counter()
    model = ranking_domain.model_get(model_name)
    seed = run.review_id  # a fixed seed per review: the same decisions give the same order
    labelled_ids = np.fromiter(sorted(labels.relevant), dtype=np.int64)
    flags = np.fromiter((labels.relevant[pk] for pk in labelled_ids), dtype=bool)
    train = ranking_domain.training_rows_bound(flags, cap=ranking_domain.TRAIN_CAP, seed=seed)
    train_ids, train_flags = labelled_ids[train], flags[train]
    # The idf sample is drawn from the whole corpus, labelled or not, as the small path fits on
    # the whole corpus: no label moves it, so a colleague's pending verdict cannot either.
    corpus = np.union1d(labelled_ids, np.asarray(waiting_ids, dtype=np.int64))
    del labelled_ids, flags
    rng = np.random.default_rng(seed)
    fit_sample = np.sort(
        rng.choice(corpus, min(ranking_domain.FIT_SAMPLE, len(corpus)), replace=False)
    )
    del corpus
    _, sample_texts = _texts_read(fit_sample, model=model)
    vectoriser = ranking_domain.hashed_tfidf_fit(sample_texts, model=model)
    read_ids, train_texts = _texts_read(train_ids, model=model)
    train_flags = train_flags[np.isin(train_ids, read_ids)]
    train_ids = read_ids
    train_features = vectoriser.transform(train_texts)
    del train_texts
    clf = ranking_domain.classifier_fit(train_features, train_flags, model=model, seed=seed)
    held = np.flatnonzero(np.isin(train_ids, np.fromiter(labels.pending, dtype=np.int64)))
    held_scores: dict[int, float] = {}
    if len(held):
        sample_scores = ranking_domain.classifier_scores(
            clf, vectoriser.transform(sample_texts), model=model
        )
        values = ranking_domain.held_out_scores(
            train_features,
            np.arange(len(train_ids)),
            train_flags,
            held,
            model=model,
            seed=seed,
            fallback=float(np.median(sample_scores)),
        )
        held_scores = dict(zip(train_ids[held].tolist(), values.tolist(), strict=True))
    del train_features, sample_texts
    train_seconds = time.perf_counter() - started
    scored_ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    last = 0
    waiting = stage_unscreened_studies(run.stage).order_by("pk")
    while True:
        # Keyset pages: each page is one short read, no cursor held across the writes.
        page = list(
            waiting.filter(pk__gt=last).values_list("pk", "title", "abstract")[:SCORE_CHUNK]
        )
        if not page:
            break
        last = page[-1][0]
        page = [row for row in page if row[0] not in sampled]
        texts = [
            ranking_domain.document_text(title, abstract, title_repeats=model.title_repeats)
            for _, title, abstract in page
        ]
        RankingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        if not texts:
            continue
        page_scores = ranking_domain.classifier_scores(
            clf, vectoriser.transform(texts), model=model
        )
        scored_ids.append(np.fromiter((pk for pk, _, _ in page), dtype=np.int64))
        scores.append(
            np.fromiter(
                (
                    held_scores.get(pk, float(score))
                    for (pk, _, _), score in zip(page, page_scores, strict=True)
                ),
                dtype=np.float64,
            )
        )
    head = _head(
        np.concatenate(scored_ids or [np.empty(0, dtype=np.int64)]),
        np.concatenate(scores or [np.empty(0)]),
    )
    written = ranking_priorities_write(stage=run.stage, priorities=head)
    # Those ranked by an earlier retrain (screened since, or out of this head) are unranked;
    # the audit sample's studies still waiting keep their place at the front.
    _priorities_clear(stage=run.stage, keep=set(head) | (sampled & set(waiting_ids)))
    return train_seconds, written


def _head(ids: np.ndarray, scores: np.ndarray) -> dict[int, float]:
    """The RANKED_HEAD best-scored studies and their scores, ties broken by id as the queue
    breaks them (priority DESC, id): a full sort, a fraction of a second at a million."""
    order = np.lexsort((ids, -scores))[:RANKED_HEAD]
    return dict(zip(ids[order].tolist(), scores[order].tolist(), strict=True))


# The TF-IDF matrix of a stage's corpus changes only when studies arrive or their text changes,
# while training runs every K decisions: each worker process keeps the last few matrices, keyed
# by the corpus's study ids and a digest of the text each one is judged on. The key must not use
# `updated_at`: every decision's resolution and routing saves the study, so such a key would
# rebuild the whole matrix on nearly every retrain during real screening.
# (stage, model, corpus digest) -> (study ids, texts, TF-IDF matrix)
_FEATURE_CACHE: OrderedDict[tuple[int, str, str], tuple[list[int], list[str], object]] = (
    OrderedDict()
)
_FEATURE_CACHE_SIZE = 4
_TEXT_SEPARATOR = "\x1f"


def _corpus_features(
    *, stage: Stage, study_ids: set[int], model_name: str
) -> tuple[list[int], list[str], object]:
    rows = Study.objects.filter(pk__in=study_ids).order_by("pk")
    # The database hashes each study's title and abstract, so a warm retrain reads 32 bytes per
    # study instead of its whole text.
    text_hashes = list(
        rows.annotate(
            text_md5=MD5(
                Concat("title", Value(_TEXT_SEPARATOR), "abstract", output_field=TextField())
            )
        ).values_list("pk", "text_md5")
    )
    corpus_ids = [pk for pk, _ in text_hashes]
    digest = hashlib.sha256(
        ";".join(f"{pk}:{text_md5}" for pk, text_md5 in text_hashes).encode()
    ).hexdigest()
    key = (stage.pk, model_name, digest)
    cached = _FEATURE_CACHE.get(key)
    if cached is not None:
        _FEATURE_CACHE.move_to_end(key)
        return cached
    model = ranking_domain.model_get(model_name)
    # Streamed (a server-side cursor on PostgreSQL): fetched whole, a million studies' rows
    # held about as much memory again as the texts built from them (docs/benchmarks.md).
    texts = [
        ranking_domain.document_text(title, abstract, title_repeats=model.title_repeats)
        for title, abstract in rows.values_list("title", "abstract").iterator(chunk_size=2000)
    ]
    features = ranking_domain.features_build(texts, model=model)
    _FEATURE_CACHE[key] = (corpus_ids, texts, features)
    while len(_FEATURE_CACHE) > _FEATURE_CACHE_SIZE:
        _FEATURE_CACHE.popitem(last=False)
    return corpus_ids, texts, features


_PRIORITY = StudyPriority._meta.db_table
_STUDY = Study._meta.db_table


def _priorities_chunk_write(stage_id: int, ids: list[int], values: list[float]) -> None:
    """Upsert the chunk's priority rows in one statement. Studies merged or deleted since
    their ids were read are left out (their row would break the foreign key).

    On PostgreSQL from two arrays: INSERT ... ON CONFLICT (study) DO UPDATE. It writes the
    narrow priority table only; the foreign key check of a new row takes FOR KEY SHARE on the
    study, which no decision's lock (FOR NO KEY UPDATE) waits for or makes wait."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_PRIORITY} AS p (study_id, stage_id, priority)"
                " SELECT new.id, %s, new.priority"
                " FROM unnest(%s::bigint[], %s::double precision[]) AS new(id, priority)"
                f" WHERE EXISTS (SELECT 1 FROM {_STUDY} s WHERE s.id = new.id)"
                " ON CONFLICT (study_id) DO UPDATE"
                " SET stage_id = EXCLUDED.stage_id, priority = EXCLUDED.priority",
                [stage_id, ids, values],
            )
        return
    present = set(Study.objects.filter(pk__in=ids).values_list("pk", flat=True))
    StudyPriority.objects.bulk_create(
        [
            StudyPriority(study_id=pk, stage_id=stage_id, priority=value)
            for pk, value in zip(ids, values, strict=True)
            if pk in present
        ],
        update_conflicts=True,
        unique_fields=["study"],
        update_fields=["stage", "priority"],
    )


def ranking_priorities_write(
    *, stage: Stage, priorities: dict[int, float], batch_size: int = WRITE_BATCH
) -> int:
    """Write these studies' priorities in `stage`'s queue, in chunks of `batch_size`, each in
    its own short transaction, in study id order (two writers cannot deadlock).

    The rows are StudyPriority's, never the studies': a decision's lock on a study and this
    write do not wait for each other. Chunked, a write of thousands of rows holds only one
    chunk's priority rows at a time, for a few milliseconds, and the WAL it writes is flushed
    as it goes. While the write is under way the queue mixes old and new priorities; each
    study's priority is always a whole value of one training or the next.
    """
    ids = sorted(priorities)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        values = [priorities[pk] for pk in chunk]
        try:
            with transaction.atomic():
                _priorities_chunk_write(stage.pk, chunk, values)
        except IntegrityError:
            # A study of the chunk was deleted (merged) between the existence check and the
            # commit's foreign key check: once more, now without it.
            with transaction.atomic():
                _priorities_chunk_write(stage.pk, chunk, values)
    return len(ids)


# A small stage's retrains vacuum the priority table once every this many runs; a large
# stage's (ranking_domain.LARGE_CORPUS), every run.
VACUUM_EVERY_RUNS = 4


def _priorities_vacuum(*, stage: Stage, large: bool) -> bool:
    """VACUUM the priority table after every retrain of a `large` stage, and on every
    VACUUM_EVERY_RUNS-th retrain of a small one; True if it did.

    A retrain gives every ranked study of the stage a new row version and a new entry in the
    queue's index, and a busy stage retrains every few seconds: faster than autovacuum's
    default minute, and a server may run without autovacuum at all (this machine's does). The
    dead entries would pile up under the queue's index walks and make the planner's estimates
    drift (measured: 159,000 dead rows beside 1,681 live after a 90 s, 20-reviewer run, and a
    pick reading the whole table).

    Not after every run: a VACUUM updates the table's statistics in the catalogue, which
    invalidates every connection's prepared pick (`selectors/prepared.py`), and each web
    connection then planned it again on its next pick: 8-10 ms instead of 1-2 on 2,019
    studies, in the first decision after each retrain, a tenth of one reviewer's decisions
    (docs/benchmarks.md). Every fourth run leaves at most about four versions per ranked row
    between vacuums, and PostgreSQL prunes a full page's dead versions as it goes. A large
    stage's retrain (minutes at a million studies, up to 40,000 rows rewritten) vacuums every
    time, as before: the web's re-planning is rare beside its duration. Skipped
    inside a transaction (VACUUM cannot run there), as in the tests that wrap each test in one.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    if not large:
        done = RankingRun.objects.filter(stage=stage, status=RankingRun.Status.DONE).count()
        if (done + 1) % VACUUM_EVERY_RUNS:  # this run is the (done + 1)th
            return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {_PRIORITY}")
    return True


def _priorities_clear(*, stage: Stage, keep: set[int]) -> int:
    """Delete the stage's priority rows of studies not in `keep`, WRITE_BATCH at a time, each
    in its own short transaction (as `ranking_priorities_write`, in id order). Returns how
    many rows were deleted."""
    ids = sorted(
        pk
        for pk in StudyPriority.objects.filter(stage=stage).values_list("study_id", flat=True)
        if pk not in keep
    )
    for start in range(0, len(ids), WRITE_BATCH):
        with transaction.atomic():
            StudyPriority.objects.filter(
                stage=stage, study_id__in=ids[start : start + WRITE_BATCH]
            ).delete()
    return len(ids)


def ranking_settings_update(
    *,
    review: Review,
    stage: Stage,
    actor: User,
    queue_order: str,
    retrain_every: int,
    stop_after_irrelevant: int,
    recall_target: float = stopping_domain.DEFAULT_TARGET,
    confidence: float = stopping_domain.DEFAULT_CONFIDENCE,
    seen_version: int | None = None,
    force: bool = False,
) -> RankingSettings:
    """Owner's choice for a stage: queue order, K, the stopping hint and the stopping rule's
    recall target and confidence (audited).

    The form carries the settings' version it showed: when another owner (or tab) saved since,
    `StaleWrite` is raised and nothing is written, unless `force` (then audited as
    `ranking.settings.overwrite` with the version replaced). Switching to prioritised schedules a
    training right away when the labels allow one.
    """
    after = {
        "queue_order": queue_order,
        "retrain_every": retrain_every,
        "stop_after_irrelevant": stop_after_irrelevant,
        "recall_target": recall_target,
        "confidence": confidence,
    }
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk, review=review)
        row, created = RankingSettings.objects.get_or_create(stage=stage)
        before = {"queue_order": stage.queue_order, **_settings_values(row)}
        version_check(
            # A row created just now was seen by nobody: it counts as version 0.
            stored_version=0 if created else row.version,
            seen_version=seen_version,
            force=force,
            what=f"The prioritisation settings of {stage.name}",
            current=", ".join(f"{key} {value}" for key, value in before.items()),
            at=row.updated_at,
        )
        if before == after:
            return row
        switched_on = (
            stage.queue_order != Stage.QueueOrder.PRIORITISED
            and queue_order == Stage.QueueOrder.PRIORITISED
        )
        stage.queue_order = queue_order
        stage.save(update_fields=["queue_order"])
        replaced_version = row.version
        _settings_save(row, after)
        audit_event_record(
            review=review,
            actor=actor,
            action="ranking.settings.overwrite" if force else "ranking.settings",
            obj=stage,
            before={**before, "version": replaced_version},
            after={**after, "version": row.version},
        )
        if switched_on:
            ranking_schedule_if_due(review=review, stage=stage, force=True, requested_by=actor)
    return row


_SETTINGS_FIELDS = ("retrain_every", "stop_after_irrelevant", "recall_target", "confidence")


def _settings_values(row: RankingSettings) -> dict[str, object]:
    return {name: getattr(row, name) for name in _SETTINGS_FIELDS}


def _settings_save(row: RankingSettings, values: dict[str, object]) -> None:
    """Store the settings' new values (queue order lives on the stage) as the next version."""
    for name in _SETTINGS_FIELDS:
        setattr(row, name, values[name])
    row.version += 1
    row.save(update_fields=[*_SETTINGS_FIELDS, "version", "updated_at"])


def ranking_simulate(
    *,
    rows: list[dict[str, str]],
    dataset: str,
    label_column: str = "label_included",
    seeds: int = 5,
    model_name: str = ranking_domain.DEFAULT_MODEL,
    batch_size: int = 1,
    stopping: str | None = None,
    target: float = stopping_domain.DEFAULT_TARGET,
    confidence: float = stopping_domain.DEFAULT_CONFIDENCE,
    streak: int = 100,
    check_every: int = 10,
) -> dict[str, Any]:
    """Replay a labelled dataset through the ranking model, one run per seed 1..`seeds`.

    Returns the simulate command's JSON (DESIGN.md): per-seed metrics and their medians. Each
    run starts from one random relevant and one random irrelevant record (chosen by the seed),
    and retrains after every `batch_size` records, as the review's worker would after every K
    decisions. Metrics count the two prior records as screened. With `stopping` ("buscar" or
    "heuristic") each seed also says where that rule would have stopped the team and the recall
    reached there: BUSCAR checked after every `check_every` records, the heuristic after
    `streak` consecutive irrelevant records.
    """
    if stopping not in (None, "buscar", "heuristic"):
        raise ValueError(f"unknown stopping rule {stopping!r}; choose buscar or heuristic")
    model = ranking_domain.model_get(model_name)
    data = ranking_domain.labelled_dataset_read(rows, label_column=label_column)
    texts = data.texts_for(model)
    started = time.perf_counter()
    features = ranking_domain.features_build(texts, model=model)
    feature_seconds = time.perf_counter() - started
    per_seed: list[dict[str, Any]] = []
    for seed in range(1, seeds + 1):
        run = ranking_domain.simulate(
            texts,
            data.relevant,
            seed=seed,
            model_name=model_name,
            batch_size=batch_size,
            features=features,
        )
        labels_in_order = [data.relevant[i] for i in run.order]
        entry = {
            "seed": seed,
            **ranking_metrics.summary(labels_in_order),
            "seconds": round(run.seconds, 2),
            "trainings": run.trainings,
            "prior_rows": list(run.priors),
        }
        if stopping is not None:
            entry["stop"] = _simulated_stop(
                labels_in_order,
                rule=stopping,
                target=target,
                confidence=confidence,
                streak=streak,
                check_every=check_every,
            )
        per_seed.append(entry)
    keys = ["wss@95", "wss@100", "recall@10%", "recall@25%", "rrf@10", "seconds"]
    return {
        "dataset": dataset,
        "records": len(texts),
        "relevant": sum(data.relevant),
        "skipped_rows": data.skipped,
        "model": model.name,
        "model_description": model.description,
        "retraining": f"after every {batch_size} screened record{'s' if batch_size > 1 else ''}",
        "prior": "1 relevant + 1 irrelevant record chosen at random by the seed",
        "feature_seconds": round(feature_seconds, 2),
        "seeds": per_seed,
        "median": {key: round(statistics.median(s[key] for s in per_seed), 4) for key in keys},
    }


def _simulated_stop(
    labels_in_order: list[bool],
    *,
    rule: str,
    target: float,
    confidence: float,
    streak: int,
    check_every: int,
) -> dict[str, Any]:
    if rule == "buscar":
        screened = stopping_domain.buscar_stop_index(
            labels_in_order, target=target, confidence=confidence, check_every=check_every
        )
        parameters: dict[str, float | None] = {
            "target": target,
            "confidence": confidence,
            "check_every": check_every,
        }
    else:
        screened = stopping_domain.heuristic_stop_index(labels_in_order, streak=streak)
        parameters = {"target": None, "confidence": None, "streak": streak}
    records = len(labels_in_order)
    return {
        "rule": rule,
        **parameters,
        "screened": screened,
        "screened_fraction": round(screened / records, 4),
        "recall": round(sum(labels_in_order[:screened]) / sum(labels_in_order), 4),
    }


def stage_stopping_evaluate(*, review: Review, stage: Stage) -> stopping_domain.BuscarResult:
    """The BUSCAR stopping rule at this moment, with the stage's target and confidence.

    Screened = the team's labelled studies (`stage_team_labels`); records = those plus every
    study still waiting in the stage.
    """
    settings_row = ranking_settings_for(stage=stage)
    labels = stage_team_labels(review=review, stage=stage)
    return stopping_domain.buscar(
        labels,
        records=len(labels) + stage_waiting_count(stage=stage),
        target=settings_row.recall_target,
        confidence=settings_row.confidence,
    )


def _stop_snapshot(stop: StageStop) -> dict[str, Any]:
    return {
        "stage": stop.stage.key,
        "rule": stop.rule,
        "recall_target": stop.recall_target,
        "confidence": stop.confidence,
        "p_value": stop.p_value,
        "screened": stop.screened,
        "relevant_found": stop.relevant_found,
        "records": stop.records,
        "recall_estimate": stop.recall_estimate,
        "recall_lower": stop.recall_lower,
        "excluded": stop.excluded,
        "audit_sample_size": stop.audit_sample_size,
        "audit_sample_screened": stop.audit_sample_screened,
        "audit_sample_relevant": stop.audit_sample_relevant,
    }


def stage_stop(*, review: Review, stage: Stage, actor: User) -> StageStop:
    """Owner: stop the stage because the BUSCAR rule is met (audited, reversible).

    The evidence is computed here, inside the transaction, not taken from the page: a decision
    recorded since the owner looked is part of it. Studies nobody has decided in the stage leave
    the queue as excluded automatically; studies with a decision but no resolution yet (a second
    reviewer or an adjudicator pending) stay, since a reviewer has already judged them. Only the
    entry stage can stop: PRISMA reports automation exclusions before "records screened".
    """
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk, review=review)
        if not stage.is_entry:
            raise ValidationError(
                "Only the first screening stage can be stopped on the stopping rule: PRISMA "
                "reports records excluded by automation before the records screened."
            )
        if stage_stop_in_force(stage=stage) is not None:
            raise ValidationError(f"{stage.name} is already stopped.")
        evidence = stage_stopping_evaluate(review=review, stage=stage)
        if not evidence.met:
            raise ValidationError(
                f"The stopping rule is not met: the p-value of recall below "
                f"{evidence.target:.0%} is {evidence.p_value:.3f}, not below "
                f"{1 - evidence.confidence:.3f}. Keep screening."
            )
        remaining = list(_remaining(stage).order_by("pk").values_list("pk", flat=True))
        if not remaining:
            raise ValidationError(f"No study of {stage.name} is left unscreened.")
        sample = audit_sample_result(review=review, stage=stage)
        stop = StageStop.objects.create(
            review=review,
            stage=stage,
            rule="buscar",
            recall_target=evidence.target,
            confidence=evidence.confidence,
            p_value=evidence.p_value,
            screened=evidence.screened,
            relevant_found=evidence.relevant_found,
            records=evidence.records,
            recall_estimate=evidence.recall_estimate,
            recall_lower=evidence.recall_lower,
            study_ids=remaining,
            excluded=len(remaining),
            stopped_by=actor,
            audit_sample_size=sample.size if sample else None,
            audit_sample_screened=sample.screened if sample else None,
            audit_sample_relevant=sample.relevant if sample else None,
        )
        Study.objects.filter(pk__in=remaining, outcome=Study.Outcome.SCREENING).update(
            outcome=Study.Outcome.EXCLUDED_AUTOMATIC, updated_at=timezone.now()
        )
        ScreeningClaim.objects.filter(stage=stage, study_id__in=remaining).delete()
        audit_event_record(
            review=review, actor=actor, action="stage.stop", obj=stop, after=_stop_snapshot(stop)
        )
        funnel_schedule(review_id=review.pk)
    return stop


def stage_stop_undo(
    *, review: Review, stage: Stage, actor: User, seen_stop: int | None = None, force: bool = False
) -> StageStop:
    """Owner: undo the stop in force; its studies go back to the stage's queue (audited).

    `seen_stop` is the id of the stop the owner's page showed (the undo form's version): when
    the stage has been stopped again since, undoing would undo a stop they never saw, so
    `StaleWrite` is raised unless `force`.
    """
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk, review=review)
        stop = stage_stop_in_force(stage=stage)
        if stop is None:
            raise ValidationError(f"{stage.name} is not stopped.")
        version_check(
            stored_version=stop.pk,
            seen_version=seen_stop,
            force=force,
            what=f"The stop of {stage.name}",
            current=f"stopped again, {stop.excluded} studies excluded",
            by=stop.stopped_by.username if stop.stopped_by else "",
            at=stop.stopped_at,
        )
        restored = Study.objects.filter(
            pk__in=stop.study_ids, outcome=Study.Outcome.EXCLUDED_AUTOMATIC
        ).update(outcome=Study.Outcome.SCREENING, updated_at=timezone.now())
        stop.undone_by = actor
        stop.undone_at = timezone.now()
        stop.save(update_fields=["undone_by", "undone_at"])
        audit_event_record(
            review=review,
            actor=actor,
            action="stage.stop_undo.overwrite" if force else "stage.stop_undo",
            obj=stop,
            before=_stop_snapshot(stop),
            after={"restored": restored},
        )
        funnel_schedule(review_id=review.pk)
    return stop


AUDIT_PRIORITY = 1e9  # above any decision value of the model: sampled studies come first


def _remaining(stage: Stage) -> QuerySet[Study]:
    """Studies of the stage nobody has decided yet."""
    return stage_unscreened_studies(stage).exclude(decisions__stage=stage)


def audit_sample_draw(*, review: Review, stage: Stage, actor: User, size: int) -> AuditSample:
    """Owner: draw a random sample of `size` of the stage's unscreened studies (audited).

    The sampled studies go to the front of the queue (and stay there through retrainings) so
    the team screens them next, without being told which they are; their verdicts then estimate
    how many relevant studies the ranked queue has left. One sample per stage.
    """
    with transaction.atomic():
        stage = Stage.objects.select_for_update().get(pk=stage.pk, review=review)
        if AuditSample.objects.filter(stage=stage).exists():
            raise ValidationError(f"{stage.name} already has its random audit sample.")
        if stage_stop_in_force(stage=stage) is not None:
            raise ValidationError(f"{stage.name} is stopped: undo the stop to draw a sample.")
        population = list(_remaining(stage).order_by("pk").values_list("pk", flat=True))
        if size < 1:
            raise ValidationError("The sample needs at least one study.")
        if size > len(population):
            raise ValidationError(
                f"Only {len(population)} studies of {stage.name} are unscreened: the sample "
                f"cannot hold {size}."
            )
        chosen = secrets.SystemRandom().sample(population, size)
        sample = AuditSample.objects.create(
            review=review,
            stage=stage,
            size=size,
            population=len(population),
            study_ids=chosen,
            requested_by=actor,
        )
        # Random order within the sample too, so the queue does not reveal the draw order.
        ranks = {pk: AUDIT_PRIORITY + index for index, pk in enumerate(chosen)}
        ranking_priorities_write(stage=stage, priorities=ranks)
        audit_event_record(
            review=review,
            actor=actor,
            action="ranking.audit_sample",
            obj=sample,
            after={"stage": stage.key, "size": size, "population": len(population)},
        )
    return sample
