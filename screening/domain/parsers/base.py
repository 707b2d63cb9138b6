"""What every parser yields: ParsedRecord for an entry, EntryProblem for what it skipped or doubts.

Parsers are generators over a text stream (or, for XLSX, a binary stream): one entry is built,
yielded and forgotten, so a 100,000-record export never sits in memory as parsed objects.
"""

from dataclasses import dataclass, field

from ..normalise import (
    clean_text,
    normalise_doi,
    normalise_pmid,
    normalise_year,
)


class ParseError(ValueError):
    """The file cannot be read at all (as opposed to one entry being skipped)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


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
    raw: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.title or self.abstract or self.doi or self.authors or self.pmid)


def first(*values) -> str:
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


def as_list(value) -> list[str]:
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
    raw: dict,
    title="",
    abstract="",
    authors=(),
    year=None,
    venue="",
    volume="",
    issue="",
    pages="",
    doi="",
    pmid="",
    url="",
    keywords=(),
    publication_type="",
    language="",
    source_record_id="",
) -> ParsedRecord:
    """Build a ParsedRecord, cleaning each field the same way for every format."""
    keyword_list: list[str] = []
    seen: set[str] = set()
    for keyword in keywords:
        text = clean_text(keyword)
        if text and text.lower() not in seen:
            seen.add(text.lower())
            keyword_list.append(text)
    return ParsedRecord(
        line=line,
        title=clean_text(title),
        abstract=clean_text(abstract),
        authors=[a for a in (clean_text(a) for a in authors) if a],
        year=year if isinstance(year, int) else normalise_year(year),
        venue=clean_text(venue),
        volume=clean_text(volume),
        issue=clean_text(issue),
        pages=clean_text(pages),
        doi=normalise_doi(doi),
        pmid=normalise_pmid(pmid),
        url=clean_text(url).split(" ")[0] if clean_text(url) else "",
        keywords=keyword_list,
        publication_type=clean_text(publication_type),
        language=clean_text(language),
        source_record_id=clean_text(source_record_id),
        raw=raw,
    )


def add_raw(raw: dict, key: str, value: str) -> None:
    """Keep a repeated tag as a list, a single one as a string (the file's own shape)."""
    if key in raw:
        existing = raw[key]
        if isinstance(existing, list):
            existing.append(value)
        else:
            raw[key] = [existing, value]
    else:
        raw[key] = value
