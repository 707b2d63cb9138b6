"""Quality floors on the shared real benchmarks (bib-dedupe's stroke, haematology, respiratory),
measured on the domain code the service runs. The floors are the figures the code reached when
they were set; the comparison with bib-dedupe is run, not typed in: benchmarks/dedup_bench.py
runs both on the same files in one run (docs/benchmarks.md)."""

import csv
from itertools import combinations

import pytest

from screening.domain.dedup import DedupRecord, deduplicate
from screening.domain.normalise import split_authors

from .conftest import SHARED_DATA

BENCH = SHARED_DATA / "dedup" / "bib-dedupe-benchmark"

# name: (precision floor, F1 floor of the automatic merges)
FLOORS = {
    "stroke": (1.0, 0.9979),
    "haematology": (1.0, 0.9060),
    "respiratory": (1.0, 0.9871),
}


def read_set(name):
    with (BENCH / name / "records_pre_merged.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (BENCH / name / "merged_record_ids.csv").open(newline="", encoding="utf-8") as fh:
        truth = [r["merged_ids"].split(";") for r in csv.DictReader(fh) if r["merged_ids"]]
    records = [
        DedupRecord(
            key=row["ID"],
            title=row["title"] or "",
            authors=tuple(split_authors(row["author"] or "")),
            year=int(float(row["year"])) if row["year"] else None,
            venue=row["journal"] or "",
            volume=row["volume"] or "",
            issue=row["number"] or "",
            pages=row["pages"] or "",
            publication_type=row["ENTRYTYPE"] or "",
        )
        for row in rows
    ]
    return records, truth


def pairs(clusters):
    return {tuple(sorted(p)) for c in clusters for p in combinations(c, 2)}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_floor_on_shared_benchmark(name):
    if not BENCH.exists():
        pytest.skip("shared benchmark data not present")
    precision_floor, f1_floor = FLOORS[name]
    records, truth = read_set(name)
    result = deduplicate(records)
    predicted, true = pairs(result.clusters), pairs(truth)
    tp = len(predicted & true)
    precision = tp / len(predicted)
    recall = tp / len(true)
    f1 = 2 * precision * recall / (precision + recall)
    assert precision >= max(precision_floor, 0.995)
    assert round(f1, 4) >= f1_floor
    # The queue stays small: a reviewer must not face hundreds of false candidates.
    assert len(result.candidates) <= 0.05 * len(records)
