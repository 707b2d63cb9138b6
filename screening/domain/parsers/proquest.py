"""ProQuest's plain-text report: "Document N of M" blocks of "Field: value" lines."""

import re
from collections.abc import Iterable, Iterator

from ..normalise import split_list
from .base import EntryProblem, ParsedRecord, RawFields, add_raw, first, make_record

_DOCUMENT = re.compile(r"^Document (\d+) of (\d+)\s*$")
_FIELD = re.compile(r"^([A-Z][A-Za-z/ &().-]{1,45}):\s?(.*)$")
# Field names ProQuest writes; a colon inside an abstract paragraph is not a field.
KNOWN_FIELDS = {
    "Abstract",
    "Accession number",
    "Advisor",
    "Author",
    "Author e-mail address",
    "Classification",
    "Committee member",
    "Company / organization",
    "Conference title",
    "Contributing editor",
    "Copyright",
    "Country of publication",
    "Database",
    "Degree",
    "Degree date",
    "Department",
    "Dissertation/thesis number",
    "DOI",
    "Document feature",
    "Document type",
    "Document URL",
    "First page",
    "Identifier / keyword",
    "ISBN",
    "ISSN",
    "Issue",
    "Language",
    "Language of publication",
    "Last updated",
    "Links",
    "Location",
    "Number of pages",
    "Pages",
    "People",
    "Place of publication",
    "ProQuest document ID",
    "Publication date",
    "Publication subject",
    "Publication title",
    "Publication year",
    "Publisher",
    "School code",
    "Section",
    "Source",
    "Source type",
    "Subject",
    "Subject heading",
    "Supplemental files",
    "Title",
    "University location",
    "University/institution",
    "Volume",
    "Year",
    "Keywords",
    "MeSH subject",
    "Full text",
    "Notes",
    "Editor",
    "Sponsor",
    "Series",
}


def record_from_proquest(raw: RawFields, line: int) -> ParsedRecord:
    keywords = split_list(first(raw.get("Identifier / keyword"), raw.get("Keywords")), ",;")
    authors = raw.get("Author") or []
    if not isinstance(authors, list):
        authors = [authors]
    return make_record(
        line=line,
        raw=raw,
        title=first(raw.get("Title"), raw.get("_heading")),
        abstract=first(raw.get("Abstract")),
        authors=authors,
        year=first(raw.get("Publication year"), raw.get("Degree date"), raw.get("Year")),
        venue=first(
            raw.get("Publication title"), raw.get("University/institution"), raw.get("Source")
        ),
        volume=first(raw.get("Volume")),
        issue=first(raw.get("Issue")),
        pages=first(raw.get("Pages"), raw.get("First page")),
        doi=first(raw.get("DOI")),
        url=first(raw.get("Document URL"), raw.get("_url")),
        keywords=keywords,
        publication_type=first(raw.get("Document type"), raw.get("Source type")),
        language=first(raw.get("Language"), raw.get("Language of publication")),
        source_record_id=first(raw.get("ProQuest document ID"), raw.get("Accession number")),
    )


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    raw: RawFields | None = None
    start_line = 0
    field: str | None = None
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\n").replace("\ufeff", "").rstrip()
        if _DOCUMENT.match(text):
            if raw is not None:
                yield record_from_proquest(raw, start_line)
            raw, field, start_line = {}, None, line_no
            continue
        if raw is None or not text.strip():
            continue
        if set(text.strip()) == {"_"}:
            # The rule under the last document closes it (the report's footer follows).
            yield record_from_proquest(raw, start_line)
            raw = None
            continue
        match = _FIELD.match(text)
        if match and match.group(1) in KNOWN_FIELDS:
            field = match.group(1)
            add_raw(raw, field, match.group(2).strip())
            continue
        if field is None:
            # Before the first field: the heading (the title) and the document link.
            key = "_url" if text.startswith("http") else "_heading"
            if key not in raw:
                raw[key] = text.strip()
            continue
        existing = raw[field]
        if isinstance(existing, list):
            existing[-1] = f"{existing[-1]}\n{text.strip()}"
        else:
            raw[field] = f"{existing}\n{text.strip()}"
    if raw is not None:
        yield record_from_proquest(raw, start_line)
