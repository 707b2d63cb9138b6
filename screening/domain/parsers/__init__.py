"""Parsers of digital-library exports, one module per format, all streaming.

`iter_entries(binary, fmt)` yields ParsedRecord and EntryProblem items; a file that cannot be
read at all raises ParseError. Pure Python: no Django, no project imports.
"""

from collections.abc import Generator, Iterator
from typing import BinaryIO

from . import bibtex, endnote_tagged, endnote_xml, medline, proquest, ris, tabular, wos
from .base import EntryProblem, HostileFile, ParsedRecord, ParseError, UnknownColumns
from .detect import FORMATS, HEAD_BYTES, binary_kind, detect_format
from .textio import open_text, sniff_encoding

TEXT_PARSERS = {
    "ris": ris.parse,
    "bibtex": bibtex.parse,
    "medline": medline.parse,
    "wos": wos.parse,
    "endnote_tagged": endnote_tagged.parse,
    "proquest": proquest.parse,
}
TABULAR = {"csv", "tsv", "xlsx"}


def check_container(
    binary: BinaryIO, fmt: str, *, max_unpacked_bytes: int = tabular.XLSX_MAX_UNPACKED_BYTES
) -> None:
    """Refuse, before the file is stored, what the format's container makes dangerous: a
    workbook that unpacks past the bound, an XML file that declares or fetches entities.
    Raises ParseError (HostileFile for a file built to exhaust the reader)."""
    start = binary.tell()
    try:
        if fmt == "xlsx":
            tabular.check_workbook_archive(binary, max_unpacked_bytes=max_unpacked_bytes)
        elif fmt == "endnote_xml":
            endnote_xml.check_head(binary.read(HEAD_BYTES))
    finally:
        binary.seek(start)


def iter_entries(
    binary: BinaryIO,
    fmt: str,
    *,
    column_map: dict[str, str] | None = None,
    max_unpacked_bytes: int = tabular.XLSX_MAX_UNPACKED_BYTES,
    max_rows: int = tabular.XLSX_MAX_ROWS,
) -> Generator[ParsedRecord | EntryProblem, None, None]:
    """Parse a seekable binary stream positioned at its start, in the given format.

    A record with a field cut to its limit is followed by a warning saying what was cut.
    """
    for item in _entries(binary, fmt, column_map, max_unpacked_bytes, max_rows):
        yield item
        if isinstance(item, ParsedRecord) and item.truncated:
            yield EntryProblem(item.line, "; ".join(item.truncated), "warning")


def _entries(
    binary: BinaryIO,
    fmt: str,
    column_map: dict[str, str] | None,
    max_unpacked_bytes: int,
    max_rows: int,
) -> Iterator[ParsedRecord | EntryProblem]:
    if fmt == "endnote_xml":
        yield from endnote_xml.parse(binary)
        return
    if fmt == "xlsx":
        yield from tabular.parse_xlsx(
            binary,
            column_map=column_map,
            max_unpacked_bytes=max_unpacked_bytes,
            max_rows=max_rows,
        )
        return
    encoding = sniff_encoding(binary)
    text = open_text(binary, encoding)
    try:
        if fmt in {"csv", "tsv"}:
            delimiter = "\t" if fmt == "tsv" else None
            yield from tabular.parse_text(text, delimiter=delimiter, column_map=column_map)
        elif fmt in TEXT_PARSERS:
            yield from TEXT_PARSERS[fmt](text)
        else:
            raise ParseError(f"unsupported format {fmt!r}")
    finally:
        # The caller owns the binary stream: detach so closing the wrapper leaves it open
        # (unless the caller already closed it, abandoning this generator).
        if not binary.closed:
            text.detach()


def read_columns(binary: BinaryIO, fmt: str) -> list[str]:
    """The header of a table, for the column-mapping step."""
    if fmt == "xlsx":
        try:
            for _item in tabular.parse_xlsx(binary):
                break
        except UnknownColumns as error:
            return error.columns
        return []
    encoding = sniff_encoding(binary)
    text = open_text(binary, encoding)
    try:
        return tabular.read_header(text, delimiter="\t" if fmt == "tsv" else None)
    finally:
        text.detach()


__all__ = [
    "FORMATS",
    "HEAD_BYTES",
    "EntryProblem",
    "HostileFile",
    "ParseError",
    "ParsedRecord",
    "UnknownColumns",
    "binary_kind",
    "check_container",
    "detect_format",
    "iter_entries",
    "read_columns",
]
