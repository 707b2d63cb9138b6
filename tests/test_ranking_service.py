"""Ranking service: labels, scheduling after K decisions, one run per review, atomic priorities,
random order, blind mode not leaking a colleague's verdict through the queue."""

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from screening.models import AuditEvent, RankingRun, Stage, Study, StudyPriority
from screening.selectors import ranking as ranking_selectors
from screening.services import ranking as ranking_service
from screening.services import screening as screening_service

from .ranking_helpers import decide, resolve, studies_make
from .screening_helpers import priority_of, queue_ordered
from .threads import held_in_another_thread


def priorities_in(ids):
    """Study id -> stored priority of those of these studies that have one (any stage)."""
    return dict(
        StudyPriority.objects.filter(study_id__in=list(ids)).values_list("study_id", "priority")
    )


@pytest.fixture
def stage(review):
    return review.stages.get(is_entry=True)


def label_some(studies, stage, reviewer, count):
    for study in studies[:count]:
        decide(study, stage, reviewer, "include" if study.truth else "exclude")


def test_labels_resolution_wins_and_any_include_or_uncertain_counts(review, cast, stage):
    a, b, c, d = studies_make(review, relevant=2, irrelevant=2)
    decide(a, stage, cast["reviewer"], "include")
    decide(a, stage, cast["reviewer2"], "exclude")  # one include is enough while unresolved
    decide(b, stage, cast["reviewer"], "uncertain")
    decide(c, stage, cast["reviewer"], "include")
    resolve(c, stage, "exclude")  # the adjudicated outcome wins
    decide(d, stage, cast["reviewer"], "exclude")
    labels = ranking_selectors.stage_labels(stage=stage)
    assert labels.relevant == {a.pk: True, b.pk: True, c.pk: False, d.pk: False}
    assert labels.pending == {a.pk, b.pk, d.pk}


def test_no_training_before_one_include_and_one_exclude(review, cast, stage):
    studies = studies_make(review, relevant=3, irrelevant=10)
    for study in [s for s in studies if not s.truth][:5]:
        decide(study, stage, cast["reviewer"], "exclude")
    assert ranking_service.ranking_schedule_if_due(review=review, stage=stage) is None
    assert not RankingRun.objects.exists()
    assert not StudyPriority.objects.exists()


def test_first_training_waits_for_both_classes_as_the_model_labels_them(review, cast, stage):
    """The check after each decision asks the database; it must read labels as the model does:
    a resolution's verdict wins over the decisions, one include or uncertain makes an
    unresolved study relevant."""
    a, b, c = studies_make(review, relevant=1, irrelevant=2)
    decide(a, stage, cast["reviewer"], "include")
    resolve(a, stage, "exclude")  # relevant by its decision, irrelevant by its outcome
    decide(b, stage, cast["reviewer"], "exclude")
    assert ranking_service.ranking_schedule_if_due(review=review, stage=stage) is None
    decide(c, stage, cast["reviewer"], "exclude")
    decide(c, stage, cast["reviewer2"], "uncertain")  # unresolved: relevant
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage)
    assert run is not None
    assert RankingRun.objects.filter(pk=run.pk, status="pending", decisions_seen=4).exists()


def test_schedule_after_every_k_decisions_and_one_active_run(
    review, cast, stage, django_capture_on_commit_callbacks
):
    studies = studies_make(review, relevant=6, irrelevant=30)
    relevant = [s for s in studies if s.truth]
    other = [s for s in studies if not s.truth]
    decide(relevant[0], stage, cast["reviewer"], "include")
    decide(other[0], stage, cast["reviewer"], "exclude")
    with django_capture_on_commit_callbacks() as callbacks:
        first = ranking_service.ranking_schedule_if_due(review=review, stage=stage)
    assert first is not None and first.status == "pending"
    assert len(callbacks) == 1  # enqueued on commit
    # A second scheduler while the first run is pending claims nothing.
    assert ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True) is None
    ranking_service.ranking_run_execute(run_id=first.pk)
    first.refresh_from_db()
    assert first.status == "done" and first.labelled == 2 and first.relevant == 1
    # Running the same task twice changes nothing (idempotent).
    assert ranking_service.ranking_run_execute(run_id=first.pk).status == "done"
    settings_row = ranking_service.ranking_settings_for(stage=stage)
    settings_row.retrain_every = 3
    settings_row.save()
    for study in other[1:3]:
        decide(study, stage, cast["reviewer"], "exclude")
    assert ranking_service.ranking_schedule_if_due(review=review, stage=stage) is None
    decide(other[3], stage, cast["reviewer"], "exclude")
    second = ranking_service.ranking_schedule_if_due(review=review, stage=stage)
    assert second is not None and second.pk != first.pk


def test_run_writes_priorities_of_unscreened_studies_only(review, cast, stage):
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    resolved = studies[0]
    resolve(resolved, stage, "include" if resolved.truth else "exclude")
    if not any(s.truth for s in studies[:12]) or all(s.truth for s in studies[:12]):
        pytest.fail("the sample needs both classes")
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    run = ranking_service.ranking_run_execute(run_id=run.pk)
    assert run.status == "done"
    assert run.scored == len(studies) - 1
    assert not StudyPriority.objects.filter(study=resolved).exists()
    waiting = queue_ordered([s.pk for s in studies[12:]], stage)
    truth = {s.pk: s.truth for s in studies}
    top = waiting[: sum(truth[pk] for pk in waiting)]
    assert sum(truth[pk] for pk in top) >= len(top) - 1  # the on-topic studies come first


def test_random_order_available_and_audited(review, cast, stage):
    studies = studies_make(review, relevant=3, irrelevant=10)
    decide(next(s for s in studies if s.truth), stage, cast["reviewer"], "include")
    decide(next(s for s in studies if not s.truth), stage, cast["reviewer"], "exclude")
    ranking_service.ranking_settings_update(
        review=review,
        stage=stage,
        actor=cast["owner"],
        queue_order=Stage.QueueOrder.RANDOM,
        retrain_every=5,
        stop_after_irrelevant=50,
    )
    stage.refresh_from_db()
    assert stage.queue_order == "random"
    assert ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True) is None
    event = AuditEvent.objects.get(action="ranking.settings")
    assert event.before["queue_order"] == "prioritised" and event.after["queue_order"] == "random"
    # Switching back schedules a training straight away.
    ranking_service.ranking_settings_update(
        review=review,
        stage=stage,
        actor=cast["owner"],
        queue_order=Stage.QueueOrder.PRIORITISED,
        retrain_every=5,
        stop_after_irrelevant=50,
        seen_version=ranking_service.ranking_settings_for(stage=stage).version,
    )
    assert RankingRun.objects.filter(stage=stage, status="pending").count() == 1


def test_blind_queue_does_not_reveal_a_colleagues_pending_include(review, cast, stage):
    """reviewer2 includes study X; reviewer has not screened X yet. X's priority must be the
    same as if reviewer2's decision did not exist (it is scored without its own label)."""
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 14)
    for study in studies[:14]:
        resolve(study, stage, "include" if study.truth else "exclude")
    target = next(s for s in studies[14:] if s.truth)

    def train():
        run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
        ranking_service.ranking_run_execute(run_id=run.pk)
        return priority_of(target, stage=stage)

    without = train()
    decision = decide(target, stage, cast["reviewer2"], "include")
    with_colleague = train()
    assert with_colleague == pytest.approx(without, abs=1e-6)
    decision.delete()
    resolve(target, stage, "include")  # once resolved it leaves the queue: no priority written


def _train_counting_feature_builds(review, stage, monkeypatch):
    builds = []
    original = ranking_service.ranking_domain.features_build

    def counting(texts, *, model):
        builds.append(len(texts))
        return original(texts, model=model)

    monkeypatch.setattr(ranking_service.ranking_domain, "features_build", counting)

    def train():
        RankingRun.objects.filter(status__in=RankingRun.ACTIVE).delete()
        run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
        assert ranking_service.ranking_run_execute(run_id=run.pk).status == "done"

    return builds, train


def test_retrain_reuses_features_when_a_resolution_touches_studies(
    review, cast, stage, monkeypatch
):
    ranking_service._FEATURE_CACHE.clear()
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    builds, train = _train_counting_feature_builds(review, stage, monkeypatch)
    train()
    assert len(builds) == 1
    # A resolution and its routing save the study (updated_at moves), its text does not change.
    resolve(studies[0], stage, "include" if studies[0].truth else "exclude")
    Study.objects.filter(pk__in=[s.pk for s in studies]).update(updated_at=timezone.now())
    for study in studies[:3]:
        Study.objects.get(pk=study.pk).save()
    train()
    assert len(builds) == 1  # the cached TF-IDF matrix served the second training


def test_retrain_rebuilds_features_when_a_text_changes(review, cast, stage, monkeypatch):
    ranking_service._FEATURE_CACHE.clear()
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    builds, train = _train_counting_feature_builds(review, stage, monkeypatch)
    train()
    changed = Study.objects.get(pk=studies[20].pk)
    changed.abstract += " continuous delivery"
    changed.save()
    train()
    assert len(builds) == 2


def _study_versions(ids):
    """Each study row's xmin: it changes whenever the row is written (a new row version)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text FROM screening_study WHERE id = ANY(%s)", [list(ids)])
        return dict(cursor.fetchall())


@contextlib.contextmanager
def _lock_timeout():
    """Statements of this connection fail instead of waiting on a lock more than a few seconds:
    a test of "never waits" fails, rather than hangs, where something does wait."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.mark.django_db(transaction=True)
def test_writing_priorities_never_writes_or_locks_a_study_row(review, monkeypatch):
    """A ranking write goes to StudyPriority in short chunked transactions: while a chunk is
    written (not committed) every study, its chunk's included, can be locked as a decision
    locks it, and no study row gets a new version (the priorities are not on it)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks (FOR NO KEY UPDATE NOWAIT) need PostgreSQL")
    stage = review.stages.get(is_entry=True)
    studies = studies_make(review, relevant=10, irrelevant=190)
    ids = sorted(s.pk for s in studies)
    ranking_service.ranking_priorities_write(
        stage=stage, priorities=dict.fromkeys(ids[:100], 1.0)
    )  # half ranked already (updated below), half not (inserted below)
    versions = _study_versions(ids)
    second_chunk_started = threading.Event()
    reader_done = threading.Event()
    original = ranking_service._priorities_chunk_write
    calls = []

    def pausing_chunk_write(stage_id, chunk_ids, values):
        calls.append(len(chunk_ids))
        original(stage_id, chunk_ids, values)
        if len(calls) == 2:
            # The second chunk is written, not committed: its priority rows are locked now.
            second_chunk_started.set()
            reader_done.wait(timeout=20)

    monkeypatch.setattr(ranking_service, "_priorities_chunk_write", pausing_chunk_write)

    def writer():
        try:
            ranking_service.ranking_priorities_write(
                stage=stage, priorities={pk: 2.0 + i for i, pk in enumerate(ids)}, batch_size=50
            )
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert second_chunk_started.wait(timeout=20)
        # This thread has its own connection: a decision's lock with NOWAIT would fail on any
        # study row the writer held.
        with transaction.atomic():
            locked = list(
                Study.objects.select_for_update(nowait=True, no_key=True)
                .filter(pk__in=ids)
                .values_list("pk", flat=True)
            )
        written = priorities_in(ids[:50])
        try:
            with transaction.atomic():
                list(
                    StudyPriority.objects.select_for_update(nowait=True).filter(
                        study_id__in=ids[50:100]
                    )
                )
            chunk_locked = False
        except OperationalError:
            chunk_locked = True
    finally:
        reader_done.set()
        thread.join(timeout=30)
    assert sorted(locked) == ids
    assert written == {pk: 2.0 + i for i, pk in enumerate(ids[:50])}  # the first chunk committed
    assert chunk_locked  # the chunk being written holds its priority rows, for its transaction
    assert calls == [50, 50, 50, 50]
    assert priorities_in(ids) == {pk: 2.0 + i for i, pk in enumerate(ids)}
    assert _study_versions(ids) == versions  # no study row was written


@pytest.mark.django_db(transaction=True)
def test_a_decisions_lock_and_a_ranking_write_never_wait_for_each_other(review, monkeypatch):
    """A decision locks its study (`_lock_study`) for its whole transaction; the ranking writes
    that study's priority meanwhile, new (its foreign key check) or rewritten, without waiting;
    and a ranking chunk not yet committed makes no decision's lock wait."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    stage = review.stages.get(is_entry=True)
    ranked, unranked, other = studies_make(review, relevant=1, irrelevant=2)
    ranking_service.ranking_priorities_write(stage=stage, priorities={ranked.pk: 0.1})

    @contextlib.contextmanager
    def decision() -> Iterator[None]:
        with transaction.atomic():
            screening_service._lock_study(ranked.pk)
            screening_service._lock_study(unranked.pk)
            yield

    with held_in_another_thread(decision), _lock_timeout():
        ranking_service.ranking_priorities_write(
            stage=stage, priorities={ranked.pk: 0.7, unranked.pk: 0.6}
        )
    assert priorities_in([ranked.pk, unranked.pk]) == {ranked.pk: 0.7, unranked.pk: 0.6}

    # The reverse: a chunk written and not committed; a decision locks its studies meanwhile.
    written = threading.Event()
    done = threading.Event()
    original = ranking_service._priorities_chunk_write

    def pausing_chunk_write(stage_id, chunk_ids, values):
        original(stage_id, chunk_ids, values)
        written.set()
        done.wait(timeout=30)

    monkeypatch.setattr(ranking_service, "_priorities_chunk_write", pausing_chunk_write)

    def writer():
        try:
            ranking_service.ranking_priorities_write(
                stage=stage, priorities={ranked.pk: 0.2, unranked.pk: 0.3, other.pk: 0.4}
            )
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(timeout=20)
        with _lock_timeout(), transaction.atomic():
            for study in (ranked, unranked, other):
                assert screening_service._lock_study(study.pk).pk == study.pk
    finally:
        done.set()
        thread.join(timeout=30)
    assert priorities_in([ranked.pk, unranked.pk, other.pk]) == {
        ranked.pk: 0.2,
        unranked.pk: 0.3,
        other.pk: 0.4,
    }


def test_priorities_of_studies_that_left_the_queue_are_cleared_by_the_next_retrain(
    review, cast, stage
):
    """The ranked queue walks the stage's priority rows in order: a retrain deletes those of
    studies no longer waiting there (resolved since), so picks do not read past them."""
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    assert ranking_service.ranking_run_execute(run_id=run.pk).status == "done"
    assert set(priorities_in([s.pk for s in studies])) == {s.pk for s in studies}
    for study in studies[:12]:
        resolve(study, stage, "include" if study.truth else "exclude")
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    assert ranking_service.ranking_run_execute(run_id=run.pk).status == "done"
    assert set(priorities_in([s.pk for s in studies])) == {s.pk for s in studies[12:]}


def _dead_priority_rows() -> int:
    """Dead row versions in the priority table's heap, counted on its pages (pgstattuple, a
    contrib module of PostgreSQL): the statistics' n_dead_tup lags (a backend's counts are
    flushed after the vacuum that removed them)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        cursor.execute(
            "SELECT dead_tuple_count FROM pgstattuple(%s)", [StudyPriority._meta.db_table]
        )
        return cursor.fetchone()[0]


def _retrain(review, stage) -> None:
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    assert ranking_service.ranking_run_execute(run_id=run.pk).status == "done"


def _vacuum_runs(review, stage, *, runs: int) -> list[int]:
    """Retrain the stage `runs` times; the runs (1, 2, ...) during which a VACUUM was sent."""
    vacuums: list[int] = []

    def spy(execute, sql, params, many, context):
        if sql.startswith("VACUUM"):
            vacuums.append(RankingRun.objects.filter(stage=stage).count())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        for _ in range(runs):
            _retrain(review, stage)
    return vacuums


@pytest.mark.django_db(transaction=True)
def test_every_fourth_retrain_of_a_stage_vacuums_the_priority_table(review, cast, stage):
    """Each retrain rewrites every ranked row of the stage, and a busy stage retrains every
    few seconds, faster than autovacuum (which a server may not even run): the runs vacuum the
    narrow table themselves, so the queue's index walks never read a pile of dead versions.
    Not every run: each vacuum made every web connection plan its prepared pick again."""
    if connection.vendor != "postgresql":
        pytest.skip("VACUUM is PostgreSQL's")
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    vacuums = _vacuum_runs(review, stage, runs=3 * ranking_service.VACUUM_EVERY_RUNS)
    assert vacuums == [4, 8, 12]
    assert StudyPriority.objects.filter(stage=stage).count() == len(studies)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgstattuple'")
        counted = cursor.fetchone() is not None
    if counted:  # pgstattuple, PostgreSQL's contrib, counts them on the pages
        assert _dead_priority_rows() == 0  # the twelfth run vacuumed after its writes


@pytest.mark.django_db(transaction=True)
def test_every_retrain_of_a_large_stage_vacuums_the_priority_table(
    review, cast, stage, monkeypatch
):
    """A large stage's retrain runs for minutes and rewrites up to 2 x RANKED_HEAD rows: it
    vacuums after each run, as before."""
    if connection.vendor != "postgresql":
        pytest.skip("VACUUM is PostgreSQL's")
    monkeypatch.setattr(ranking_service.ranking_domain, "LARGE_CORPUS", 20)
    studies = studies_make(review, relevant=6, irrelevant=30)
    label_some(studies, stage, cast["reviewer"], 12)
    vacuums = _vacuum_runs(review, stage, runs=3)
    assert len(vacuums) == 3
