"""Search rounds: what a search update changed in a record the review already had."""

import re
from dataclasses import dataclass

from .normalise import fold, normalise_doi, title_key


@dataclass(frozen=True)
class RecordText:
    """The fields a search update is compared on, with the record's id and source."""

    key: int
    source_id: int
    title: str
    abstract: str
    doi: str


# A publisher's copyright line that one library appends to an abstract and another leaves off
# ("© 2019 Elsevier B.V.", "Copyright (C) 2018 ...", "(c) 2020 The Authors").
_COPYRIGHT_TAIL_RE = re.compile(
    r"(?<=[.!?])\s*(?:©|\(c\)\s*\d{4}|copyright\s*(?:©|\(c\)|\d{4})).{0,120}$", re.I | re.S
)


def abstract_key(abstract: str) -> str:
    """The comparable form of an abstract: without a trailing copyright line, folded, and
    without spaces (PubMed writes "15years" and "km(2)" where publishers write "15 years")."""
    return fold(_COPYRIGHT_TAIL_RE.sub("", abstract or "")).replace(" ", "")


# Field -> the comparable form of its value: case, punctuation, markup and DOI prefixes are how
# exports differ, not what a reviewer needs told.
_COMPARED = (("title", title_key), ("abstract", abstract_key), ("doi", normalise_doi))


def record_changes(new: RecordText, earlier: RecordText) -> tuple[str, ...]:
    """The compared fields whose meaning differs between the two records (added or removed
    counts as a difference)."""
    return tuple(
        name
        for name, comparable in _COMPARED
        if comparable(getattr(new, name)) != comparable(getattr(earlier, name))
    )


def earlier_counterpart(new: RecordText, earlier: list[RecordText]) -> RecordText:
    """The earlier record (of a non-empty list) to compare a new one with: the same source's,
    else the first."""
    for record in earlier:
        if record.source_id == new.source_id:
            return record
    return earlier[0]


# Libraries an export can be told apart by: the marks of the library's own export format (a
# CSV header, a RIS database line, a MEDLINE or Web of Science tag) which decide, the addresses
# of its record pages which count when no format mark does, and the words a review's source
# names it with.
_LIBRARIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("Scopus", (r"^DB  - Scopus\b", r"\bsource\s*=\s*\{Scopus\}",
                r"^\W*Authors,.*\bSource title\b.*\bLink\b"),
     (r"scopus\.com/inward/record",), ("scopus",)),
    ("IEEE Xplore", (r"^\W*\"?Document Title\"?,.*\bPDF Link\b",), (r"ieeexplore\.ieee\.org",),
     ("ieee",)),
    ("PubMed", (r"^PMID- \d+",), (r"pubmed\.ncbi\.nlm\.nih\.gov",), ("pubmed", "medline")),
    ("Web of Science",
     (r"^FN (?:Clarivate|Thomson Reuters)", r"^UT WOS:", r"^DB  - Web of Science"),
     (), ("web of science", "wos")),
    ("ACM Digital Library", (), (r"dl\.acm\.org/doi",), ("acm",)),
    ("ScienceDirect", (), (r"sciencedirect\.com/science",), ("sciencedirect", "science direct")),
    ("Springer Link", (r"^\W*\"?Item Title\"?,.*\bItem DOI\b",), (r"link\.springer\.com",),
     ("springer",)),
    ("Lens.org", (r"^\W*\"?Lens ID\"?,",), (), ("lens",)),
    ("OpenAlex", (r"^\W*\"?id\"?,.*\bdisplay_name\b",), (), ("openalex",)),
)  # fmt: skip


def _pattern(marks: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{m})" for m in marks), re.M | re.I) if marks else None


_LIBRARY_MARKS = [(name, _pattern(strong), _pattern(weak)) for name, strong, weak, _ in _LIBRARIES]


# The first line of a record in RIS, BibTeX, MEDLINE and Web of Science files.
_RECORD_START = re.compile(r"^(?:TY  - |@\w+\s*\{|PMID- |PT )", re.M)


def _dominant(hits: dict[str, int]) -> str | None:
    """The library with clearly the most hits (three times the next), if any has one."""
    ranked = sorted(hits.items(), key=lambda item: -item[1])
    (best, most), (_, second) = ranked[0], ranked[1]
    return best if most and most >= 3 * second else None


def export_library(head: str) -> str | None:
    """The library whose export `head` (the start of a file) is: decided by its format's marks
    when any are found, else by its record addresses when one library's clearly dominate; None
    when the file carries neither (or a mix, as a reference manager's)."""
    strong = {name: len(p.findall(head)) if p else 0 for name, p, _ in _LIBRARY_MARKS}
    if any(strong.values()):
        return _dominant(strong)
    weak = {name: len(p.findall(head)) if p else 0 for name, _, p in _LIBRARY_MARKS}
    best = _dominant(weak)
    # A library's own export links nearly every record to its page; a reference manager's
    # file links some records to wherever they were found.
    if best is None or weak[best] < 0.8 * len(_RECORD_START.findall(head)):
        return None
    return best


def source_library(name: str) -> str | None:
    """The library a review's source names, if it names one of the known ones."""
    folded = name.casefold()
    for library, _, _, words in _LIBRARIES:
        if any(re.search(rf"\b{re.escape(word)}\b", folded) for word in words):
            return library
    return None


def wrong_library(head: str, source_name: str) -> str | None:
    """Why a file cannot be a search run's export in `source_name`, or None when it may be:
    only a file clearly from one known library, uploaded into a source that names another."""
    found = export_library(head)
    claimed = source_library(source_name)
    if found is None or claimed is None or found == claimed:
        return None
    return (
        f"this is a {found} export, not {source_name}'s: upload it into the round's "
        f"{found} search run (open one for it if the round has none)."
    )
