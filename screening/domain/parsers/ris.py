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
# At most this many distinct line heads are remembered (a hostile file cannot grow it).
_HEADS_KEPT = 4096
# One entry as read: tag -> its value, or its values when the tag repeats.
RawEntry = dict[str, str | list[str]]


def _value_list(raw: RawEntry, tag: str) -> list[str]:
    value = raw.get(tag)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first_of(raw: RawEntry, tags: Iterable[str]) -> str:
    """`first` of the tags' values, in order, without building the argument list."""
    for tag in tags:
        value = raw.get(tag)
        if value is not None:
            text = first(value)
            if text:
                return text
    return ""


def record_from_ris(raw: RawEntry, line: int) -> ParsedRecord:
    """Map a RIS entry (tag -> value or list of values) onto the normalised fields."""
    ty = first(raw.get("TY")).upper()
    title = _first_of(raw, TITLE_TAGS)
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
        year=_first_of(raw, YEAR_TAGS),
        venue=_first_of(raw, venue_tags),
        volume=first(raw.get("VL"), raw.get("VO")),
        issue=first(raw.get("IS"), raw.get("CP")),
        pages=join_pages(first(raw.get("SP")), first(raw.get("EP"))),
        doi=doi,
        pmid=pmid,
        url=_first_of(raw, URL_TAGS),
        keywords=keywords,
        publication_type=ty,
        language=first(raw.get("LA")),
        source_record_id=first(raw.get("AN"), raw.get("ID"), raw.get("U1")),
    )


def _canonical_tag(text: str) -> str | None:
    """The tag of a canonical "XY  - value" line, else None (the regex reads the variants)."""
    if text[2:5] == "  -" and text[:1].isupper() and (text[1:2].isupper() or text[1:2].isdigit()):
        return text[:2]
    return None


def _split_tag(text: str) -> tuple[str, str] | None:
    """(tag, value) of a tagged line, None for any other line."""
    tag = _canonical_tag(text)
    if tag is not None:
        return tag, text[5:].strip()
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
    # The first five characters of the canonical tagged lines met so far ("AU  -") -> tag:
    # most lines of an export are those, and a dictionary look-up reads them fastest.
    heads: dict[str, str] = {}
    for line_no, line in enumerate(lines, start=1):
        if "\ufeff" in line:
            line = line.replace("\ufeff", "")
        tag = heads.get(line[:5])
        if tag is not None:
            value = line[5:].strip()
        else:
            text = line.rstrip("\n")
            tagged = _split_tag(text)
            if tagged is None:
                stripped = text.strip()
                if not stripped:
                    after_blank = True
                elif raw is None:
                    # Between records: Ovid's "1." numbering and links, "Provider:" preambles.
                    pass
                elif last_tag is not None and not after_blank:
                    # An untagged line right after a tagged one continues it.
                    _continue_value(raw, last_tag, stripped)
                else:
                    # Text after a blank line inside a record (Scopus' "Export Date: ..."):
                    # kept, not mapped.
                    add_raw(raw, "_untagged", stripped)
                continue
            tag, value = tagged
            if len(heads) < _HEADS_KEPT and _canonical_tag(text) == tag:
                heads[text[:5]] = tag
        if raw is not None and tag != "TY" and tag != "ER":
            # add_raw, inline: this runs for nearly every line of the file.
            if tag in raw:
                existing = raw[tag]
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    raw[tag] = [existing, value]
            else:
                raw[tag] = value
            last_tag = tag
            after_blank = False
        elif tag == "TY":
            if closed is not None:
                yield record_from_ris(closed, closed_line)
                closed = None
            if raw is not None:
                yield from _unclosed(raw, start_line, "; it was closed at the next TY")
            raw = {"TY": value}
            start_line = line_no
            last_tag = "TY"
            after_blank = False
        elif raw is not None:  # ER
            saw_er = True
            closed, closed_line = raw, start_line
            raw = None
            last_tag = None
        elif closed is not None and tag not in _FILE_TAGS:
            add_raw(closed, tag, value)
        elif tag not in _FILE_TAGS:
            yield EntryProblem(line_no, f"tag {tag} outside a record (no TY before it)")
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
