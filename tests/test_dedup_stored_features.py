"""A grouped record's scan features stored with it (`Record.dedup_features`, issue 17): each
dedup run read and normalised every grouped record of the review again to find the studies
near its new records, a quarter of the run of a 100,000-record import into 400,000 records. A
run now stores the features as it groups a record, and later runs read them."""

import pytest
from django.db import connection, transaction

from screening.domain import dedup as dedup_domain
from screening.domain.dedup import ScanFeatures, _Feat
from screening.models import Record, Study
from screening.services.dedup import (
    DEDUP_FIELDS,
    _assign_records,
    _dedup_record,
    review_deduplicate,
)
from screening.services.reviews import review_create

from .dedup_helpers import APHASIA, STROKE, TRIAL, add_batch, paper
from .test_dedup_benchmarks import BENCH, read_set

pytestmark = pytest.mark.django_db


def normalised(record: Record) -> list:
    """The record's features, normalised from its fields as they are stored."""
    return ScanFeatures(_Feat(_dedup_record(row(record))), {}).stored()


def row(record: Record) -> dict:
    return Record.objects.filter(pk=record.pk).values(*DEDUP_FIELDS).get()


def stored(record: Record) -> object:
    return Record.objects.filter(pk=record.pk).values_list("dedup_features", flat=True).get()


def first_import(review) -> list[Record]:
    return add_batch(
        review,
        "ACM",
        [
            paper(TRIAL, doi="10.1056/NEJMoa1208981"),
            paper(TRIAL.upper(), doi="https://doi.org/10.1056/nejmoa1208981"),
            paper(STROKE, authors=["Wolf, S. L."], year=2006, pages="2095-104", volume="296"),
            paper(APHASIA, authors=["Breitenstein, C."], year=2017, venue="Lancet"),
            paper("Erratum: " + STROKE, authors=["Wolf, S. L."], year=2007),
            paper("", authors=["Nobody, A."], pages="7-9", volume="3"),
        ],
    )


def title_normalisations(monkeypatch) -> list[str]:
    """The titles the domain normalises from here on."""
    titles: list[str] = []
    original = dedup_domain._title_features

    def counted(title, publication_type):
        titles.append(title)
        return original(title, publication_type)

    monkeypatch.setattr(dedup_domain, "_title_features", counted)
    return titles


def test_a_run_stores_the_features_of_every_record_it_groups(review):
    records = first_import(review)
    review_deduplicate(review=review)
    for record in records:
        record.refresh_from_db()
        assert record.study_id is not None
        assert stored(record) == normalised(record)
    # Every stored copy reads back as the features normalised from the record.
    for record in records:
        back = ScanFeatures.from_stored(record.pk, record.study_id, stored(record), {})
        assert back is not None and back.stored() == normalised(record)


def test_a_later_run_reads_the_stored_features_and_normalises_only_its_new_records(
    review, monkeypatch
):
    first_import(review)
    review_deduplicate(review=review)
    studies_before = Study.objects.filter(review=review).count()
    titles = title_normalisations(monkeypatch)
    new = add_batch(
        review,
        "IEEE",
        [
            paper(TRIAL.lower() + ".", doi="10.1056/NEJMoa1208981"),
            paper("Mirror therapy for phantom limb pain", year=2007),
        ],
    )
    review_deduplicate(review=review)
    # The two new records' titles only: the grouped records near them (the trial's study)
    # and the others were read as stored.
    assert sorted(titles) == sorted(r.title for r in new)
    trial = Record.objects.get(pk=new[0].pk)
    assert Record.objects.filter(study=trial.study_id).count() == 3
    assert Study.objects.filter(review=review).count() == studies_before + 1
    for record in new:
        assert stored(record) == normalised(record)


def test_features_missing_or_stored_by_another_version_are_normalised_once_and_stored(
    review, monkeypatch
):
    records = first_import(review)
    review_deduplicate(review=review)
    missing, outdated, current = records[2], records[3], records[5]
    Record.objects.filter(pk=missing.pk).update(dedup_features=None)
    old = [ScanFeatures.STORED_VERSION - 1, *normalised(outdated)[1:]]
    Record.objects.filter(pk=outdated.pk).update(dedup_features=old)
    titles = title_normalisations(monkeypatch)
    add_batch(review, "IEEE", [paper("Mirror therapy for phantom limb pain", year=2007)])
    review_deduplicate(review=review)
    assert sorted(titles) == sorted(
        [missing.title, outdated.title, "Mirror therapy for phantom limb pain"]
    )
    assert stored(missing) == normalised(missing)
    assert stored(outdated) == normalised(outdated)
    assert stored(current) == normalised(current)

    # Stored now: the next run normalises neither.
    titles.clear()
    add_batch(review, "Scopus", [paper("Music therapy after stroke", year=2010)])
    review_deduplicate(review=review)
    assert titles == ["Music therapy after stroke"]


def grouping(review) -> set[frozenset[tuple[str, int]]]:
    """The review's studies as sets of (source, position) of their records."""
    by_study: dict[int, set[tuple[str, int]]] = {}
    for study, source, position in Record.objects.filter(review=review).values_list(
        "study_id", "batch__source__name", "position"
    ):
        by_study.setdefault(study, set()).add((source, position))
    return {frozenset(members) for members in by_study.values()}


def test_a_run_over_stored_features_groups_as_a_run_that_normalises_every_record(review):
    """The stroke benchmark imported in two halves, the second half deduplicated once against
    stored features and once (another review) with every stored copy wiped: the same studies
    and the same pairs queued for a human."""
    if not BENCH.exists():
        pytest.skip("shared benchmark data not present")
    records, _ = read_set("stroke")
    papers = [
        {
            "title": r.title,
            "authors": list(r.authors),
            "year": r.year,
            "venue": r.venue,
            "volume": r.volume[:60],
            "issue": r.issue[:60],
            "pages": r.pages[:60],
            "publication_type": r.publication_type[:100],
        }
        for r in records
    ]
    half = len(papers) // 2
    wiped = review_create(slug="wiped", title="Wiped", owner=review.created_by)
    for each in (review, wiped):
        add_batch(each, "First", papers[:half])
        review_deduplicate(review=each)
        add_batch(each, "Second", papers[half:])
    Record.objects.filter(review=wiped).update(dedup_features=None)
    assert review_deduplicate(review=review) == review_deduplicate(review=wiped)
    assert grouping(review) == grouping(wiped)
    assert len(grouping(review)) < len(papers) - 100  # many duplicates across the halves
    queued = {
        each.pk: sorted(
            (a.batch.source.name, a.position, b.batch.source.name, b.position)
            for a, b in (
                (c.record_a, c.record_b)
                for c in each.duplicate_candidates.select_related(
                    "record_a__batch__source", "record_b__batch__source"
                )
            )
        )
        for each in (review, wiped)
    }
    assert queued[review.pk] == queued[wiped.pk]


def test_records_grouped_during_a_run_are_read_from_their_stored_features(review, monkeypatch):
    """A later pass reads the grouped records it did not keep (grouped meanwhile) by id: their
    stored features if any, else normalised from their fields and stored."""
    from screening.services.dedup import _Kept

    records = first_import(review)
    review_deduplicate(review=review)
    unstored = records[0]
    Record.objects.filter(pk=unstored.pk).update(dedup_features=None)
    rows = list(Record.objects.filter(review=review).order_by("id").values_list("id", "study_id"))
    titles = title_normalisations(monkeypatch)
    kept = _Kept()
    kept.read(rows)
    assert titles == [unstored.title]
    for record in records:
        record.refresh_from_db()
        assert kept.features[record.pk].stored() == normalised(record) == stored(record)
        assert kept.features[record.pk].group == record.study_id


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan cache mode")
def test_assigning_records_leaves_the_transaction_planned_as_the_session_is(review):
    """The assignment's UPDATE is planned for its values (`_server_bound_cursor`), and only it:
    the foreign-key check of each record at commit planned so took 300 CPU-s at a million."""
    records = first_import(review)
    study = Study.objects.create(review=review, title=TRIAL)
    features = {r.pk: ScanFeatures(_Feat(_dedup_record(row(r))), {}) for r in records[:2]}

    def plan_cache_mode() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            return cursor.fetchone()[0]

    session = plan_cache_mode()
    with transaction.atomic():
        assert _assign_records([(study.pk, key) for key in features], features) == 2
        assert plan_cache_mode() == session

    for record in records[:2]:
        record.refresh_from_db()
        assert record.study_id == study.pk
        assert stored(record) == normalised(record)
    assert Record.objects.filter(review=review, study__isnull=True).count() == len(records) - 2
