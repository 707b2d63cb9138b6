"""PRISMA-S builder: pure Python, no database."""

from datetime import date

from screening.domain.prisma_s import (
    CHECKLIST,
    DedupFigures,
    SearchLine,
    SearchLog,
    prisma_s_items,
    prisma_s_markdown,
)

NO_DEDUP = DedupFigures(0, 0, 0, 0, 0, 0)


def log_two_sources(**kwargs) -> SearchLog:
    lines = [
        SearchLine("ACM", '"MLOps"', date(2021, 7, 31), 5, 4),
        SearchLine("ACM", '"machine learn*" AND (ops)', date(2021, 7, 31), 10, 10),
        SearchLine("IEEE", '"MLOps"', date(2021, 7, 30), 15, 15, note="journals only"),
    ]
    return SearchLog(
        sources=["ACM", "IEEE"],
        lines=kwargs.pop("lines", lines),
        dedup=kwargs.pop("dedup", NO_DEDUP),
    )


def by_number(items):
    return {item.number: item for item in items}


def test_checklist_has_the_sixteen_items_in_order():
    assert [entry.number for entry in CHECKLIST] == list(range(1, 17))
    assert CHECKLIST[13].item == "Peer review"


def test_derived_items_state_sources_strings_dates_and_totals():
    items = by_number(prisma_s_items(log=log_two_sources(), entered={}))
    assert len(items) == 16
    assert items[1].source == "derived"
    assert items[1].text == "2 sources searched: ACM; IEEE."
    assert items[8].text.splitlines() == [
        "ACM:",
        '- "MLOps"  [run 2021-07-31]',
        '- "machine learn*" AND (ops)  [run 2021-07-31]',
        "IEEE:",
        '- "MLOps"  [run 2021-07-30; journals only]',
    ]
    assert items[13].text.splitlines() == [
        "ACM: last searched 2021-07-31",
        "IEEE: last searched 2021-07-30",
    ]
    assert items[15].text.splitlines() == [
        "ACM: 15 records reported, 14 imported",
        "IEEE: 15 records reported, 15 imported",
        "Total: 30 records reported, 29 imported",
    ]


def test_items_only_the_team_knows_are_missing_until_entered():
    items = by_number(prisma_s_items(log=log_two_sources(), entered={14: "  "}))
    assert items[14].source == "missing"
    assert items[14].text == ""
    items = by_number(prisma_s_items(log=log_two_sources(), entered={14: "PRESS by a librarian"}))
    assert (items[14].source, items[14].text) == ("entered", "PRESS by a librarian")


def test_owner_text_is_added_after_a_derived_item():
    items = by_number(prisma_s_items(log=log_two_sources(), entered={1: "ACM via dl.acm.org"}))
    assert items[1].source == "derived"
    assert items[1].text == "2 sources searched: ACM; IEEE.\nACM via dl.acm.org"


def test_updates_are_derived_only_when_a_search_was_rerun():
    assert by_number(prisma_s_items(log=log_two_sources(), entered={}))[12].source == "missing"
    rerun = [
        SearchLine("ACM", "x", date(2021, 1, 1), 5),
        SearchLine("ACM", "x", date(2022, 1, 1), 7),
        SearchLine("IEEE", "x", date(2021, 1, 1), 2),
    ]
    item = by_number(prisma_s_items(log=log_two_sources(lines=rerun), entered={}))[12]
    assert item.source == "derived"
    assert item.text == (
        "Searches were re-run: 1 string-and-source searches first run on 2021-01-01 were run "
        "again on 2022-01-01."
    )
    assert by_number(prisma_s_items(log=log_two_sources(lines=rerun), entered={}))[13].text == (
        "ACM: last searched 2022-01-01\nIEEE: last searched 2021-01-01"
    )


def test_deduplication_counts_split_automatic_and_reviewer_merges():
    dedup = DedupFigures(
        records=1905,
        studies=1655,
        duplicates_removed=250,
        merged_by_reviewer=10,
        candidates_pending=2,
        candidates_not_duplicate=3,
    )
    text = by_number(prisma_s_items(log=log_two_sources(dedup=dedup), entered={}))[16].text
    assert "1,905 records imported, 250 duplicates removed (240 automatically, 10 confirmed" in text
    assert "1,655 unique records left" in text
    assert "3 suspected pairs were judged distinct" in text
    assert "2 suspected pairs still await a decision" in text


def test_nothing_is_derived_for_an_empty_review():
    empty = SearchLog(sources=[], lines=[], dedup=NO_DEDUP)
    assert {item.source for item in prisma_s_items(log=empty, entered={})} == {"missing"}


def test_markdown_escapes_search_operators_and_marks_missing_items():
    items = prisma_s_items(log=log_two_sources(), entered={})
    text = prisma_s_markdown(title="Ops *review*", items=items)
    assert text.startswith("# PRISMA-S search report: Ops \\*review\\*\n")
    assert '\\"machine learn\\*\\" AND \\(ops\\)' not in text  # quotes are not escaped
    assert '"machine learn\\*" AND \\(ops\\)' in text
    assert text.count("\n## ") == 16
    assert "## 14. Peer review\n\n*Not reported yet.*\n\n*Source: missing*" in text
