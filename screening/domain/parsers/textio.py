"""Bytes to lines: encoding sniffing (UTF-8 with or without BOM, else Windows-1252/Latin-1)
and universal line ends (CRLF, LF and the bare CRs some exporters leave inside fields)."""

import codecs
import io
from typing import BinaryIO

_CHUNK = 1 << 20


def sniff_encoding(binary: BinaryIO) -> str:
    """Decide the encoding by decoding the whole stream incrementally (constant memory).

    A file is UTF-8 only if every byte decodes; IEEE's and some BibTeX exports are Latin-1 or
    Windows-1252, which would otherwise raise on the first accented letter.
    """
    start = binary.tell()
    decoder = codecs.getincrementaldecoder("utf-8")()
    head = binary.read(3)
    is_utf8 = True
    try:
        decoder.decode(head)
        while chunk := binary.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        is_utf8 = False
    cp1252_ok = True
    if not is_utf8:
        binary.seek(start)
        cp_decoder = codecs.getincrementaldecoder("cp1252")()
        try:
            while chunk := binary.read(_CHUNK):
                cp_decoder.decode(chunk)
        except UnicodeDecodeError:
            cp1252_ok = False
    binary.seek(start)
    if is_utf8:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    return "cp1252" if cp1252_ok else "latin-1"


def open_text(binary: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """A line iterator over the binary stream; every CR, LF or CRLF ends a line."""
    return io.TextIOWrapper(binary, encoding=encoding, newline=None, errors="replace")


def decode_head(data: bytes) -> str:
    """Decode the first bytes of a file for format detection (a cut character is harmless)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 4:
            return data[: error.start].decode("utf-8")
        return data.decode("cp1252", errors="replace")
