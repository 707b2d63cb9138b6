"""CSV, TSV and XLSX exports: IEEE Xplore, Scopus, Springer Link, Web of Science tab-delimited,
Lens, OpenAlex, PubMed, Embase, RefWorks, Zotero, Covidence, Rayyan and generic tables.

The header row is found by content (Embase and Excel put a "SEARCH QUERY" preamble above it,
Lens' XLSX a title row), the delimiter from the header line (Excel re-saves Embase with ";").
Known exports get their own column map; unknown columns raise UnknownColumns so a person maps
them in the UI. `raw` holds each row by header name, as the file gave it.
"""

import csv
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import BinaryIO

from ..normalise import clean_text, split_glued_authors, split_list
from .base import (
    EntryProblem,
    HostileFile,
    ParsedRecord,
    ParseError,
    RawFields,
    UnknownColumns,
    first,
    join_pages,
    make_record,
)

# Quoted fields of real exports (abstracts, reference lists) exceed csv's 128 KB default; a
# cell beyond this bound is no bibliographic field, and refusing it keeps memory bounded.
MAX_CELL_CHARS = 10_000_000
csv.field_size_limit(min(sys.maxsize, MAX_CELL_CHARS))

HEADER_SCAN_ROWS = 30
# Workbooks: the most data a sheet may unpack to, how many rows and columns are read.
XLSX_MAX_UNPACKED_BYTES = 200 * 1024 * 1024
XLSX_MAX_ROWS = 200_000
XLSX_MAX_COLUMNS = 500
# A member that unpacks to more than this many times its packed size and past the bound
# below is a zip bomb, not a spreadsheet (real sheets pack 5-30 times).
_BOMB_RATIO = 200
_BOMB_MIN_BYTES = 20 * 1024 * 1024
FIELDS = (
    "title",
    "abstract",
    "authors",
    "year",
    "venue",
    "volume",
    "issue",
    "pages",
    "start_page",
    "end_page",
    "doi",
    "pmid",
    "url",
    "keywords",
    "publication_type",
    "language",
    "source_record_id",
)
# Field -> header names (lowercase), most specific first; the first present column wins,
# except keywords, which gathers every listed column present.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "title": (
        "title",
        "document title",
        "article title",
        "item title",
        "title primary",
        "primary title",
        "paper title",
        "display_name",
        "ti",
    ),
    "abstract": ("abstract", "abstract note", "abstracts", "ab"),
    "authors": (
        "authors",
        "author",
        "author/s",
        "author names",
        "author(s)",
        "authors, primary",
        "author full names",
        "authorships.author.display_name",
        "creators",
        "af",
        "au",
    ),
    "year": (
        "publication year",
        "year",
        "pub year",
        "published year",
        "publication_year",
        "year published",
        "py",
        "date published",
        "publication date",
        "date",
    ),
    "venue": (
        "source title",
        "publication title",
        "journal",
        "journal title",
        "journal name",
        "periodical full",
        "journal/book",
        "primary_location.source.display_name",
        "secondary title",
        "publication",
        "source",
        "so",
    ),
    "volume": ("volume", "journal volume", "volume number", "vl"),
    "issue": ("issue", "issue number", "journal issue", "number", "is"),
    "pages": ("pages", "page range"),
    "start_page": ("start page", "page start", "first page", "spage", "bp"),
    "end_page": ("end page", "page end", "last page", "epage", "ep"),
    "doi": ("doi", "item doi", "digital object identifier (doi)", "ids.doi", "di"),
    "pmid": ("pmid", "pubmed id", "pubmed_id", "ids.pmid", "pubmed", "pm"),
    "url": (
        "url",
        "link",
        "pdf link",
        "fulltext url",
        "external url",
        "open url link",
        "plink",
        "primary_location.landing_page_url",
        "links",
    ),
    "keywords": (
        "author keywords",
        "keywords",
        "keyword(s)",
        "manual tags",
        "index keywords",
        "ieee terms",
        "descriptor(s)",
        "subjects",
        "de",
        "id",
    ),
    "publication_type": (
        "document type",
        "publication type",
        "item type",
        "content type",
        "reference type",
        "type",
        "doctype",
        "dt",
    ),
    "language": ("language of original document", "language", "language(s)", "la"),
    "source_record_id": (
        "eid",
        "lens id",
        "ut",
        "ids.openalex",
        "covidence #",
        "central id",
        "(internal) id",
        "reference id",
        "accession number",
        "key",
        "id",
    ),
}
TITLE_HEADERS = set(SYNONYMS["title"])


@dataclass(frozen=True)
class ColumnMap:
    """Which header feeds which field, and how the authors cell is split."""

    source: str
    columns: dict[str, tuple[str, ...]]
    author_split: str = "auto"  # auto | ; | , | glued | |
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Known exports: a header signature and the columns that differ from the generic synonyms.
KNOWN_SOURCES: list[tuple[str, set[str], dict[str, tuple[str, ...]], str]] = [
    (
        "Web of Science (tab-delimited)",
        {"pt", "au", "ti", "so", "ut"},
        {
            "title": ("ti",),
            "abstract": ("ab",),
            "authors": ("af", "au"),
            "year": ("py",),
            "venue": ("so",),
            "volume": ("vl",),
            "issue": ("is",),
            "start_page": ("bp",),
            "end_page": ("ep",),
            "doi": ("di",),
            "pmid": ("pm",),
            "keywords": ("de", "id"),
            "publication_type": ("dt",),
            "language": ("la",),
            "source_record_id": ("ut",),
            "url": (),
            "pages": (),
        },
        ";",
    ),
    ("IEEE Xplore", {"document title", "pdf link"}, {"source_record_id": ()}, ";"),
    (
        "Scopus",
        {"eid", "source title"},
        {
            "authors": ("author full names", "authors"),
            "keywords": ("author keywords", "index keywords"),
        },
        "auto",
    ),
    (
        "Springer Link",
        {"item title", "item doi"},
        {"venue": ("publication title", "book series title")},
        "glued",
    ),
    ("Lens.org", {"lens id"}, {"url": ("external url", "source urls")}, ";"),
    (
        "OpenAlex",
        {"display_name"},
        {"title": ("title", "display_name"), "source_record_id": ("id",)},
        "|",
    ),
    ("PubMed (CSV)", {"pmid", "citation", "journal/book"}, {}, ","),
    ("Embase", {"author names", "emtree drug index terms"}, {}, ","),
    (
        "RefWorks",
        {"title primary", "reference type"},
        {"source_record_id": ("reference id", "accession number")},
        ";",
    ),
    (
        "Zotero",
        {"item type", "abstract note"},
        {"keywords": ("manual tags", "automatic tags")},
        ";",
    ),
    ("Covidence", {"covidence #"}, {}, ";"),
    ("Rayyan", {"key", "pubmed_id", "pmc_id"}, {}, "auto"),
]


def _norm_header(name: object) -> str:
    return clean_text(str(name) if name is not None else "").replace("\ufeff", "").lower()


def resolve_columns(header: list[str], user_map: dict[str, str] | None = None) -> ColumnMap:
    """The column map for a header row: a person's mapping, a known export, or the synonyms."""
    normalised = [_norm_header(h) for h in header]
    present = set(normalised)
    by_norm: dict[str, str] = {}
    for original, norm in zip(header, normalised, strict=True):
        by_norm.setdefault(norm, original)
    if user_map:
        mapped: dict[str, tuple[str, ...]] = {
            name: (by_norm.get(_norm_header(column), column),)
            for name, column in user_map.items()
            if name in FIELDS and column
        }
        missing = [c for cols in mapped.values() for c in cols if c not in header]
        if missing:
            raise UnknownColumns(
                f"the column mapping names columns not in the file ({', '.join(missing)}); "
                "map the columns again",
                columns=list(header),
            )
        return ColumnMap(source="mapped by hand", columns=mapped, author_split="auto")
    source, overrides, author_split = "generic table", {}, "auto"
    for name, signature, source_overrides, splitter in KNOWN_SOURCES:
        if signature <= present:
            source, overrides, author_split = name, source_overrides, splitter
            break
    columns: dict[str, tuple[str, ...]] = {}
    for name in FIELDS:
        candidates = overrides.get(name, SYNONYMS[name])
        found = [by_norm[c] for c in candidates if c in by_norm]
        if name == "keywords":
            columns[name] = tuple(found)
        elif found:
            columns[name] = (found[0],)
    # One column must not feed two fields (Lens "Date Published" vs "Publication Year" is
    # fine, but a lone "ID" must not be both keywords and the record id).
    record_id = columns.get("source_record_id", ())
    if record_id and record_id[0] in columns.get("keywords", ()):
        columns["keywords"] = tuple(c for c in columns["keywords"] if c != record_id[0])
    if "title" not in columns:
        raise UnknownColumns(
            "no title column recognised; map the columns to fields", columns=list(header)
        )
    return ColumnMap(source=source, columns=columns, author_split=author_split)


_GLUED_FUNDING = re.compile(r"^funding text \d+$")


def _split_authors(cell: str, mode: str) -> list[str]:
    text = clean_text(cell)
    if not text:
        return []
    if mode == "glued":
        return split_glued_authors(text)
    if mode in {";", "|"} or (mode == "auto" and (";" in text or "|" in text)):
        return split_list(text, ";|")
    if re.search(r"\s+and\s+", text):
        return [a.strip() for a in re.split(r"\s+and\s+", text) if a.strip()]
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if mode == "," or all(" " in p or "." in p for p in parts):
            return parts
    return [text]


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value) if not isinstance(value, str) else value
    # CINAHL writes ="19326203" so that Excel keeps leading zeros.
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return text


def record_from_row(raw: RawFields, column_map: ColumnMap, line: int) -> ParsedRecord:
    def get(name: str) -> str:
        for column in column_map.columns.get(name, ()):
            text = clean_text(raw.get(column))
            if text:
                return text
        return ""

    keywords: list[str] = []
    for column in column_map.columns.get("keywords", ()):
        keywords.extend(split_list(raw.get(column), ";|"))
    authors_cell = get("authors")
    return make_record(
        line=line,
        raw=raw,
        title=get("title"),
        abstract=get("abstract"),
        authors=_split_authors(authors_cell, column_map.author_split),
        year=get("year"),
        venue=get("venue"),
        volume=get("volume"),
        issue=get("issue"),
        # Without pages, an article number (Scopus "Art. No.", as WoS's AR) places the item.
        pages=get("pages")
        or join_pages(get("start_page"), get("end_page"))
        or first(raw.get("Art. No."), raw.get("Article Number")),
        doi=get("doi"),
        pmid=get("pmid"),
        url=get("url"),
        keywords=keywords,
        publication_type=get("publication_type"),
        language=get("language"),
        source_record_id=get("source_record_id"),
    )


def _unique_header(cells: list[str]) -> list[str]:
    header: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = clean_text(cell).replace("\ufeff", "") or f"column {index + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        header.append(name)
    return header


def _rows_to_records(
    header: list[str],
    rows: Iterable[tuple[int, list[str]]],
    user_map: dict[str, str] | None,
) -> Iterator[ParsedRecord | EntryProblem]:
    column_map = resolve_columns(header, user_map)
    yield EntryProblem(0, f"columns read as {column_map.source}", "info")
    width = len(header)
    funding = next((i for i, h in enumerate(header) if _GLUED_FUNDING.match(h.lower())), None)
    for line, cells in rows:
        cells = [_cell(c) for c in cells]
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width:
            extra = len(cells) - width
            if funding is not None:
                # Scopus writes a second funding text without a header: fold it into the
                # first so the columns after it (Publisher, ISSN, EID...) stay aligned.
                merged = " ".join(c for c in cells[funding : funding + extra + 1] if c.strip())
                cells = cells[:funding] + [merged] + cells[funding + extra + 1 :]
            else:
                yield EntryProblem(
                    line,
                    f"row has {len(cells)} cells for {width} columns; the extra cells were "
                    "kept in raw as _extra",
                    "warning",
                )
        raw: RawFields = dict(zip(header, cells, strict=False))
        if len(cells) > width:
            raw["_extra"] = cells[width:]
        filled = [c for c in cells if c.strip()]
        if len(filled) == 1 and width > 2:
            # abstrackr writes section headings ("citations that are not yet labeled by
            # anyone") as one-cell rows between the records.
            yield EntryProblem(line, f"a one-cell heading row, not a record: {filled[0][:80]!r}")
            continue
        record = record_from_row(raw, column_map, line)
        if record.is_empty:
            yield EntryProblem(line, "row has no title, abstract, authors or identifier")
            continue
        yield record


def _find_header(rows: list[list[str]]) -> int | None:
    for index, cells in enumerate(rows):
        names = {_norm_header(c) for c in cells}
        if names & TITLE_HEADERS and len([c for c in cells if clean_text(c)]) >= 2:
            return index
    return None


def _likeliest_delimiter(line: str) -> str:
    counts = {candidate: line.count(candidate) for candidate in (",", ";", "\t")}
    return max(counts, key=counts.__getitem__)


def _csv_error(error: csv.Error, line: int) -> ParseError:
    if "field larger than field limit" in str(error):
        return ParseError(
            f"a cell holds more than {MAX_CELL_CHARS:,} characters, far more than any "
            "bibliographic field (a broken quote or not an export); the file was not imported",
            line,
        )
    return ParseError(f"not valid CSV: {error}", line)


def parse_text(
    lines: Iterable[str],
    *,
    delimiter: str | None = None,
    column_map: dict[str, str] | None = None,
) -> Iterator[ParsedRecord | EntryProblem]:
    """CSV or TSV from a text stream; the delimiter is sniffed from the header line if None."""
    iterator = iter(lines)
    head: list[str] = []
    for line in iterator:
        head.append(line)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    if not head:
        raise ParseError("the file is empty")
    best: tuple[int, str, int] | None = None  # (line index, delimiter, cells)
    for index, line in enumerate(head):
        for candidate in [delimiter] if delimiter else [",", ";", "\t"]:
            cells = next(csv.reader([line], delimiter=candidate), [])
            if _find_header([cells]) is not None and (best is None or best[0] == index):
                if best is None or len(cells) > best[2]:
                    best = (index, candidate, len(cells))
        if best is not None:
            break
    if best is None:
        # No known title column: the first line is the header, split by the delimiter it
        # holds most of, both when listing the columns to map and when reading with a map.
        chosen = delimiter or _likeliest_delimiter(head[0])
        if not column_map:
            header_cells = next(csv.reader([head[0]], delimiter=chosen), [])
            raise UnknownColumns(
                "no title column recognised; map the columns to fields",
                columns=_unique_header(header_cells),
            )
        best = (0, chosen, 0)
    header_index, chosen, _ = best
    reader = csv.reader(chain(head[header_index:], iterator), delimiter=chosen)
    try:
        header = _unique_header(next(reader))
    except csv.Error as error:
        raise _csv_error(error, header_index + 1) from error

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            # A row starts on the line after the previous row ended (quoted fields span lines).
            start = header_index + reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise _csv_error(error, start) from error
            yield start, cells

    yield from _rows_to_records(header, rows(), column_map)


def check_workbook_archive(
    binary: BinaryIO, *, max_unpacked_bytes: int = XLSX_MAX_UNPACKED_BYTES
) -> None:
    """Refuse a workbook whose ZIP members would unpack past the bound (a zip bomb), before
    anything is decompressed; zipfile never unpacks a member past its declared size, so the
    declared sizes are a real bound."""
    from zipfile import BadZipFile, ZipFile

    start = binary.tell()
    try:
        with ZipFile(binary) as archive:
            members = archive.infolist()
    except BadZipFile as error:
        raise ParseError(f"it is a damaged or truncated Excel workbook ({error})") from error
    finally:
        binary.seek(start)
    if not any(member.filename.startswith("xl/") for member in members):
        raise ParseError("it is a ZIP archive, not an Excel workbook")
    unpacked = sum(member.file_size for member in members)
    for member in members:
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > _BOMB_MIN_BYTES and ratio > _BOMB_RATIO:
            raise HostileFile(
                f"its part {member.filename[:60]!r} would unpack from "
                f"{member.compress_size:,} to {member.file_size:,} bytes ({ratio:,.0f} times): "
                "a ZIP bomb, not a spreadsheet; it was not opened"
            )
    if unpacked > max_unpacked_bytes:
        raise ParseError(
            f"the workbook unpacks to {unpacked / 2**20:,.0f} MB, over the limit of "
            f"{max_unpacked_bytes / 2**20:,.0f} MB; save it as CSV or split the export"
        )


def parse_xlsx(
    binary: BinaryIO,
    *,
    column_map: dict[str, str] | None = None,
    max_unpacked_bytes: int = XLSX_MAX_UNPACKED_BYTES,
    max_rows: int = XLSX_MAX_ROWS,
) -> Iterator[ParsedRecord | EntryProblem]:
    """The first worksheet of an XLSX workbook, read row by row (openpyxl read-only mode).

    openpyxl reads the sheet's XML through defusedxml (checked here, not assumed), and the
    archive is checked for its unpacked size before any part of it is decompressed.
    """
    from zipfile import BadZipFile

    import openpyxl

    if not openpyxl.DEFUSEDXML:
        raise ParseError("workbooks are only read with defusedxml installed")
    check_workbook_archive(binary, max_unpacked_bytes=max_unpacked_bytes)
    try:
        workbook = openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as error:
        raise ParseError(f"not a readable XLSX workbook: {error}") from error
    try:
        sheet = workbook.worksheets[0]
        width = min(sheet.max_column or XLSX_MAX_COLUMNS, XLSX_MAX_COLUMNS)
        rows = sheet.iter_rows(values_only=True, max_col=width)
        head: list[list[str]] = []
        for row in rows:
            head.append([_cell(c) for c in row])
            if len(head) >= HEADER_SCAN_ROWS:
                break
        if not head:
            raise ParseError("the workbook's first sheet is empty")
        header_index = _find_header(head)
        if header_index is None:
            if not column_map:
                raise UnknownColumns(
                    "no title column recognised; map the columns to fields",
                    columns=_unique_header(head[0]),
                )
            header_index = 0
        header_cells = head[header_index]
        while header_cells and not clean_text(header_cells[-1]):
            header_cells = header_cells[:-1]
        header = _unique_header(header_cells)

        def numbered() -> Iterator[tuple[int, list[str]]]:
            for offset, cells in enumerate(head[header_index + 1 :], start=header_index + 2):
                yield offset, cells
            for offset, row in enumerate(rows, start=len(head) + 1):
                if offset > max_rows:
                    raise ParseError(
                        f"the sheet has more than {max_rows:,} rows, more than any single "
                        "export; split it into several files",
                        offset,
                    )
                yield offset, [_cell(c) for c in row]

        def trimmed() -> Iterator[tuple[int, list[str]]]:
            for line, cells in numbered():
                # openpyxl pads rows to the sheet's width; empty trailing cells are not data.
                while len(cells) > len(header) and not clean_text(cells[-1]):
                    cells = cells[:-1]
                yield line, cells

        yield from _rows_to_records(header, trimmed(), column_map)
    finally:
        workbook.close()


def read_header(lines: Iterable[str], delimiter: str | None = None) -> list[str]:
    """The header row of a CSV/TSV whose columns are unknown (for the mapping step)."""
    try:
        for item in parse_text(lines, delimiter=delimiter):
            if isinstance(item, ParsedRecord):
                return list(item.raw)
        return []
    except UnknownColumns as error:
        return error.columns
