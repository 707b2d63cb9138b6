"""A deduplication run's scans and scoring shared out among forked processes (issue 17): the
result is the one a single process finds, on real records and in the database; a child that
fails or dies fails the run with a clear message and leaves no process behind."""

import os

import pytest

from screening.domain import dedup as dedup_domain
from screening.domain.dedup import NearGroups, deduplicate, scan_features
from screening.domain.forked import ForkedWorkFailed, forked_map
from screening.models import DuplicateCandidate, Record, Study
from screening.services import dedup as dedup_service
from screening.services.dedup import review_deduplicate
from screening.services.reviews import review_create

from .dedup_helpers import add_batch
from .factories import UserFactory
from .test_dedup_benchmarks import BENCH, read_set
from .test_dedup_scale import far_records, records


def no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("processes", [1, 2, 3, 8])
def test_forked_map_returns_every_result_in_order_computed_in_other_processes(processes):
    parent = os.getpid()
    results = forked_map(lambda n: (n * n, os.getpid()), list(range(7)), processes)
    assert [square for square, _ in results] == [n * n for n in range(7)]
    pids = {pid for _, pid in results}
    assert len(pids) == min(processes, 7)
    assert results[0][1] == parent  # the first share is this process's
    assert no_child_left()


def test_what_a_child_changes_in_memory_stays_in_the_child():
    seen: list[int] = []

    def work(n: int) -> int:
        seen.append(n)
        return n

    assert forked_map(work, [1, 2], 2) == [1, 2]
    assert seen == [1]  # the second item was the child's


def test_a_failing_child_fails_the_call_with_its_traceback_and_is_reaped():
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("record 3 is malformed")
        return n

    with pytest.raises(ForkedWorkFailed, match="ValueError: record 3 is malformed"):
        forked_map(work, [0, 1, 2, 3], 2)
    assert no_child_left()


def test_a_child_that_dies_without_an_answer_fails_the_call():
    def work(n: int) -> int:
        if n:
            os._exit(9)  # killed, as by the kernel's OOM killer
        return n

    with pytest.raises(ForkedWorkFailed, match="without an answer"):
        forked_map(work, [0, 1], 2)
    assert no_child_left()


def test_when_this_process_fails_the_children_are_stopped_and_reaped():
    def work(n: int) -> int:
        if n == 0:
            raise KeyError("here")
        return sum(range(10**9))  # a child would run for a long time

    with pytest.raises(KeyError):
        forked_map(work, [0, 1], 2)
    assert no_child_left()


@pytest.mark.parametrize("name", ["haematology", "respiratory"])
def test_forked_scoring_finds_what_one_process_finds_on_real_records(monkeypatch, name):
    if not BENCH.exists():
        pytest.skip("shared benchmark data not present")
    records_read, _ = read_set(name)
    one = deduplicate(records_read, processes=1)
    monkeypatch.setattr(dedup_domain, "FORKED_PAIRS_MIN", 0)
    forked = deduplicate(records_read, processes=3)
    assert forked.pairs_compared == one.pairs_compared > 500
    assert forked.clusters == one.clusters
    assert forked.merges == one.merges
    assert forked.candidates == one.candidates
    assert len(one.candidates) > 10
    assert no_child_left()


def stored_grouping(review) -> tuple[set, set]:
    """The review's studies as sets of record titles and positions, and its queued pairs."""
    studies = {
        frozenset(
            Record.objects.filter(study=study).values_list("batch__original_name", "position")
        )
        for study in Study.objects.filter(review=review)
    }
    pairs = {
        frozenset(
            [
                (c.record_a.batch.original_name, c.record_a.position),
                (c.record_b.batch.original_name, c.record_b.position),
            ]
        )
        for c in DuplicateCandidate.objects.filter(review=review).select_related(
            "record_a__batch", "record_b__batch"
        )
    }
    return studies, pairs


def import_real_set(review, name: str) -> None:
    """The benchmark's records as two imports, so that the second pass joins the first's."""
    records_read, _ = read_set(name)
    rows = [
        {
            "title": r.title,
            "authors": list(r.authors),
            "year": r.year,
            "venue": r.venue,
            "volume": r.volume,
            "issue": r.issue,
            "pages": r.pages,
            "publication_type": r.publication_type,
        }
        for r in records_read
    ]
    half = len(rows) // 2
    add_batch(review, "first", rows[:half])
    add_batch(review, "second", rows[half:])


@pytest.mark.django_db(transaction=True)
def test_a_run_in_several_processes_stores_the_grouping_one_process_stores(settings, monkeypatch):
    """Two reviews of the same real records, deduplicated in passes of 300 new records, the
    existing ones read 200 at a time: one in one process, one in three. The studies and pairs
    read back from the database are the same."""
    if not BENCH.exists():
        pytest.skip("shared benchmark data not present")
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 300)
    monkeypatch.setattr(dedup_service, "RECORDS_PER_PASS", 600)
    monkeypatch.setattr(dedup_service, "EXISTING_PER_READ", 200)
    monkeypatch.setattr(dedup_domain, "FORKED_PAIRS_MIN", 0)
    forks = []
    fork = os.fork

    def counted_fork() -> int:
        forks.append(1)
        return fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    grouped = {}
    forks_by_processes = {}
    owner = UserFactory(username="owner")
    for processes in (1, 3):
        settings.DEDUP_PROCESSES = processes
        review = review_create(slug=f"forked-{processes}", title="Forked", owner=owner)
        import_real_set(review, "haematology")
        forks.clear()
        counts = review_deduplicate(review=review)
        forks_by_processes[processes] = len(forks)
        assert counts["records"] == Record.objects.filter(review=review).count()
        assert not Record.objects.filter(review=review, study__isnull=True).exists()
        grouped[processes] = stored_grouping(review)
    studies_one, pairs_one = grouped[1]
    studies_forked, pairs_forked = grouped[3]
    assert studies_forked == studies_one
    assert pairs_forked == pairs_one
    assert any(len(study) > 1 for study in studies_one)
    assert forks_by_processes[1] == 0
    assert forks_by_processes[3] >= 4  # scans and scoring of two passes at least
    assert no_child_left()


def test_records_normalised_in_several_processes_are_those_normalised_here(monkeypatch):
    """A pass's new records normalised by three processes, the children's features sent back
    as their values: every feature as one process computes it, in the records' order."""
    monkeypatch.setattr(dedup_domain, "FORKED_NORMALISE_MIN", 0)
    records_read, _ = read_set("haematology") if BENCH.exists() else (records(500, "n", 7), None)
    here = dedup_domain.normalised(records_read, processes=1)
    forked = dedup_domain.normalised(iter(records_read), processes=3)
    assert len(forked) == len(here) == len(records_read)
    for ours, theirs in zip(forked, here, strict=True):
        assert [getattr(ours, name) for name in ours.__slots__] == [
            getattr(theirs, name) for name in theirs.__slots__
        ]
    assert no_child_left()


def test_a_scan_walked_by_several_processes_touches_what_one_process_touches(monkeypatch):
    """The title neighbourhoods of a scan's new titles walked by three processes, a share of
    the titles each (and every block met before the fork): the same groups touched."""
    monkeypatch.setattr(dedup_domain, "FORKED_WALK_MIN", 0)
    new = records(300, "n", None)
    existing = scan_features(records(900, "e", 3) + far_records(300), {})
    one = NearGroups(new)
    one.scan_features(existing)
    assert 100 < len(one.touched) < len({f.group for f in existing})
    forked = NearGroups(new)
    forked.scan_features(existing, processes=3)
    assert forked.touched == one.touched
    assert no_child_left()
