"""Deduplication service on PostgreSQL: grouping, the incremental run against screened
studies, merge and unmerge restoring screening state exactly, idempotency, the command."""

import gc
import json
import re
import threading
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from screening.domain.dedup import DedupRecord, NearGroups
from screening.models import (
    AuditEvent,
    Criterion,
    Decision,
    DuplicateCandidate,
    Record,
    Resolution,
    Stage,
    Study,
    StudyMerge,
)
from screening.services import dedup as dedup_service
from screening.services.dedup import (
    candidate_decide,
    candidate_undo,
    record_split,
    review_deduplicate,
    study_unmerge,
)

from .dedup_helpers import APHASIA, STROKE, TRIAL, add_batch, paper
from .test_dedup_scale import far_records, near_by_one_blocking, records

pytestmark = pytest.mark.django_db


def first_import(review):
    acm = add_batch(
        review,
        "ACM",
        [
            paper(TRIAL, doi="10.1056/NEJMoa1208981", abstract="Short."),
            paper(STROKE, authors=["Wolf, S. L."], year=2006),
            paper(APHASIA, authors=["Breitenstein, C."], year=2017, venue="Lancet"),
        ],
    )
    ieee = add_batch(
        review,
        "IEEE",
        [
            # The same trial with its DOI spelled differently and a longer abstract.
            paper(
                TRIAL.upper(),
                doi="https://doi.org/10.1056/nejmoa1208981",
                abstract="A much longer abstract about eculizumab.",
            ),
            # A typo: the same study.
            paper(
                STROKE.replace("randomised", "randomized"), authors=["Wolf, Steven L."], year=2006
            ),
        ],
    )
    return acm, ieee


def later_import(review, *more: dict) -> list[Record]:
    """Four records after `first_import`: two duplicates of its studies, two new papers (and
    `more`)."""
    return add_batch(
        review,
        "PubMed",
        [
            paper(APHASIA, authors=["Breitenstein, C."], year=2017),
            paper(TRIAL.upper()),
            paper("Hip fracture surgery within 48 hours: a cohort study", year=2019),
            paper("Early mobilisation after knee replacement", year=2020),
            *more,
        ],
    )


def test_a_large_run_goes_in_bounded_passes_with_the_same_studies(review, monkeypatch):
    """A million-record review is deduplicated a slice of new records at a time, reading the
    existing ones a row at a time: the studies are those of one pass."""
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 2)
    monkeypatch.setattr(dedup_service, "EXISTING_PER_READ", 1)
    acm, ieee = first_import(review)
    counts = review_deduplicate(review=review)
    assert counts == {"records": 5, "studies": 3, "merged": 2, "candidates": 0}
    for a, b in ((acm[0], ieee[0]), (acm[1], ieee[1])):
        assert Record.objects.get(pk=a.pk).study_id == Record.objects.get(pk=b.pk).study_id
    runs = AuditEvent.objects.filter(review=review, action="dedup.run").order_by("id")
    assert [run.after["new_records"] for run in runs] == [2, 2, 1]


def test_a_pass_compares_the_studies_one_blocking_over_all_records_finds(review, monkeypatch):
    """A pass scans the review's grouped records as one set, however many are read at a
    time: it compares the new records with the records of exactly the studies one blocking
    over all the records pairs with them. Scanned a slice at a time, each slice made its
    own title neighbourhoods, and a pass at a million records compared many more."""
    monkeypatch.setattr(dedup_service, "EXISTING_PER_READ", 50)

    def rows(part: list) -> list[dict]:
        return [
            {
                "title": r.title,
                "year": r.year,
                "authors": list(r.authors),
                "volume": r.volume,
                "pages": r.pages,
                "doi": r.doi,
            }
            for r in part
        ]

    add_batch(review, "first", rows(records(900, "e", None) + far_records(300)))
    review_deduplicate(review=review)
    existing = [
        dedup_service._dedup_record(row)
        for row in Record.objects.filter(review=review).values(*dedup_service.DEDUP_FIELDS)
    ]
    add_batch(review, "second", rows(records(300, "n", None)))
    new = [
        dedup_service._dedup_record(row)
        for row in Record.objects.filter(review=review, study__isnull=True).values(
            *dedup_service.DEDUP_FIELDS
        )
    ]
    near_studies = near_by_one_blocking(new, existing)
    assert 100 < len(near_studies) < len({r.group for r in existing})

    review_deduplicate(review=review)

    run = AuditEvent.objects.filter(review=review, action="dedup.run").latest("id")
    assert run.after["new_records"] == 300
    assert run.after["compared_existing"] == sum(1 for r in existing if r.group in near_studies)


def test_a_pass_takes_fewer_new_records_after_one_that_found_many_existing_near(
    review, monkeypatch
):
    """At a million records the existing records near a pass's new ones outgrew the new ones:
    the next pass takes fewer, so a pass scores about RECORDS_PER_PASS records."""
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 2)
    monkeypatch.setattr(dedup_service, "RECORDS_PER_PASS", 3)
    first_import(review)
    later_import(review)
    counts = review_deduplicate(review=review)
    assert counts == {"records": 9, "studies": 5, "merged": 4, "candidates": 0}
    runs = AuditEvent.objects.filter(review=review, action="dedup.run").order_by("id")
    sizes = [(run.after["new_records"], run.after["compared_existing"]) for run in runs]
    remaining = 9
    for (taken, near), (taken_next, _) in zip(sizes, sizes[1:], strict=False):
        remaining -= taken
        assert taken_next == min(remaining, max(1, min(2, int(3 / (1 + near / taken)))))
    assert sum(taken for taken, _ in sizes) == 9
    # A pass shrank while more records waited.
    assert any(taken == 1 for taken, _ in sizes[:-1])


def test_a_pass_takes_the_last_few_waiting_records_rather_than_leave_them_a_pass(
    review, monkeypatch
):
    """A pass has fixed costs (every grouped record's id read, the existing titles sorted):
    a pass that would leave a few records takes them, up to LAST_PASS_STRETCH times its
    share (at a million records the last pass was 28,000 records for 21 s)."""
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 5)
    first_import(review)
    later_import(
        review,
        paper("Falls prevention in care homes: a cluster randomised trial", year=2018),
        paper("Delirium after hip fracture: incidence and outcomes", year=2021),
    )
    counts = review_deduplicate(review=review)

    assert counts == {"records": 11, "studies": 7, "merged": 4, "candidates": 0}
    assert not Record.objects.filter(review=review, study__isnull=True).exists()
    runs = AuditEvent.objects.filter(review=review, action="dedup.run").order_by("id")
    # 5, then the 6 left (6 <= 5 x 1.2), not 5 and 1.
    assert [run.after["new_records"] for run in runs] == [5, 6]
    # Nothing waits: no run is queued again, and a second run finds nothing to do.
    assert review_deduplicate(review=review) == counts
    assert AuditEvent.objects.filter(review=review, action="dedup.run").count() == 2


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="PostgreSQL's planner and statistics"
)
def test_assigning_records_finds_each_by_its_primary_key_whatever_the_statistics(review):
    """Statistics taken while every record was grouped (autovacuum's last analyze, before an
    import) made PostgreSQL find each record to assign through the study_id index's NULL
    entries, scanning every unassigned record per UPDATE: hours for a 200k-record import."""
    add_batch(review, "A", [paper(f"Paper number {i} on stroke") for i in range(3000)])
    Record.objects.filter(review=review).update(study=Study.objects.create(review=review))
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE screening_record")
    new = add_batch(review, "B", [paper(f"Another paper {i} on aphasia") for i in range(300)])
    with connections["default"].cursor() as cursor:
        cursor.execute("EXPLAIN " + dedup_service.ASSIGN_SQL, [1, None, new[0].pk])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "screening_record_pkey" in plan, plan
        # One statement for a chunk of records: the same, whatever the chunk's size.
        for size in (1, 300):
            ids = [r.pk for r in new[:size]]
            cursor.execute(
                "EXPLAIN " + dedup_service.ASSIGN_MANY_SQL, [ids, [1] * size, ["[]"] * size, ids]
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "screening_record_pkey" in plan, plan
            assert "Seq Scan on screening_record" not in plan, plan


def _estimated_records() -> float:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'screening_record'::regclass")
        return float(cursor.fetchone()[0])


def _analyse_records() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE screening_record")


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="PostgreSQL's planner and statistics"
)
def test_a_pass_over_a_large_share_of_the_records_analyses_them_first(review):
    """Statistics from before an import (here: no record at all) made a million-record run
    take 1,046 s instead of 744 s; a pass whose new records are a large share of the table
    analyses it first. (ANALYZE counts this transaction's own rows.)"""
    _analyse_records()
    before = _estimated_records()
    add_batch(review, "A", [paper(f"Paper number {i} on stroke") for i in range(40)])
    review_deduplicate(review=review)
    assert _estimated_records() == before + 40
    assert Record.objects.filter(review=review, study__isnull=True).count() == 0


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="PostgreSQL's planner and statistics"
)
def test_a_pass_over_a_small_share_of_the_records_leaves_their_statistics(review):
    """A few records imported into a large review do not make each run sample the table."""
    add_batch(review, "A", [paper(f"Paper number {i} on stroke") for i in range(300)])
    review_deduplicate(review=review)
    _analyse_records()
    before = _estimated_records()
    add_batch(review, "B", [paper(f"Another paper {i} on aphasia") for i in range(5)])
    counts = review_deduplicate(review=review)
    assert counts["records"] == 305
    assert _estimated_records() == before


def test_the_collector_is_held_off_during_passes_and_skips_what_earlier_passes_kept(
    review, monkeypatch
):
    """Each collection walked the million features a run keeps: a fifth of its Python time.
    The collector is held off during a pass; what earlier passes kept is frozen out of the
    later passes' collections (`gc.freeze`). Both are undone once the run is over, or has
    failed."""
    first_import(review)
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 1)
    scoring = NearGroups.deduplicate
    collector_while_scoring = []  # (collector enabled, objects frozen) at each pass's scoring
    failing_pass = {"number": 0}  # 0: none fails

    def score_noting_the_collector(*args, **kwargs):
        collector_while_scoring.append((gc.isenabled(), gc.get_freeze_count()))
        if len(collector_while_scoring) == failing_pass["number"]:
            raise RuntimeError("scoring failed")
        return scoring(*args, **kwargs)

    monkeypatch.setattr(NearGroups, "deduplicate", score_noting_the_collector)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    counts = review_deduplicate(review=review)
    assert counts["studies"] == 3
    assert len(collector_while_scoring) >= 3
    assert [enabled for enabled, _ in collector_while_scoring] == [False] * len(
        collector_while_scoring
    )
    assert collector_while_scoring[0][1] == 0
    assert all(frozen > 0 for _, frozen in collector_while_scoring[1:])
    assert gc.isenabled() and gc.get_freeze_count() == 0

    add_batch(review, "PubMed", [paper(APHASIA, year=2017), paper(STROKE, year=2019)])
    collector_while_scoring.clear()
    failing_pass["number"] = 2
    with pytest.raises(RuntimeError, match="scoring failed"):
        review_deduplicate(review=review)
    enabled, frozen = collector_while_scoring[1]
    assert not enabled and frozen > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_pass_lets_its_new_records_go_before_it_scores_them(review, monkeypatch):
    """A pass scores the normalised features, not the `DedupRecord`s read from the rows:
    those are let go first. A LaTeX title's conversion (pylatexenc) leaves frames in
    reference cycles, which held the pass's every `DedupRecord` (through the locals of the
    frames below them) until the collection after the pass: through the scoring, the run's
    peak of memory."""
    add_batch(
        review,
        "BibTeX",
        [
            paper('{\\"U}ber die Therapie der Aphasie nach Schlaganfall: eine Studie'),
            paper(TRIAL, doi="10.1056/NEJMoa1208981"),
            paper(STROKE, authors=["Wolf, S. L."], year=2006),
        ],
    )
    scoring = NearGroups.deduplicate
    alive_while_scoring = []

    def score_counting_the_records_alive(self, *args, **kwargs):
        new = {f.key for f in self.new}
        alive_while_scoring.append(
            sum(1 for o in gc.get_objects() if type(o) is DedupRecord and o.key in new)
        )
        return scoring(self, *args, **kwargs)

    monkeypatch.setattr(NearGroups, "deduplicate", score_counting_the_records_alive)
    counts = review_deduplicate(review=review)

    assert alive_while_scoring == [0]
    assert counts == {"records": 3, "studies": 3, "merged": 0, "candidates": 0}
    study = Record.objects.get(review=review, title__startswith="{").study
    assert study.title.startswith("{")


def test_groups_records_into_studies_at_the_entry_stage(review):
    acm, ieee = first_import(review)
    counts = review_deduplicate(review=review)
    assert counts == {"records": 5, "studies": 3, "merged": 2, "candidates": 0}
    entry = Stage.objects.get(review=review, is_entry=True)
    trial = Record.objects.get(pk=acm[0].pk).study
    assert Record.objects.get(pk=ieee[0].pk).study == trial
    assert trial.current_stage == entry and trial.outcome == Study.Outcome.SCREENING
    # Display fields take the most complete values.
    assert trial.abstract == "A much longer abstract about eculizumab."
    assert trial.doi
    run = AuditEvent.objects.get(review=review, action="dedup.run")
    reasons = sorted(link[3] for link in run.after["links"])
    assert len(reasons) == 2 and any("same DOI" in r for r in reasons)


def test_running_twice_changes_nothing(review):
    first_import(review)
    first = review_deduplicate(review=review)
    studies = list(Study.objects.filter(review=review).values_list("pk", "title"))
    second = review_deduplicate(review=review)
    assert first == second
    assert list(Study.objects.filter(review=review).values_list("pk", "title")) == studies


def screen(review, study, user, verdict="include"):
    title_stage = Stage.objects.get(review=review, key="title")
    full_text = Stage.objects.get(review=review, key="full_text")
    Decision.objects.create(
        review=review, study=study, stage=title_stage, reviewer=user, verdict=verdict
    )
    Resolution.objects.create(
        review=review, study=study, stage=title_stage, verdict=verdict, method="agreement"
    )
    study.current_stage = full_text
    study.save()
    return full_text


def test_incremental_import_joins_a_screened_study_without_restarting_it(review, cast):
    acm, _ = first_import(review)
    review_deduplicate(review=review)
    study = Record.objects.get(pk=acm[0].pk).study
    full_text = screen(review, study, cast["reviewer"])
    later = add_batch(
        review,
        "Scopus",
        [
            paper(TRIAL, doi="10.1056/NEJMOA1208981", pmid="23738544"),
            paper(
                "Telerehabilitation for upper limb function after stroke: a pilot study",
                authors=["Cramer, S. C."],
                year=2019,
            ),
        ],
    )
    counts = review_deduplicate(review=review)
    assert counts["studies"] == 4 and counts["merged"] == 3
    study.refresh_from_db()
    assert Record.objects.get(pk=later[0].pk).study == study
    assert study.current_stage == full_text  # screening goes on where it was
    assert study.decisions.count() == 1 and study.resolutions.count() == 1
    assert study.pmid == "23738544"
    event = AuditEvent.objects.get(review=review, action="dedup.records_joined")
    assert event.after["already_screened"] is True and event.after["stage"] == "full_text"
    new_study = Record.objects.get(pk=later[1].pk).study
    assert new_study.current_stage.is_entry


STUDY_UPDATE = re.compile(r'(\d+ times: )?UPDATE "screening_study"')


def test_joined_studies_get_their_new_fields_without_a_query_per_study(review):
    """A study that a new record joins takes the fields its records now give (here the PMID
    the new export adds), read back from the rows, with its audit event; the updates are one
    pipelined statement for the chunk, not an ORM query per study."""
    specialties = ["cardiology", "nephrology", "oncology", "neurology", "geriatrics"]
    papers = [
        paper(
            f"Outcomes of {specialties[n % 5]} patients in cohort {n}: a {n + 3}-year follow-up",
            doi=f"10.1000/cohort.{n}",
            authors=[f"Author{n}, A."],
        )
        for n in range(30)
    ]
    add_batch(review, "ACM", papers)
    assert review_deduplicate(review=review)["studies"] == 30
    before = {s.doi: s.updated_at for s in Study.objects.filter(review=review)}
    add_batch(
        review,
        "PubMed",
        [{**p, "pmid": str(40000000 + n)} for n, p in enumerate(papers)],
    )
    with CaptureQueriesContext(connections["default"]) as queries:
        counts = review_deduplicate(review=review)
    assert counts == {"records": 60, "studies": 30, "merged": 30, "candidates": 0}
    # Django's log of an executemany reads "30 times: UPDATE ...".
    study_updates = [q for q in queries if STUDY_UPDATE.match(q["sql"])]
    assert 1 <= len(study_updates) <= 2

    for study in Study.objects.filter(review=review):
        assert study.pmid == str(40000000 + int(study.doi.rsplit(".", 1)[1]))
        assert study.updated_at > before[study.doi]
        assert study.records.count() == 2
    events = AuditEvent.objects.filter(review=review, action="dedup.records_joined")
    assert events.count() == 30
    for event in events:
        study = Study.objects.get(pk=event.object_id)
        assert event.before == {"fields": {"pmid": ""}}
        assert event.after["fields"] == {"pmid": study.pmid}


def grey_pair(review):
    """Two studies the automatic step was unsure about: same title, different DOIs."""
    a = add_batch(review, "ACM", [paper(TRIAL, doi="10.1000/aaa1")])[0]
    b = add_batch(review, "IEEE", [paper(TRIAL, doi="10.1000/aaa2")])[0]
    counts = review_deduplicate(review=review)
    assert counts["candidates"] == 1
    candidate = DuplicateCandidate.objects.get(review=review)
    assert "different DOI" in candidate.reason
    return Record.objects.get(pk=a.pk), Record.objects.get(pk=b.pk), candidate


def state_of(study):
    return {
        "fields": {f: getattr(study, f) for f in ("title", "doi", "abstract", "outcome")},
        "stage": study.current_stage_id,
        "decisions": sorted(
            (d.stage_id, d.reviewer_id, d.verdict, tuple(d.reasons.values_list("pk", flat=True)))
            for d in study.decisions.all()
        ),
        "resolutions": sorted((r.stage_id, r.verdict) for r in study.resolutions.all()),
        "records": sorted(study.records.values_list("pk", flat=True)),
    }


def test_merge_then_unmerge_restores_both_studies_exactly(review, cast):
    a, b, candidate = grey_pair(review)
    kept_study, other = a.study, b.study
    screen(review, kept_study, cast["reviewer"])
    title_stage = Stage.objects.get(review=review, key="title")
    reason = Criterion.objects.filter(review=review).first()
    decision = Decision.objects.create(
        review=review,
        study=other,
        stage=title_stage,
        reviewer=cast["reviewer2"],
        verdict="exclude",
        note="not a trial",
    )
    decision.reasons.add(reason)
    before_kept, before_other = state_of(kept_study), state_of(other)

    candidate_decide(review=review, candidate=candidate, user=cast["reviewer"], is_duplicate=True)
    assert not Study.objects.filter(pk=other.pk).exists()
    kept_study.refresh_from_db()
    # The study further in screening survives with its own state; the records joined it.
    assert sorted(kept_study.records.values_list("pk", flat=True)) == sorted([a.pk, b.pk])
    assert kept_study.decisions.count() == 1
    assert review_deduplicate(review=review)["merged"] == 1

    merge = StudyMerge.objects.get(review=review)
    study_unmerge(review=review, merge=merge, user=cast["owner"])
    restored = Study.objects.get(pk=other.pk)
    kept_study.refresh_from_db()
    assert state_of(restored) == before_other
    assert state_of(kept_study) == before_kept
    assert Decision.objects.get(study=restored).note == "not a trial"
    with pytest.raises(ValidationError):
        study_unmerge(review=review, merge=merge, user=cast["owner"])
    actions = set(AuditEvent.objects.filter(review=review).values_list("action", flat=True))
    assert {"dedup.candidate_decided", "dedup.studies_merged", "dedup.studies_unmerged"} <= actions
    # A refused pair is not proposed again by a later run.
    candidate.refresh_from_db()
    assert candidate.status == DuplicateCandidate.Status.NOT_DUPLICATE
    assert review_deduplicate(review=review)["candidates"] == 0


def test_decide_is_idempotent_and_undo_reopens_the_pair(review, cast):
    _, _, candidate = grey_pair(review)
    user = cast["reviewer"]
    candidate_decide(review=review, candidate=candidate, user=user, is_duplicate=True)
    candidate_decide(review=review, candidate=candidate, user=user, is_duplicate=True)
    assert StudyMerge.objects.filter(review=review).count() == 1
    with pytest.raises(ValidationError):
        candidate_decide(review=review, candidate=candidate, user=user, is_duplicate=False)
    assert candidate_undo(review=review, user=user).pk == candidate.pk
    candidate.refresh_from_db()
    assert candidate.status == DuplicateCandidate.Status.PENDING
    assert Study.objects.filter(review=review).count() == 2
    assert candidate_undo(review=review, user=user) is None


def test_not_duplicate_keeps_both_studies(review, cast):
    _, _, candidate = grey_pair(review)
    candidate_decide(review=review, candidate=candidate, user=cast["reviewer"], is_duplicate=False)
    assert Study.objects.filter(review=review).count() == 2
    assert review_deduplicate(review=review)["candidates"] == 0


def test_split_takes_a_record_out_and_keeps_it_out(review, cast):
    acm, ieee = first_import(review)
    review_deduplicate(review=review)
    study = Record.objects.get(pk=ieee[1].pk).study
    new_study = record_split(review=review, record=ieee[1], user=cast["owner"])
    assert new_study.pk != study.pk and new_study.current_stage.is_entry
    assert review_deduplicate(review=review)["studies"] == 4
    with pytest.raises(ValidationError):
        record_split(review=review, record=Record.objects.get(pk=ieee[1].pk), user=cast["owner"])


def test_dedup_command_prints_the_contract_json(review):
    first_import(review)
    out = StringIO()
    call_command("dedup", "--review", review.slug, stdout=out)
    assert json.loads(out.getvalue()) == {
        "records": 5,
        "studies": 3,
        "merged": 2,
        "candidates": 0,
    }
    with pytest.raises(CommandError, match="No review"):
        call_command("dedup", "--review", "nope", stdout=StringIO())


@pytest.mark.worker
def test_task_runs_through_the_real_worker(celery_worker, review_and_cast):
    from screening.services.dedup import TASK_NAME
    from slrweb.celery import app

    review, _ = review_and_cast
    first_import(review)
    result = app.send_task(TASK_NAME, kwargs={"review_id": review.pk})
    assert result.get(timeout=60) == {"records": 5, "studies": 3, "merged": 2, "candidates": 0}
    assert Study.objects.filter(review=review).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_run_locks_neither_the_review_nor_its_studies_while_it_scores(
    review_and_cast, monkeypatch
):
    """Screening writes to the review's studies while a run scores: nothing may be locked."""
    review, _ = review_and_cast
    first_import(review)
    review_deduplicate(review=review)
    later = add_batch(review, "Scopus", [paper(TRIAL, doi="10.1056/NEJMoa1208981")])
    locked_elsewhere = []
    scoring = NearGroups.deduplicate

    def score_while_another_connection_locks(*args, **kwargs):
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                for table in ("screening_review", "screening_study"):
                    key = "id" if table == "screening_review" else "review_id"
                    # NOWAIT: raises at once if the run holds any of these rows.
                    cursor.execute(
                        f"SELECT id FROM {table} WHERE {key} = %s FOR UPDATE NOWAIT", [review.pk]
                    )
                    locked_elsewhere.append((table, len(cursor.fetchall())))
        finally:
            other.close()
        return scoring(*args, **kwargs)

    monkeypatch.setattr(NearGroups, "deduplicate", score_while_another_connection_locks)
    counts = review_deduplicate(review=review)
    assert locked_elsewhere == [("screening_review", 1), ("screening_study", 3)]
    assert counts["studies"] == 3
    trial = Record.objects.get(pk=later[0].pk).study
    assert trial is not None and trial.records.count() == 3


# Six papers no two of which are near: one study each.
UNRELATED_TITLES = [
    TRIAL,
    STROKE,
    APHASIA,
    "Hip fracture surgery within 48 hours: a cohort study",
    "Early mobilisation after knee replacement",
    "Statins for the primary prevention of cardiovascular disease",
]


def _connections_to_this_database() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _writers_meet_in(monkeypatch, name: str) -> set[int]:
    """Wrap the dedup service's `name` so that each connection calling it waits, at its first
    call, for a second connection's first call: both writers inside a chunk's transaction at
    once (a serial run never brings the second, and the barrier breaks after its timeout).
    Returns the backend pids of the connections that called it."""
    writers: set[int] = set()
    both_writing = threading.Barrier(2, timeout=30)
    wrapped = getattr(dedup_service, name)

    def beside_the_other_writer(**kwargs):
        pid = connections["default"].connection.info.backend_pid
        if pid not in writers:
            writers.add(pid)
            both_writing.wait()
        return wrapped(**kwargs)

    monkeypatch.setattr(dedup_service, name, beside_the_other_writer)
    return writers


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="one writer on SQLite")
@pytest.mark.django_db(transaction=True)
def test_new_studies_are_written_on_two_connections_at_once(review_and_cast, monkeypatch):
    """The server's share of a new study (its search document and GIN entries) is most of its
    cost: two connections write the chunks at once. Each chunk is whole, every record is in
    its study once the run is over, and the writers' connections are closed."""
    review, _ = review_and_cast
    monkeypatch.setattr(dedup_service, "STUDIES_PER_TRANSACTION", 1)
    records = [
        *add_batch(review, "A", [paper(title) for title in UNRELATED_TITLES]),
        *add_batch(review, "B", [paper(TRIAL)]),
    ]
    open_before = _connections_to_this_database()
    writers = _writers_meet_in(monkeypatch, "_studies_insert")
    counts = review_deduplicate(review=review)

    assert len(writers) == 2
    assert counts == {"records": 7, "studies": 6, "merged": 1, "candidates": 0}
    stored = {r.pk: r.study_id for r in Record.objects.filter(review=review)}
    assert None not in stored.values()
    assert stored[records[0].pk] == stored[records[6].pk]
    assert len({stored[r.pk] for r in records[:6]}) == 6
    for study in Study.objects.filter(review=review):
        assert study.records.count() >= 1
        assert study.title in UNRELATED_TITLES
    assert _connections_to_this_database() == open_before


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="one writer on SQLite")
@pytest.mark.django_db(transaction=True)
def test_new_records_join_existing_studies_on_two_connections_at_once(review_and_cast, monkeypatch):
    review, _ = review_and_cast
    acm, _ = first_import(review)
    review_deduplicate(review=review)
    monkeypatch.setattr(dedup_service, "STUDIES_PER_JOIN_TRANSACTION", 1)
    later = add_batch(
        review,
        "PubMed",
        [
            paper(TRIAL, doi="10.1056/NEJMoa1208981"),
            paper(APHASIA, authors=["Breitenstein, C."], year=2017, venue="Lancet"),
        ],
    )
    open_before = _connections_to_this_database()
    writers = _writers_meet_in(monkeypatch, "_study_join_event")
    counts = review_deduplicate(review=review)

    assert len(writers) == 2
    assert counts == {"records": 7, "studies": 3, "merged": 4, "candidates": 0}
    for old, new in ((acm[0], later[0]), (acm[2], later[1])):
        assert Record.objects.get(pk=new.pk).study_id == Record.objects.get(pk=old.pk).study_id
    joins = AuditEvent.objects.filter(review=review, action="dedup.records_joined")
    assert sorted(event.after["records"] for event in joins) == [[later[0].pk], [later[1].pk]]
    assert _connections_to_this_database() == open_before


@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="one writer on SQLite")
@pytest.mark.django_db(transaction=True)
def test_a_writer_that_fails_leaves_whole_studies_and_the_next_run_groups_the_rest(
    review_and_cast, monkeypatch
):
    """A chunk that fails stops the run with its error; the other chunks are whole studies,
    their connections closed, and the next run groups the records the failed one left."""
    review, _ = review_and_cast
    monkeypatch.setattr(dedup_service, "STUDIES_PER_TRANSACTION", 1)
    add_batch(review, "A", [paper(title) for title in UNRELATED_TITLES])
    open_before = _connections_to_this_database()
    insert = dedup_service._studies_insert
    calls = []

    def insert_failing_the_third(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the server went away")
        return insert(**kwargs)

    monkeypatch.setattr(dedup_service, "_studies_insert", insert_failing_the_third)
    with pytest.raises(RuntimeError, match="went away"):
        review_deduplicate(review=review)
    assert _connections_to_this_database() == open_before
    written = Study.objects.filter(review=review)
    assert 0 < written.count() < 6
    for study in written:
        assert study.records.count() == 1
    waiting = Record.objects.filter(review=review, study__isnull=True).count()
    assert waiting == 6 - written.count()

    monkeypatch.setattr(dedup_service, "_studies_insert", insert)
    counts = review_deduplicate(review=review)
    assert counts == {"records": 6, "studies": 6, "merged": 0, "candidates": 0}
    assert not Record.objects.filter(review=review, study__isnull=True).exists()


def test_an_incremental_run_scores_the_new_records_against_their_blocks_only(review):
    first_import(review)
    review_deduplicate(review=review)
    add_batch(review, "Scopus", [paper(APHASIA, authors=["Breitenstein, C."], year=2017)])
    review_deduplicate(review=review)
    run = AuditEvent.objects.filter(review=review, action="dedup.run").latest("id")
    assert run.after["new_records"] == 1
    # The aphasia study (one record) and its neighbours by title; never the whole review.
    assert 1 <= run.after["compared_existing"] <= 5
    assert run.after["joined_existing"] == 1
