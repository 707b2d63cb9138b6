"""Parsers of digital-library exports, one module per format, all streaming.

`iter_entries(binary, fmt)` yields ParsedRecord and EntryProblem items; a file that cannot be
read at all raises ParseError. Pure Python: no Django, no project imports.
"""

from collections.abc import Iterator
from typing import BinaryIO

from . import bibtex, endnote_tagged, endnote_xml, medline, proquest, ris, tabular, wos
from .base import EntryProblem, ParsedRecord, ParseError, UnknownColumns
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


def iter_entries(
    binary: BinaryIO, fmt: str, *, column_map: dict[str, str] | None = None
) -> Iterator[ParsedRecord | EntryProblem]:
    """Parse a seekable binary stream positioned at its start, in the given format."""
    if fmt == "endnote_xml":
        yield from endnote_xml.parse(binary)
        return
    if fmt == "xlsx":
        yield from tabular.parse_xlsx(binary, column_map=column_map)
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
    "ParseError",
    "ParsedRecord",
    "UnknownColumns",
    "binary_kind",
    "detect_format",
    "iter_entries",
    "read_columns",
]
