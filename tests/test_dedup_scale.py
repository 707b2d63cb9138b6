"""Deduplication at scale keeps its results: the near-study scan (which keeps no set of pairs
and walks only the blocks of a new record) finds what one blocking over all records finds,
and studies written in bulk (COPY on PostgreSQL) carry every display field of their records
and are found by the studies search."""

import pytest

from screening.domain.dedup import (
    DedupRecord,
    NearGroups,
    _Feat,
    _worth_scoring,
    candidate_pairs,
    deduplicate,
)
from screening.models import Study
from screening.selectors.study_list import studies_search
from screening.services.dedup import review_deduplicate

from .dedup_helpers import STROKE, TRIAL, add_batch, paper

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma".split()


def records(count: int, prefix: str, group_every: int | None) -> list[DedupRecord]:
    """Titles sharing words, first authors, pages and DOIs often enough to fill every block."""
    return [
        DedupRecord(
            key=f"{prefix}{i}",
            title=f"{WORDS[i % 12]} {WORDS[(i // 12) % 12]} {WORDS[(i // 7) % 12]} trial {i % 40}",
            year=2000 + i % 5,
            authors=(f"Author{i % 31}, A.",),
            volume=str(i % 9),
            pages=f"{i % 50}-{i % 50 + 9}",
            doi=f"10.1000/{i % 70}" if i % 3 == 0 else "",
            group=f"s{i // group_every}" if group_every else None,
        )
        for i in range(count)
    ]


def near_by_one_blocking(new: list[DedupRecord], existing: list[DedupRecord]) -> set:
    """The definition: the groups of the existing records paired with a new record by one
    blocking over all of them and worth scoring."""
    feats = [_Feat(r) for r in [*new, *existing]]
    pairs = [(i, j) for i, j in candidate_pairs(feats) if i < len(new) <= j]
    worth = _worth_scoring([feats[i] for i, _ in pairs], [feats[j] for _, j in pairs])
    return {feats[j].group for (_, j), worth_it in zip(pairs, worth, strict=True) if worth_it}


def far_records(count: int) -> list[DedupRecord]:
    """Existing records in studies of their own, their titles far from those of `records`."""
    return [
        DedupRecord(
            key=f"f{i}",
            title=f"Zoonotic omega survey {i} of rural registries",
            year=1980,
            authors=(f"Other{i}, B.",),
            group=f"far{i}",
        )
        for i in range(count)
    ]


def test_the_near_scan_finds_the_groups_one_blocking_over_all_records_finds():
    new = records(300, "n", None)
    far = far_records(300)
    existing = records(900, "e", 3) + far
    expected = near_by_one_blocking(new, existing)
    # Not trivial either way: many studies near, and some far ones left out.
    assert len(expected) > 100
    assert not {r.group for r in far} <= expected

    whole = NearGroups(new)
    whole.scan(existing)
    assert whole.touched == expected


def test_near_groups_deduplicate_equals_deduplicate_of_the_records():
    new = [
        DedupRecord(key=1, title=STROKE, year=2006, authors=("Wolf, S. L.",)),
        DedupRecord(key=2, title=STROKE.upper(), year=2006, authors=("Wolf, S.",)),
        DedupRecord(key=3, title=TRIAL, year=2012, authors=("Legendre, C. M.",)),
    ]
    near = [DedupRecord(key=4, title=TRIAL + ".", year=2012, authors=("Legendre, C.",), group=9)]
    ours = NearGroups(new).deduplicate(near, cannot_link=[(1, 2)])
    reference = deduplicate([*new, *near], cannot_link=[(1, 2)])
    assert sorted(map(sorted, ours.clusters)) == sorted(map(sorted, reference.clusters))
    assert ours.candidates == reference.candidates
    assert ours.merges == reference.merges


@pytest.mark.django_db
def test_studies_written_in_bulk_carry_their_fields_and_are_searchable(review):
    fields = {
        "abstract": "Thromboprophylaxis with low molecular weight heparin after surgery.",
        "authors": ["Wolf, S. L.", "Winstein, C. J."],
        "year": 2006,
        "venue": "JAMA",
        "doi": "10.1001/jama.296.17.2095",
        "pmid": "17077374",
        "url": "https://example.org/excite",
        "keywords": ["stroke", "rehabilitation"],
        "publication_type": "Journal Article",
    }
    add_batch(review, "PubMed", [paper(STROKE, **fields), paper(TRIAL, authors=["Licht, C."])])
    review_deduplicate(review=review)

    study = Study.objects.get(review=review, title=STROKE)
    for name, value in fields.items():
        assert getattr(study, name) == value, name
    assert study.outcome == Study.Outcome.SCREENING
    assert study.current_stage is not None and study.current_stage.is_entry
    assert study.created_at is not None and study.updated_at is not None
    assert study.records.count() == 1
    studies = Study.objects.filter(review=review)
    assert list(studies_search(studies, "thromboprophylaxis")) == [study]
    assert list(studies_search(studies, "Winstein")) == [study]
