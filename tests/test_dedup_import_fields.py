"""The fields duplicate detection tells two items apart by (volume, issue, pages) are read
from every export that carries them. Pure parsing, no database."""

import io

import pytest

from screening.domain.parsers import detect_format, iter_entries
from screening.domain.parsers.base import ParsedRecord

from .conftest import SHARED_DATA

EXPORTS = SHARED_DATA / "exports"


def parsed(path):
    data = path.read_bytes()
    fmt = detect_format(data[:65536], path.name)
    return [x for x in iter_entries(io.BytesIO(data), fmt) if isinstance(x, ParsedRecord)]


@pytest.mark.parametrize(
    "relative",
    [
        "asreview-citation-file-formatting/RIS/_baseline.ris",
        "asreview-citation-file-formatting/CSV/_baseline_scopus.csv",
    ],
)
def test_volume_issue_and_place_are_read(relative):
    path = EXPORTS / relative
    if not path.exists():
        pytest.skip("shared export not present")
    records = parsed(path)
    assert records and all(r.volume for r in records)
    assert any(r.issue for r in records)
    # A record whose file says where it sits (pages, or an article number) keeps it.
    placed = [r for r in records if any(r.raw.get(k) for k in ("SP", "Page start", "Art. No."))]
    assert placed and all(r.pages for r in placed)


def test_scopus_article_number_stands_for_missing_pages():
    path = EXPORTS / "asreview-citation-file-formatting/CSV/_baseline_scopus.csv"
    if not path.exists():
        pytest.skip("shared export not present")
    without_pages = [r for r in parsed(path) if not r.raw.get("Page start")]
    assert without_pages
    assert all(r.pages == r.raw["Art. No."] for r in without_pages)
