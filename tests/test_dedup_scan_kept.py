"""The near scan over the features a run keeps (`ScanFeatures`, issue 17): a pass scans the
review's existing records a slice at a time without normalising them again, and finds exactly
the studies that one blocking over the new records and each slice finds."""

import pytest

from screening.domain.dedup import DedupRecord, NearGroups, scan_features

from .test_dedup_scale import far_records, near_by_one_blocking, records


def same_title_records(new: list[DedupRecord]) -> list[DedupRecord]:
    """Existing records with a new record's title (identical-title runs across the slices)
    and a blank title (no title block)."""
    return [
        DedupRecord(key=f"t{i}", title=r.title, year=1990, group=f"t{i // 2}")
        for i, r in enumerate(new[:40])
    ] + [DedupRecord(key=f"b{i}", title="", pages="1-9", group=f"b{i}") for i in range(5)]


@pytest.mark.parametrize("slice_size", [1, 7, 250, 5000])
def test_a_sliced_scan_over_kept_features_finds_what_one_blocking_per_slice_finds(slice_size):
    new = records(300, "n", None)
    existing = records(900, "e", 3) + far_records(300) + same_title_records(new)
    slices = [existing[i : i + slice_size] for i in range(0, len(existing), slice_size)]
    expected: set = set()
    for part in slices:
        expected |= near_by_one_blocking(new, part)
    assert len(expected) > 100

    kept = NearGroups(new)
    shared: dict = {}
    for part in slices:
        kept.scan_features(scan_features(part, shared))
    assert kept.touched == expected

    plain = NearGroups(new)
    for part in slices:
        plain.scan(part)
    assert plain.touched == expected


def test_kept_features_of_the_new_records_scan_like_the_records():
    """A pass keeps its new records' features for the next passes: they scan like the records
    read and normalised again."""
    first = records(200, "a", None)
    later = records(150, "z", None)
    near = NearGroups(first)
    kept = near.scan_kept({})
    for f, r in zip(kept, first, strict=True):
        f.group = f"s{r.key}"
    grouped = [
        DedupRecord(**{**{k: getattr(r, k) for k in r.__slots__}, "group": f"s{r.key}"})
        for r in first
    ]
    by_records = NearGroups(later)
    by_records.scan(grouped)
    by_kept = NearGroups(later)
    by_kept.scan_features(kept)
    assert by_kept.touched == by_records.touched
    assert len(by_kept.touched) > 20


def test_a_record_scored_with_its_kept_title_features_is_the_record_normalised_again():
    """A near record read again for scoring takes its title's features from the run's kept
    scan features: the same features, and so the same result."""
    from screening.domain.dedup import _Feat

    from .dedup_helpers import STROKE, TRIAL

    near = [
        DedupRecord(key=10, title=STROKE, year=2006, authors=("Wolf, S. L.",), group=1),
        DedupRecord(key=11, title="Erratum: " + TRIAL, year=2013, group=2),
        DedupRecord(key=12, title="[Ischemic stroke in the young]", year=2001, group=3),
        DedupRecord(key=13, title="Editorial", venue="Lancet", volume="3", group=4),
        DedupRecord(key=14, title="", pages="7-9", group=5),
    ]
    kept = {f.key: f for f in scan_features(near, {})}
    for r in near:
        plain, known = _Feat(r), _Feat(r, kept[r.key])
        assert {n: getattr(known, n) for n in _Feat.__slots__} == {
            n: getattr(plain, n) for n in _Feat.__slots__
        }
    new = [DedupRecord(key=1, title=STROKE.upper(), year=2006, authors=("Wolf, S.",))]
    ours = NearGroups(new).deduplicate(near, known=kept)
    reference = NearGroups(new).deduplicate(near)
    assert ours.clusters == reference.clusters and ours.merges == reference.merges
    assert ours.candidates == reference.candidates


@pytest.mark.django_db
def test_a_pass_reads_the_studies_of_the_kept_records_again(review, monkeypatch):
    """A run keeps the features of the records it has read, not their studies: a study merged
    into another between two passes is found under its new study by the next pass."""
    from screening.models import Record, Stage, Study
    from screening.services import dedup as dedup_service
    from screening.services.dedup import review_deduplicate

    from .dedup_helpers import APHASIA, STROKE, add_batch, paper

    (aphasia, _) = add_batch(
        review,
        "ACM",
        [paper(APHASIA, authors=["Breitenstein, C."], year=2017), paper(STROKE)],
    )
    review_deduplicate(review=review)
    monkeypatch.setattr(dedup_service, "NEW_PER_PASS", 1)
    hip, again = add_batch(
        review,
        "PubMed",
        [
            paper("Hip fracture surgery within 48 hours: a cohort study", year=2019),
            paper(APHASIA.upper(), authors=["Breitenstein, C."], year=2017),
        ],
    )
    scans = []
    records_near = dedup_service._records_near

    def merge_before_the_second_pass(*args, **kwargs):
        scans.append(1)
        if len(scans) == 2:
            # What a reviewer's merge does: the records move, the absorbed study goes.
            old = Record.objects.get(pk=aphasia.pk).study
            kept = Study.objects.create(
                review=review,
                title=old.title,
                current_stage=Stage.objects.get(review=review, is_entry=True),
            )
            Record.objects.filter(study=old).update(study=kept)
            old.delete()
        return records_near(*args, **kwargs)

    monkeypatch.setattr(dedup_service, "_records_near", merge_before_the_second_pass)
    review_deduplicate(review=review)
    assert len(scans) == 2
    merged = Record.objects.get(pk=aphasia.pk).study_id
    assert Record.objects.get(pk=again.pk).study_id == merged
    assert Record.objects.get(pk=hip.pk).study_id not in (None, merged)
    assert not Record.objects.filter(review=review, study__isnull=True).exists()
