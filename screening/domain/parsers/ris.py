"""RIS, every dialect met in the wild, read line by line.

rispy (the usual choice) reads the whole file into a list and its strict tag grammar loses
entries on real exports: Ovid's "1." numbering lines, Rayyan's untagged keyword continuation
lines, Scopus' "Export Date:" text inside records and the bare CRs of Citavi and Web of Science.
This reader accepts all of those, yields one record at a time and reports what it skipped.
"""

import re
from collections.abc import Iterable, Iterator

from ..normalise import normalise_doi
from .base import (
    EntryProblem,
    ParsedRecord,
    ParseError,
    add_raw,
    first,
    join_pages,
    make_record,
)

# "TY  - JOUR", "ER  -", "TY - JOUR" (one space: some writers), "AU  -Smith" (no space).
_TAG = re.compile(r"^([A-Z][A-Z0-9])\s{1,2}-(?:\s(.*)|(\S.*))?$")

TITLE_TAGS = ("TI", "T1", "CT")
ABSTRACT_TAGS = ("AB", "N2")
AUTHOR_TAGS = ("AU", "A1")
VENUE_TAGS = ("T2", "JF", "JO", "JA", "J2", "J1", "BT", "T3")
YEAR_TAGS = ("PY", "Y1", "DA", "Y2")
URL_TAGS = ("UR", "L1", "L2", "LK")
BOOK_TYPES = {"BOOK", "EBOOK", "EDBOOK"}
# File-level tags outside any record (EndNote's and Web of Science's headers and trailers).
_FILE_TAGS = frozenset({"ER", "FN", "VR", "EF"})
# One entry as read: tag -> its value, or its values when the tag repeats.
RawEntry = dict[str, str | list[str]]


def _value_list(raw: RawEntry, tag: str) -> list[str]:
    value = raw.get(tag)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def record_from_ris(raw: RawEntry, line: int) -> ParsedRecord:
    """Map a RIS entry (tag -> value or list of values) onto the normalised fields."""
    ty = first(raw.get("TY")).upper()
    title = first(*(raw.get(tag) for tag in TITLE_TAGS))
    venue_tags: tuple[str, ...] = VENUE_TAGS
    if not title and ty in BOOK_TYPES:
        title = first(raw.get("BT"))
        venue_tags = tuple(t for t in VENUE_TAGS if t != "BT")
    if not title:
        title = first(raw.get("ST"))
    abstracts = [v for tag in ABSTRACT_TAGS for v in _value_list(raw, tag) if v.strip()]
    authors = [a for tag in AUTHOR_TAGS for a in _value_list(raw, tag)]
    keywords: list[str] = []
    for value in _value_list(raw, "KW"):
        # Rayyan writes one KW tag followed by untagged lines, one keyword per line.
        keywords.extend(part for part in value.split("\n") if part.strip())
    doi = first(raw.get("DO"))
    if not normalise_doi(doi):
        doi = next(
            (
                v
                for tag in ("M3", "DI", "N1", "UR", "L3")
                for v in _value_list(raw, tag)
                if normalise_doi(v) and ("doi" in v.lower() or v.strip().startswith("10."))
            ),
            "",
        )
    database = " ".join(_value_list(raw, "DB") + _value_list(raw, "DP")).lower()
    pmid = first(raw.get("PM"))
    if not pmid and ("pubmed" in database or "medline" in database):
        pmid = first(raw.get("AN"))
    return make_record(
        line=line,
        raw=raw,
        title=title,
        abstract=" ".join(dict.fromkeys(abstracts)),
        authors=authors,
        year=first(*(raw.get(tag) for tag in YEAR_TAGS)),
        venue=first(*(raw.get(tag) for tag in venue_tags)),
        volume=first(raw.get("VL"), raw.get("VO")),
        issue=first(raw.get("IS"), raw.get("CP")),
        pages=join_pages(first(raw.get("SP")), first(raw.get("EP"))),
        doi=doi,
        pmid=pmid,
        url=first(*(raw.get(tag) for tag in URL_TAGS)),
        keywords=keywords,
        publication_type=ty,
        language=first(raw.get("LA")),
        source_record_id=first(raw.get("AN"), raw.get("ID"), raw.get("U1")),
    )


def _split_tag(text: str) -> tuple[str, str] | None:
    """(tag, value) of a tagged line, None for any other line."""
    # Fast path for the canonical "XY  - value" line; the regex handles the variants.
    if text[2:5] == "  -" and text[:1].isupper() and (text[1:2].isupper() or text[1:2].isdigit()):
        return text[:2], text[5:].strip()
    match = _TAG.match(text.lstrip())
    if match is None:
        return None
    return match.group(1), (match.group(2) or match.group(3) or "").strip()


def _continue_value(raw: RawEntry, tag: str, text: str) -> None:
    """Append an untagged line to the last value of `tag` (a wrapped abstract, Rayyan's
    keywords one per line, text a bare CR split off)."""
    existing = raw[tag]
    joiner = "\n" if tag == "KW" else " "
    if isinstance(existing, list):
        existing[-1] = f"{existing[-1]}{joiner}{text}" if existing[-1] else text
    else:
        raw[tag] = f"{existing}{joiner}{text}" if existing else text


def _unclosed(raw: RawEntry, start_line: int, why: str) -> Iterator[ParsedRecord | EntryProblem]:
    """A record that never met its ER line: a warning, then the record as it stands."""
    yield EntryProblem(start_line, f"record has no ER line{why}", "warning")
    yield record_from_ris(raw, start_line)


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    raw: RawEntry | None = None
    # A record closed by ER is held until the next TY: Ovid writes tags after ER ("NL  -")
    # that still belong to it.
    closed: RawEntry | None = None
    closed_line = 0
    start_line = 0
    last_tag: str | None = None
    after_blank = False
    saw_er = False
    line_no = 0
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\n")
        if "\ufeff" in text:
            text = text.replace("\ufeff", "")
        tagged = _split_tag(text)
        if tagged is not None:
            tag, value = tagged
            if tag == "TY":
                if closed is not None:
                    yield record_from_ris(closed, closed_line)
                    closed = None
                if raw is not None:
                    yield from _unclosed(raw, start_line, "; it was closed at the next TY")
                raw = {"TY": value}
                start_line = line_no
                last_tag = "TY"
                after_blank = False
            elif raw is not None and tag == "ER":
                saw_er = True
                closed, closed_line = raw, start_line
                raw = None
                last_tag = None
            elif raw is not None:
                add_raw(raw, tag, value)
                last_tag = tag
                after_blank = False
            elif closed is not None and tag not in _FILE_TAGS:
                add_raw(closed, tag, value)
            elif tag not in _FILE_TAGS:
                yield EntryProblem(line_no, f"tag {tag} outside a record (no TY before it)")
            continue
        stripped = text.strip()
        if not stripped:
            after_blank = True
        elif raw is None:
            # Between records: Ovid's "1." numbering and links, "Provider:" preambles.
            continue
        elif last_tag is not None and not after_blank:
            # An untagged line right after a tagged one continues it.
            _continue_value(raw, last_tag, stripped)
        else:
            # Text after a blank line inside a record (Scopus' "Export Date: ..."): kept, not
            # mapped.
            add_raw(raw, "_untagged", stripped)
    if closed is not None:
        yield record_from_ris(closed, closed_line)
    if raw is not None:
        if saw_er:
            raise ParseError(
                f"the file ends inside the record that starts at line {start_line} "
                "(no ER line): it looks truncated",
                line_no,
            )
        yield from _unclosed(raw, start_line, " (end of file)")
