"""Funnel arithmetic: aggregate counts in, the PRISMA 2020 funnel (PRISMA2020 field names) out.

Pure Python. The selectors count rows in the database; this module only adds and routes those
counts, so the same numbers can be checked without a database. Field names follow the
PRISMA2020 package (Haddaway et al. 2022, `inst/extdata/PRISMA.csv`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INCLUDED = "included"
EXCLUDED = "excluded"
FULL_TEXT_KIND = "full_text"

# Labels of the review's extra full-text exclusion reasons (Criterion.kind "other"), in the
# paper's wording; an "other" reason without an entry here is reported by its own text.
OTHER_REASON_LABELS = {
    "INVALID-TYPE": "invalid publication type",
    "DUPLICATE": "duplicate",
}
EXCLUSION_CRITERIA_LABEL = "exclusion criteria"
QUALITY_LABEL = "quality score below threshold"
NO_REASON_LABEL = "reason not recorded"

# The boxes of the diagram, in reading order, with the study list behind each (drill-down).
BOXES = (
    "database_results",
    "duplicates",
    "excluded_automatic",
    "excluded_other",
    "records_screened",
    "records_excluded",
    "dbr_sought_reports",
    "dbr_notretrieved_reports",
    "dbr_assessed",
    "dbr_excluded",
    "new_studies",
)
# The boxes an updated review's diagram adds (Page et al. 2021, updated reviews).
UPDATED_BOXES = ("previous_studies", "total_studies")


@dataclass(frozen=True)
class StageCounts:
    """Resolutions of one stage by verdict, with the stage's routing."""

    key: str
    name: str
    kind: str
    route_include: str
    route_uncertain: str
    route_exclude: str
    include: int = 0
    uncertain: int = 0
    exclude: int = 0
    awaiting: int = 0

    @property
    def screened(self) -> int:
        return self.include + self.uncertain + self.exclude

    def routed_to(self, target: str) -> int:
        """How many of this stage's resolved studies its routing sends to `target`."""
        return sum(
            count
            for route, count in (
                (self.route_include, self.include),
                (self.route_uncertain, self.uncertain),
                (self.route_exclude, self.exclude),
            )
            if route == target
        )


@dataclass(frozen=True)
class FunnelCounts:
    """Every aggregate the funnel needs, as counted in the database.

    records_by_source: records imported per source (records of that source's batches).
    records_deduplicated: records already attached to a study (the rest await deduplication).
    studies: deduplicated studies.
    stages: per-stage resolution counts, in stage order.
    not_retrieved: studies sought at full text whose full text is marked not retrievable.
    fulltext_exclusions: full-text exclusions grouped by reason label (one reason per study).
    quality_excluded: included studies below the review's quality threshold (when enabled).
    """

    records_by_source: Mapping[str, int]
    records_deduplicated: int
    studies: int
    stages: Sequence[StageCounts]
    not_retrieved: int = 0
    fulltext_exclusions: Mapping[str, int] = field(default_factory=dict)
    quality_excluded: int = 0
    excluded_automatic: int = 0
    excluded_other: int = 0


def reason_label(*, kind: str, code: str, text: str) -> str:
    """The funnel label of one exclusion reason (criteria are reported together, PRISMA style)."""
    if kind == "other":
        return OTHER_REASON_LABELS.get(code, text.strip().lower())
    return EXCLUSION_CRITERIA_LABEL


def percent(part: int, whole: int) -> float:
    """A percentage with two decimals, as the paper prints it (0 when nothing was screened)."""
    if whole <= 0:
        return 0.0
    return round(100.0 * part / whole, 2)


def funnel_from_counts(counts: FunnelCounts) -> dict[str, Any]:
    """The funnel JSON of DESIGN.md from aggregate counts."""
    database_results = sum(counts.records_by_source.values())
    full_text_keys = {s.key for s in counts.stages if s.kind == FULL_TEXT_KIND}
    screening_stages = [s for s in counts.stages if s.kind != FULL_TEXT_KIND]

    records_excluded = sum(s.routed_to(EXCLUDED) for s in screening_stages)
    sought = sum(s.routed_to(key) for s in screening_stages for key in full_text_keys)
    assessed = max(sought - counts.not_retrieved, 0)

    dbr_excluded = {reason: n for reason, n in counts.fulltext_exclusions.items() if n}
    if counts.quality_excluded:
        dbr_excluded[QUALITY_LABEL] = counts.quality_excluded
    included_at_full_text = sum(
        s.routed_to(INCLUDED) for s in counts.stages if s.kind == FULL_TEXT_KIND
    )
    new_studies = max(included_at_full_text - counts.quality_excluded, 0)

    return {
        "database_results": database_results,
        "database_specific_results": dict(counts.records_by_source),
        "duplicates": max(counts.records_deduplicated - counts.studies, 0),
        "excluded_automatic": counts.excluded_automatic,
        "excluded_other": counts.excluded_other,
        "records_awaiting_deduplication": database_results - counts.records_deduplicated,
        "records_screened": counts.studies - counts.excluded_automatic,
        "records_excluded": records_excluded,
        "dbr_sought_reports": sought,
        "dbr_notretrieved_reports": counts.not_retrieved,
        "dbr_assessed": assessed,
        "dbr_excluded": dbr_excluded,
        "new_studies": new_studies,
        "new_reports": new_studies,
        "stages": [
            {
                "stage": s.key,
                "name": s.name,
                "screened": s.screened,
                "include": s.include,
                "uncertain": s.uncertain,
                "exclude": s.exclude,
                "awaiting": s.awaiting,
            }
            for s in counts.stages
        ],
        "precision": {
            "included_percent": percent(new_studies, counts.studies),
            "full_text_percent": percent(sought, counts.studies),
        },
    }


# The figures of one round kept in an updated review's `rounds` list.
ROUND_FIELDS = (
    *BOXES,
    "database_specific_results",
    "records_awaiting_deduplication",
    "new_reports",
)


def funnel_updated(per_round: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """The funnel of a review updated by search rounds (PRISMA 2020 for updated reviews).

    `per_round` holds each round's funnel, in round order, each counting only the records
    imported in that round and the studies first found in it. The last round is the current
    update: its figures are the funnel's own (the new identification, screening and
    inclusion, as the PRISMA2020 package reads them); the studies included from the earlier
    rounds are the previous version's; the total adds both. `rounds` keeps every round's
    figures.
    """
    *earlier, (current_round, current) = per_round
    previous = sum(int(funnel["new_studies"]) for _, funnel in earlier)
    previous_reports = sum(int(funnel["new_reports"]) for _, funnel in earlier)
    out = dict(current)
    out.update(
        current_round=current_round,
        previous_studies=previous,
        previous_reports=previous_reports,
        total_studies=previous + int(current["new_studies"]),
        total_reports=previous_reports + int(current["new_reports"]),
        rounds=[
            {"round": number, **{name: funnel[name] for name in ROUND_FIELDS}}
            for number, funnel in per_round
        ],
    )
    return out


def awaiting_figure(funnel: Mapping[str, Any], stage: str) -> int:
    """How many studies still await a decision at `stage` (a stage key) in a review in
    progress: at full text, the reports assessed without a decision yet."""
    if stage == FULL_TEXT_KIND:
        waiting = box_total(funnel, "dbr_assessed") - box_total(funnel, "dbr_excluded")
        return max(waiting - box_total(funnel, "new_studies"), 0)
    return sum(
        int(entry.get("awaiting", 0) or 0)
        for entry in funnel.get("stages", [])
        if entry.get("stage") == stage
    )


def funnel_ordered(funnel: Mapping[str, Any], *, sources: Sequence[str] = ()) -> dict[str, Any]:
    """The funnel with its per-source and per-reason objects in reading order.

    Stored snapshots lose key order (PostgreSQL's jsonb sorts keys), so readers restore it:
    sources in the review's order (unknown ones alphabetically after), reasons as the paper
    lists them (the extra reasons, then exclusion criteria, then quality and unrecorded).
    """
    out = dict(funnel)
    per_source = dict(funnel.get("database_specific_results", {}) or {})
    known = [name for name in sources if name in per_source]
    rest = sorted(name for name in per_source if name not in set(known))
    out["database_specific_results"] = {name: per_source[name] for name in known + rest}
    reasons = dict(funnel.get("dbr_excluded", {}) or {})
    head = [label for label in OTHER_REASON_LABELS.values() if label in reasons]
    tail = [
        label
        for label in (EXCLUSION_CRITERIA_LABEL, QUALITY_LABEL, NO_REASON_LABEL)
        if label in reasons
    ]
    middle = sorted(label for label in reasons if label not in set(head + tail))
    out["dbr_excluded"] = {label: reasons[label] for label in head + middle + tail}
    if "rounds" in funnel:
        out["rounds"] = [funnel_ordered(entry, sources=sources) for entry in funnel["rounds"]]
    return out


def box_total(funnel: Mapping[str, Any], box: str) -> int:
    """The number printed in a box (dbr_excluded: the sum of its reasons)."""
    value = funnel.get(box, 0)
    if isinstance(value, Mapping):
        return sum(value.values())
    return int(value or 0)


PRISMA_CSV_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")

# The rows of the PRISMA2020 package's template (inst/extdata/PRISMA.csv), with the
# database_specific_results row of its later versions; `n` is filled from the funnel.
_PRISMA_TEMPLATE = (
    ("NA", "node4", "prevstud", "Grey title box; Previous studies", "Previous studies"),
    (
        "previous_studies",
        "node5",
        "box1",
        "Studies included in previous version of review",
        "Studies included in previous version of review",
    ),
    (
        "previous_reports",
        "NA",
        "box1",
        "Reports of studies included in previous version of review",
        "Reports of studies included in previous version of review",
    ),
    (
        "NA",
        "node6",
        "newstud",
        "Yellow title box; Identification of new studies via databases and registers",
        "Identification of new studies via databases and registers",
    ),
    ("database_results", "node7", "box2", "Records identified from: Databases", "Databases"),
    (
        "database_specific_results",
        "NA",
        "box2",
        "Records identified from: specific databases",
        "Specific Databases",
    ),
    ("register_results", "NA", "box2", "Records identified from: Registers", "Registers"),
    (
        "register_specific_results",
        "NA",
        "box2",
        "Records identified from: specific registers",
        "Specific Registers",
    ),
    (
        "NA",
        "node16",
        "othstud",
        "Grey title box; Identification of new studies via other methods",
        "Identification of new studies via other methods",
    ),
    ("website_results", "node17", "box11", "Records identified from: Websites", "Websites"),
    (
        "organisation_results",
        "NA",
        "box11",
        "Records identified from: Organisations",
        "Organisations",
    ),
    (
        "citations_results",
        "NA",
        "box11",
        "Records identified from: Citation searching",
        "Citation searching",
    ),
    ("duplicates", "node8", "box3", "Duplicate records", "Duplicate records"),
    (
        "excluded_automatic",
        "NA",
        "box3",
        "Records marked as ineligible by automation tools",
        "Records marked as ineligible by automation tools",
    ),
    (
        "excluded_other",
        "NA",
        "box3",
        "Records removed for other reasons",
        "Records removed for other reasons",
    ),
    (
        "records_screened",
        "node9",
        "box4",
        "Records screened (databases and registers)",
        "Records screened",
    ),
    (
        "records_excluded",
        "node10",
        "box5",
        "Records excluded (databases and registers)",
        "Records excluded",
    ),
    (
        "dbr_sought_reports",
        "node11",
        "box6",
        "Reports sought for retrieval (databases and registers)",
        "Reports sought for retrieval",
    ),
    (
        "dbr_notretrieved_reports",
        "node12",
        "box7",
        "Reports not retrieved (databases and registers)",
        "Reports not retrieved",
    ),
    (
        "other_sought_reports",
        "node18",
        "box12",
        "Reports sought for retrieval (other)",
        "Reports sought for retrieval",
    ),
    (
        "other_notretrieved_reports",
        "node19",
        "box13",
        "Reports not retrieved (other)",
        "Reports not retrieved",
    ),
    (
        "dbr_assessed",
        "node13",
        "box8",
        "Reports assessed for eligibility (databases and registers)",
        "Reports assessed for eligibility",
    ),
    (
        "dbr_excluded",
        "node14",
        "box9",
        "Reports excluded (databases and registers): [separate reasons and numbers using ; "
        "e.g. Reason1, xxx; Reason2, xxx; Reason3, xxx]",
        "Reports excluded",
    ),
    (
        "other_assessed",
        "node20",
        "box14",
        "Reports assessed for eligibility (other)",
        "Reports assessed for eligibility",
    ),
    (
        "other_excluded",
        "node21",
        "box15",
        "Reports excluded (other): [separate reasons and numbers using ; "
        "e.g. Reason1, xxx; Reason2, xxx; Reason3, xxx]",
        "Reports excluded",
    ),
    (
        "new_studies",
        "node15",
        "box10",
        "New studies included in review",
        "New studies included in review",
    ),
    (
        "new_reports",
        "NA",
        "box10",
        "Reports of new included studies",
        "Reports of new included studies",
    ),
    (
        "total_studies",
        "node22",
        "box16",
        "Total studies included in review",
        "Total studies included in review",
    ),
    (
        "total_reports",
        "NA",
        "box16",
        "Reports of total included studies",
        "Reports of total included studies",
    ),
    ("NA", "node1", "identification", "Blue identification box", "Identification"),
    ("NA", "node2", "screening", "Blue screening box", "Screening"),
    ("NA", "node3", "included", "Blue included box", "Included"),
)


def _reason_list(values: Mapping[str, int]) -> str:
    """PRISMA2020's "Name, n; Name, n" form (commas and semicolons in names would split it)."""
    return "; ".join(
        f"{name.replace(',', ' ').replace(';', ' ')}, {n}" for name, n in values.items()
    )


def prisma_csv_rows(
    funnel: Mapping[str, Any], *, urls: Mapping[str, str] | None = None
) -> list[tuple[Any, ...]]:
    """The funnel as the rows of the PRISMA2020 package's CSV (header first).

    `urls` maps a field name to the drill-down address of its box (the package links each
    node to its `url`).
    """
    urls = urls or {}
    rows: list[tuple[Any, ...]] = [PRISMA_CSV_COLUMNS]
    for data, node, box, description, boxtext in _PRISMA_TEMPLATE:
        if data == "database_specific_results":
            n: str | int = _reason_list(funnel.get("database_specific_results", {}))
        elif data == "dbr_excluded":
            n = _reason_list(funnel.get("dbr_excluded", {}))
        elif data == "total_studies":
            n = funnel.get("total_studies", funnel.get("new_studies", 0))
        elif data == "total_reports":
            n = funnel.get("total_reports", funnel.get("new_reports", 0))
        elif data == "NA":
            n = 0
        else:
            n = funnel.get(data, 0)
            if isinstance(n, Mapping):
                n = sum(n.values())
        tooltips = description if node != "NA" else "NA"
        url = urls.get(data, f"{data}.html" if node != "NA" and data != "NA" else "NA")
        if data == "NA":
            url = f"{box}.html"
        rows.append((data, node, box, description, boxtext, tooltips, url, n))
    return rows
