"""What every parser yields: ParsedRecord for an entry, EntryProblem for what it skipped or doubts.

Parsers are generators over a text stream (or, for XLSX, a binary stream): one entry is built,
yielded and forgotten, so a 100,000-record export never sits in memory as parsed objects.
"""

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..normalise import (
    clean_text,
    normalise_doi,
    normalise_pmid,
    normalise_year,
)

# The longest value kept per field (characters). Real exports stay far below these; a longer
# value is cut and the cut reported in the file's report. The short ones are the columns'
# own sizes.
FIELD_LIMITS = {
    "title": 2_000,
    "abstract": 30_000,
    "venue": 1_000,
    "volume": 60,
    "issue": 60,
    "pages": 60,
    "doi": 255,
    "pmid": 32,
    "url": 2_000,
    "publication_type": 100,
    "language": 60,
    "source_record_id": 200,
}
AUTHOR_LIMIT = 300
AUTHORS_MAX = 5_000
KEYWORD_LIMIT = 200
KEYWORDS_MAX = 500
# Each value of `raw` (the entry as the file gave it, kept for the backup).
RAW_VALUE_LIMIT = 50_000

# A record's original fields as the file has them (a repeated tag keeps a list).
RawFields = dict[str, Any]
# HTML character references that some exports (Scopus, IEEE) leave in titles and abstracts:
# only complete ones (with the semicolon), so "R&D" or "AT&T" stay as they are.
_CHARREF = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def decode_entities(text: str) -> str:
    """Decode HTML character references once ("1&lt;p" -> "1<p"; "&amp;lt;" -> "&lt;")."""
    if "&" not in text:
        return text
    return _CHARREF.sub(lambda match: html.unescape(match.group(0)), text)


class ParseError(ValueError):
    """The file cannot be read at all (as opposed to one entry being skipped)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class HostileFile(ParseError):
    """The file is built to exhaust the reader (entity expansion, external entities, a zip
    bomb): refused before it is read further."""


class UnknownColumns(ParseError):
    """A table whose columns match no known export: a person must map them."""

    def __init__(self, message: str, columns: list[str]):
        super().__init__(message)
        self.columns = columns


@dataclass
class EntryProblem:
    """An entry the parser skipped (severity "skipped") or kept with a doubt ("warning")."""

    line: int
    reason: str
    severity: str = "skipped"


@dataclass
class ParsedRecord:
    """One entry with the normalised fields of Record; `raw` is the entry as the file gave it."""

    line: int
    title: str = ""
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    doi: str = ""
    pmid: str = ""
    url: str = ""
    keywords: list[str] = field(default_factory=list)
    publication_type: str = ""
    language: str = ""
    source_record_id: str = ""
    raw: RawFields = field(default_factory=dict)
    # What was cut to FIELD_LIMITS, in words for the report ("title: 52,000,000 -> 2,000").
    truncated: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.title or self.abstract or self.doi or self.authors or self.pmid)


def first(*values: object) -> str:
    """The first non-blank value, cleaned; lists contribute their first non-blank item."""
    for value in values:
        if isinstance(value, list):
            for item in value:
                text = clean_text(item)
                if text:
                    return text
            continue
        text = clean_text(value)
        if text:
            return text
    return ""


def as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [clean_text(v) for v in value if clean_text(v)]
    text = clean_text(value)
    return [text] if text else []


def join_pages(start: str, end: str) -> str:
    start, end = clean_text(start), clean_text(end)
    if start and end and start != end:
        return f"{start}-{end}"
    return start or end


def make_record(
    *,
    line: int,
    raw: RawFields,
    title: object = "",
    abstract: object = "",
    authors: Iterable[object] = (),
    year: object = None,
    venue: object = "",
    volume: object = "",
    issue: object = "",
    pages: object = "",
    doi: object = "",
    pmid: object = "",
    url: object = "",
    keywords: Iterable[object] = (),
    publication_type: object = "",
    language: object = "",
    source_record_id: object = "",
) -> ParsedRecord:
    """Build a ParsedRecord, cleaning each field the same way for every format."""
    cuts: list[str] = []

    def text(name: str, value: object, limit: int | None = None) -> str:
        cleaned = decode_entities(clean_text(value))
        limit = limit or FIELD_LIMITS[name]
        if len(cleaned) > limit:
            cuts.append(f"{name} cut from {len(cleaned):,} to {limit:,} characters")
            return cleaned[:limit]
        return cleaned

    def items(name: str, given: Iterable[object], limit: int, most: int) -> list[str]:
        # text() inline: a large export has millions of authors and keywords.
        values = list(given)
        kept: list[str] = []
        seen: set[str] = set()
        for value in values:
            if len(kept) >= most:
                cuts.append(f"only the first {most:,} {name}s of {len(values):,} kept")
                break
            item = decode_entities(clean_text(value))
            if len(item) > limit:
                cuts.append(f"one of the {name}s cut from {len(item):,} to {limit:,} characters")
                item = item[:limit]
            if item:
                key = item.lower()
                if key not in seen:
                    seen.add(key)
                    kept.append(item)
        return kept

    author_list = items("author", authors, AUTHOR_LIMIT, AUTHORS_MAX)
    keyword_list = items("keyword", keywords, KEYWORD_LIMIT, KEYWORDS_MAX)
    url_text = clean_text(url)
    return ParsedRecord(
        line=line,
        title=text("title", title),
        abstract=text("abstract", abstract),
        authors=author_list,
        year=year if isinstance(year, int) else normalise_year(year),
        venue=text("venue", venue),
        volume=text("volume", volume),
        issue=text("issue", issue),
        pages=text("pages", pages),
        doi=normalise_doi(doi)[: FIELD_LIMITS["doi"]],
        pmid=normalise_pmid(pmid),
        url=text("url", url_text.split(" ")[0]) if url_text else "",
        keywords=keyword_list,
        publication_type=text("publication_type", publication_type),
        language=text("language", language),
        source_record_id=text("source_record_id", source_record_id),
        raw=_capped_raw(raw, cuts),
        truncated=cuts,
    )


def _capped_raw(raw: RawFields, cuts: list[str]) -> RawFields:
    """`raw` with each text value cut to RAW_VALUE_LIMIT (lists item by item)."""
    for key, value in raw.items():
        if isinstance(value, str):
            if len(value) > RAW_VALUE_LIMIT:
                raw[key] = value[:RAW_VALUE_LIMIT]
                cuts.append(
                    f"original field {str(key)[:40]!r} cut to {RAW_VALUE_LIMIT:,} characters"
                )
        elif isinstance(value, list) and not _all_short(value):
            for index, item in enumerate(value):
                if isinstance(item, str) and len(item) > RAW_VALUE_LIMIT:
                    value[index] = item[:RAW_VALUE_LIMIT]
                    cuts.append(
                        f"original field {str(key)[:40]!r} cut to {RAW_VALUE_LIMIT:,} characters"
                    )
    return raw


def _all_short(values: list[Any]) -> bool:
    """True when no item of the list is longer than RAW_VALUE_LIMIT (the usual case, checked
    in one pass in C); False when one may be, or an item has no length."""
    try:
        return max(map(len, values), default=0) <= RAW_VALUE_LIMIT
    except TypeError:
        return False


def add_raw(raw: RawFields, key: str, value: str) -> None:
    """Keep a repeated tag as a list, a single one as a string (the file's own shape)."""
    if key in raw:
        existing = raw[key]
        if isinstance(existing, list):
            existing.append(value)
        else:
            raw[key] = [existing, value]
    else:
        raw[key] = value
