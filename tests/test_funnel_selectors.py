"""The funnel from ORM rows (records, studies, resolutions, full texts): the seed's numbers,
drill-down lists that match the boxes, the paper's tables, the service and the command."""

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from screening.models import FunnelSchedule, FunnelSnapshot, QualityConsensus, QualityCriterion
from screening.selectors import reports as selectors
from screening.services import funnel as funnel_service
from screening.services import queue as queue_service

from .reports_helpers import assert_seed_funnel, seeded_module  # noqa: F401


@pytest.fixture
def seeded(seeded_module, db):  # noqa: F811 (the imported fixture, requested by name)
    review, _, built = seeded_module
    review.refresh_from_db()
    return review, built


def test_orm_rows_reproduce_the_seed_funnel(seeded, django_assert_max_num_queries):
    review, _ = seeded
    with django_assert_max_num_queries(12):
        funnel = selectors.funnel_live(review=review)
    assert_seed_funnel(funnel)
    assert list(funnel["database_specific_results"]) == [
        "ACM Digital Library",
        "IEEE Xplore",
        "ScienceDirect",
        "Springer Link",
    ]
    assert list(funnel["dbr_excluded"]) == [
        "invalid publication type",
        "duplicate",
        "exclusion criteria",
    ]


def test_funnel_compute_stores_a_snapshot(seeded):
    review, _ = seeded
    snapshot = funnel_service.funnel_compute(review=review)
    assert FunnelSnapshot.objects.get(review=review) == snapshot
    assert_seed_funnel(json.loads(json.dumps(snapshot.data)))
    assert selectors.funnel_latest(review=review) == snapshot


@pytest.mark.parametrize(
    "box,detail",
    [
        ("database_results", None),
        ("database_results", "IEEE Xplore"),
        ("duplicates", None),
        ("excluded_automatic", None),
        ("records_screened", None),
        ("records_excluded", None),
        ("dbr_sought_reports", None),
        ("dbr_notretrieved_reports", None),
        ("dbr_assessed", None),
        ("dbr_excluded", None),
        ("dbr_excluded", "invalid publication type"),
        ("dbr_excluded", "duplicate"),
        ("dbr_excluded", "exclusion criteria"),
        ("new_studies", None),
    ],
)
def test_every_box_lists_exactly_its_number(seeded, box, detail):
    review, _ = seeded
    funnel = selectors.funnel_live(review=review)
    expected = funnel[box]
    if box == "database_results" and detail:
        expected = funnel["database_specific_results"][detail]
    elif isinstance(expected, dict):
        expected = expected[detail] if detail else sum(expected.values())
    assert selectors.funnel_box_rows(review=review, box=box, detail=detail).count() == expected


def test_unknown_reason_lists_nothing_and_unknown_box_is_refused(seeded):
    review, _ = seeded
    assert selectors.funnel_box_rows(review=review, box="dbr_excluded", detail="nope").count() == 0
    with pytest.raises(ValueError):
        selectors.funnel_box_rows(review=review, box="nope")


def test_quality_threshold_exclusion_is_reported_as_its_own_reason(seeded):
    review, built = seeded
    review.quality_threshold = 2
    review.save()
    criteria = [
        QualityCriterion.objects.create(review=review, code=f"QC{i}", text="?") for i in (1, 2)
    ]
    low, high, partial = built["included"][:3]
    for study, answers in ((low, (1, 0)), (high, (1, 1))):
        for criterion, answer in zip(criteria, answers, strict=True):
            QualityConsensus.objects.create(study=study, criterion=criterion, answer=answer)
    QualityConsensus.objects.create(study=partial, criterion=criteria[0], answer=0)
    funnel = selectors.funnel_live(review=review)
    assert funnel["dbr_excluded"]["quality score below threshold"] == 1
    assert funnel["new_studies"] == 29
    below = selectors.funnel_box_rows(
        review=review, box="dbr_excluded", detail="quality score below threshold"
    )
    assert list(below) == [low]
    assert low not in selectors.included_studies(review=review)


def test_table1_reported_equals_imported_for_the_seed(seeded):
    review, _ = seeded
    table = selectors.table1(review=review)
    assert table["reported"] == table["imported"] == 1905
    assert [t["imported"] for t in table["totals"]] == [602, 90, 797, 416]
    rows = list(csv.reader(io.StringIO(selectors.table_csv(selectors.table1_rows(review=review)))))
    assert rows[0][:3] == [
        "search_string",
        "ACM Digital Library reported",
        "ACM Digital Library imported",
    ]
    assert rows[1][0] == '"MLOps"'
    assert rows[-1] == [
        "Total",
        "602",
        "602",
        "90",
        "90",
        "797",
        "797",
        "416",
        "416",
        "1905",
        "1905",
    ]


def test_figure2_counts_included_per_year_and_library(seeded):
    review, built = seeded
    data = selectors.included_per_year(review=review)
    rows = selectors.included_per_year_rows(review=review)
    assert rows[0] == [
        "year",
        "ACM Digital Library",
        "IEEE Xplore",
        "ScienceDirect",
        "Springer Link",
    ]
    # Every included study is counted in at least one library.
    assert sum(data["counts"].values()) >= 30
    svg = selectors.figure2_svg(review=review)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert str(built["included"][0].year) in svg


def test_source_overlap_counts_studies_found_by_several_libraries(seeded):
    review, _ = seeded
    overlap = selectors.source_overlap(review=review)
    assert sum(overlap["distribution"].values()) == 1655
    assert overlap["multi"] == selectors.overlap_studies(review=review).count() > 0
    for i, row in enumerate(overlap["matrix"]):
        assert row[i] >= max(n for j, n in enumerate(row) if j != i)
        for j, n in enumerate(row):
            assert n == overlap["matrix"][j][i]
    rows = selectors.source_overlap_rows(review=review)
    assert len(rows) == overlap["multi"] + 1
    assert all(";" in row[5] for row in rows[1:])


def test_included_citations_carry_sources(seeded):
    review, _ = seeded
    citations = selectors.included_citations(review=review)
    assert len(citations) == 30
    assert all(c.sources for c in citations)
    bib = selectors.included_export(review=review, fmt="bib")
    assert bib.count("@") == 30
    assert r"\&" in bib and "<b>" in bib


def test_command_prints_one_json_object(seeded, capsys):
    review, _ = seeded
    call_command("funnel", "--review", review.slug)
    assert_seed_funnel(json.loads(capsys.readouterr().out))


def test_command_csv_and_svg(seeded, capsys):
    review, _ = seeded
    call_command("funnel", "--review", review.slug, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["data"]: r["n"] for r in rows}["records_screened"] == "1655"
    call_command("funnel", "--review", review.slug, "--format", "svg")
    root = ET.fromstring(capsys.readouterr().out)
    assert "1,655" in "".join(root.itertext())


def test_command_unknown_review(db):
    with pytest.raises(CommandError, match="No review"):
        call_command("funnel", "--review", "missing")


def test_schedule_is_debounced_to_one_pending_task(review, django_capture_on_commit_callbacks):
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(5):
                funnel_service.funnel_schedule(review_id=review.pk)
        assert send.call_count == 1
        assert send.call_args.kwargs["kwargs"] == {"review_id": review.pk}
        assert send.call_args.kwargs["countdown"] == 5
        schedule = FunnelSchedule.objects.get(review=review)
        assert schedule.pending_since is not None
        # The task starts: the mark clears, and the next change queues a new task.
        funnel_service.funnel_refresh(review_id=review.pk)
        assert FunnelSchedule.objects.get(review=review).pending_since is None
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        assert send.call_count == 2


def test_a_review_whose_funnel_takes_long_to_count_is_recounted_less_often(
    review, django_capture_on_commit_callbacks
):
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        funnel_service.funnel_refresh(review_id=review.pk)
        measured = FunnelSchedule.objects.get(review=review).compute_seconds
        assert 0 < measured < 5  # the computation's own duration, stored by the worker
        # As if it had taken 2 s (a million records): the next change waits 10 times as long.
        FunnelSchedule.objects.filter(review=review).update(compute_seconds=2.0)
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        assert send.call_args.kwargs["countdown"] == 20
        # However long it took, a change waits at most a minute.
        funnel_service.funnel_refresh(review_id=review.pk)
        FunnelSchedule.objects.filter(review=review).update(compute_seconds=30.0)
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        assert send.call_args.kwargs["countdown"] == funnel_service.FUNNEL_BUSY_MAX_SECONDS
        # The "recompute" button does not wait.
        funnel_service.funnel_refresh(review_id=review.pk)
        FunnelSchedule.objects.filter(review=review).update(compute_seconds=2.0)
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_request(review=review, user=None)
        assert send.call_args.kwargs["countdown"] == 0
    assert send.call_count == 4


def test_lost_task_is_sent_again_after_a_while(review, django_capture_on_commit_callbacks):
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        FunnelSchedule.objects.filter(review=review).update(
            pending_since=timezone.now() - funnel_service.STALE_PENDING * 2
        )
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        assert send.call_count == 2


def test_status_reports_computing_until_a_newer_snapshot(
    review, django_capture_on_commit_callbacks
):
    assert selectors.funnel_status(review=review).computing is False
    with mock.patch.object(queue_service.current_app, "send_task"):
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_request(review=review, user=None)
    assert selectors.funnel_status(review=review).computing is True
    funnel_service.funnel_refresh(review_id=review.pk)
    assert selectors.funnel_status(review=review).computing is False


def test_refresh_of_a_deleted_review_is_a_no_op(db):
    assert funnel_service.funnel_refresh(review_id=987654) is None


def test_broker_outage_does_not_fail_the_change_and_retries_later(
    review, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    with mock.patch.object(
        queue_service.current_app, "send_task", side_effect=OperationalError("down")
    ):
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
    assert FunnelSchedule.objects.get(review=review).pending_since is None
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
    assert send.call_count == 1


def test_sweep_sends_a_request_the_broker_lost(review, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    with mock.patch.object(
        queue_service.current_app, "send_task", side_effect=OperationalError("down")
    ):
        with django_capture_on_commit_callbacks(execute=True):
            funnel_service.funnel_schedule(review_id=review.pk)
        FunnelSchedule.objects.filter(review=review).update(
            requested_at=timezone.now() - timedelta(minutes=1)
        )
        assert funnel_service.funnel_sweep() == 0  # still down: kept for the next sweep
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        assert funnel_service.funnel_sweep() == 1
        assert funnel_service.funnel_sweep() == 0  # pending now: not sent twice
    assert send.call_args.kwargs["kwargs"] == {"review_id": review.pk}
    funnel_service.funnel_refresh(review_id=review.pk)
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        assert funnel_service.funnel_sweep() == 0  # the snapshot is newer than the request
    assert send.call_count == 0
