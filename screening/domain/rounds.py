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
