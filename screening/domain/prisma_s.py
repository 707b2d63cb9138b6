"""PRISMA-S: the 16-item checklist for reporting literature searches (Rethlefsen et al. 2021).

Pure Python: `prisma_s_items` turns the searches slrweb logged (sources, strings per source,
dates, hits, records imported, duplicate removal) and the owner's own answers into the 16
items. An item slrweb can state from stored data is "derived" (an owner's answer to it is
added after the derived text, e.g. the platform of each database); an item only the team can
state is "entered" once answered and "missing" until then.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

DERIVED = "derived"
ENTERED = "entered"
MISSING = "missing"


@dataclass(frozen=True)
class ChecklistItem:
    number: int
    item: str
    asks: str  # what the checklist asks for (Rethlefsen et al. 2021, Table 1)
    derivable: bool  # slrweb can state it from what it stores


CHECKLIST: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        1,
        "Database name",
        "Name each individual database searched, stating the platform for each.",
        True,
    ),
    ChecklistItem(
        2,
        "Multi-database searching",
        "If databases were searched simultaneously on a single platform, state the name of "
        "the platform, listing all of the databases searched.",
        False,
    ),
    ChecklistItem(3, "Study registries", "List any study registries searched.", False),
    ChecklistItem(
        4,
        "Online resources and browsing",
        "Describe any online or print source purposefully searched or browsed (e.g., tables "
        "of contents, print conference proceedings, web sites), and how this was done.",
        False,
    ),
    ChecklistItem(
        5,
        "Citation searching",
        "Indicate whether cited references or citing references were examined, and describe "
        "any methods used for locating cited/citing references.",
        False,
    ),
    ChecklistItem(
        6,
        "Contacts",
        "Indicate whether additional studies or data were sought by contacting authors, "
        "experts, manufacturers, or others.",
        False,
    ),
    ChecklistItem(
        7,
        "Other methods",
        "Describe any additional information sources or search methods used.",
        False,
    ),
    ChecklistItem(
        8,
        "Full search strategies",
        "Include the search strategies for each database and information source, copied and "
        "pasted exactly as run.",
        True,
    ),
    ChecklistItem(
        9,
        "Limits and restrictions",
        "Specify that no limits were used, or describe any limits or restrictions applied to "
        "a search (e.g., date or time period, language, study design) and provide "
        "justification for their use.",
        False,
    ),
    ChecklistItem(
        10,
        "Search filters",
        "Indicate whether published search filters were used (as originally designed or "
        "modified), and if so, cite the filter(s) used.",
        False,
    ),
    ChecklistItem(
        11,
        "Prior work",
        "Indicate when search strategies from other literature reviews were adapted or reused "
        "for a substantive part or all of the search, citing the previous review(s).",
        False,
    ),
    ChecklistItem(
        12,
        "Updates",
        "Report the methods used to update the search(es) (e.g., rerunning searches, email "
        "alerts).",
        True,
    ),
    ChecklistItem(
        13,
        "Dates of searches",
        "For each search strategy, provide the date when the last search occurred.",
        True,
    ),
    ChecklistItem(14, "Peer review", "Describe any search peer review process.", False),
    ChecklistItem(
        15,
        "Total records",
        "Document the total number of records identified from each database and other "
        "information sources.",
        True,
    ),
    ChecklistItem(
        16,
        "Deduplication",
        "Describe the processes and any software used to deduplicate records from multiple "
        "database searches and other information sources.",
        True,
    ),
)
NUMBERS = tuple(entry.number for entry in CHECKLIST)


@dataclass(frozen=True)
class SearchLine:
    """One search string run in one source on one date."""

    source: str
    string: str
    run_on: date | None
    hits_reported: int
    records_imported: int = 0
    note: str = ""


@dataclass(frozen=True)
class DedupFigures:
    records: int  # records imported
    studies: int  # deduplicated studies
    duplicates_removed: int
    merged_by_reviewer: int  # merges a person confirmed (the rest were automatic)
    candidates_pending: int
    candidates_not_duplicate: int


@dataclass(frozen=True)
class SearchLog:
    sources: list[str]
    lines: list[SearchLine]
    dedup: DedupFigures
    # Records imported without a search run (e.g. a hand-searched list), per source.
    unlogged_imports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PrismaSItem:
    number: int
    item: str
    text: str
    source: str  # derived | entered | missing

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "item": self.item, "text": self.text, "source": self.source}


def _n(value: int) -> str:
    return f"{value:,}"


def _day(value: date | None) -> str:
    return value.isoformat() if value else "date not logged"


def _lines_by_source(log: SearchLog) -> dict[str, list[SearchLine]]:
    by_source: dict[str, list[SearchLine]] = {name: [] for name in log.sources}
    for line in log.lines:
        by_source.setdefault(line.source, []).append(line)
    return by_source


def _databases(log: SearchLog) -> str:
    if not log.sources:
        return ""
    return f"{len(log.sources)} sources searched: " + "; ".join(log.sources) + "."


def _strategies(log: SearchLog) -> str:
    parts = []
    for source, lines in _lines_by_source(log).items():
        if not lines:
            continue
        parts.append(f"{source}:")
        for line in lines:
            note = f"; {line.note}" if line.note else ""
            parts.append(f"- {line.string}  [run {_day(line.run_on)}{note}]")
    return "\n".join(parts)


def _updates(log: SearchLog) -> str:
    """Strings re-run in a source on a later date (a search update)."""
    dates: dict[tuple[str, str], set[date]] = defaultdict(set)
    for line in log.lines:
        if line.run_on:
            dates[(line.source, line.string)].add(line.run_on)
    rerun = {key: sorted(days) for key, days in dates.items() if len(days) > 1}
    if not rerun:
        return ""
    all_days = sorted({day for days in rerun.values() for day in days})
    first, later = all_days[0], all_days[1:]
    return (
        f"Searches were re-run: {len(rerun)} string-and-source searches first run on "
        f"{first.isoformat()} were run again on " + ", ".join(d.isoformat() for d in later) + "."
    )


def _dates(log: SearchLog) -> str:
    parts = []
    for source, lines in _lines_by_source(log).items():
        days = [line.run_on for line in lines if line.run_on]
        if days:
            parts.append(f"{source}: last searched {max(days).isoformat()}")
    return "\n".join(parts)


def _totals(log: SearchLog) -> str:
    if not log.lines and not log.unlogged_imports:
        return ""
    parts = []
    reported_total = imported_total = 0
    for source, lines in _lines_by_source(log).items():
        reported = sum(line.hits_reported for line in lines)
        imported = sum(line.records_imported for line in lines) + log.unlogged_imports.get(
            source, 0
        )
        reported_total += reported
        imported_total += imported
        parts.append(f"{source}: {_n(reported)} records reported, {_n(imported)} imported")
    parts.append(f"Total: {_n(reported_total)} records reported, {_n(imported_total)} imported")
    unlogged = sum(log.unlogged_imports.values())
    if unlogged:
        parts.append(
            f"({_n(unlogged)} of the imported records came from files not tied to a search.)"
        )
    return "\n".join(parts)


def _deduplication(log: SearchLog) -> str:
    dedup = log.dedup
    if dedup.records == 0:
        return ""
    automatic = max(dedup.duplicates_removed - dedup.merged_by_reviewer, 0)
    text = (
        "Duplicates were removed with slrweb's duplicate detection: records are compared within "
        "blocks (same DOI or PMID, neighbouring normalised titles, first author with first "
        "page, year with volume and page) and scored on field agreement; pairs above the "
        "automatic threshold are merged, pairs in the grey zone are decided by a reviewer "
        "side by side. "
        f"{_n(dedup.records)} records imported, {_n(dedup.duplicates_removed)} duplicates "
        f"removed ({_n(automatic)} automatically, {_n(dedup.merged_by_reviewer)} confirmed by "
        f"a reviewer), {_n(dedup.studies)} unique records left."
    )
    if dedup.candidates_not_duplicate:
        text += f" {_n(dedup.candidates_not_duplicate)} suspected pairs were judged distinct."
    if dedup.candidates_pending:
        text += f" {_n(dedup.candidates_pending)} suspected pairs still await a decision."
    return text


DERIVERS = {
    1: _databases,
    8: _strategies,
    12: _updates,
    13: _dates,
    15: _totals,
    16: _deduplication,
}


def prisma_s_items(*, log: SearchLog, entered: dict[int, str]) -> list[PrismaSItem]:
    """All 16 items, in checklist order."""
    items = []
    for entry in CHECKLIST:
        derived = DERIVERS[entry.number](log) if entry.number in DERIVERS else ""
        own = (entered.get(entry.number) or "").strip()
        if derived:
            text, source = (f"{derived}\n{own}" if own else derived), DERIVED
        elif own:
            text, source = own, ENTERED
        else:
            text, source = "", MISSING
        items.append(PrismaSItem(entry.number, entry.item, text, source))
    return items


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~-])")


def _md(text: str) -> str:
    """Escape a line for Markdown: search strings use * and () as operators, not formatting."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def prisma_s_markdown(*, title: str, items: list[PrismaSItem]) -> str:
    out = [f"# PRISMA-S search report: {_md(title)}", ""]
    out.append(
        "Items follow PRISMA-S (Rethlefsen et al. 2021). Source of each answer: derived from "
        "the searches logged in slrweb, entered by the review team, or missing."
    )
    for item in items:
        out += ["", f"## {item.number}. {_md(item.item)}", ""]
        if item.text:
            out.append("  \n".join(_md(line) for line in item.text.splitlines()))
        else:
            out.append("*Not reported yet.*")
        out += ["", f"*Source: {item.source}*"]
    return "\n".join(out) + "\n"
