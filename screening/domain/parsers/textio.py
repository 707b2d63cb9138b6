"""Bytes to lines: encoding sniffing (UTF-32/UTF-16 by byte order mark or by their NUL
pattern, UTF-8 with or without BOM, else Windows-1252/Latin-1) and universal line ends (CRLF,
LF and the bare CRs some exporters leave inside fields)."""

import codecs
import io
from typing import BinaryIO

_CHUNK = 1 << 20
# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDE_SAMPLE = 4096


def wide_encoding(head: bytes) -> str | None:
    """UTF-32 or UTF-16 (what some Windows tools save as "Unicode"), from the byte order
    mark or, without one, from where the NUL bytes of mostly-ASCII text fall; else None."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return None if encoding == "utf-8-sig" else encoding
    sample = head[:_WIDE_SAMPLE]
    sample = sample[: len(sample) - len(sample) % 4]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    units = [sample[i : i + 4] for i in range(0, len(sample), 4)]
    if all(u[1:] == b"\x00\x00\x00" or (u[2:] == b"\x00\x00" and u[0]) for u in units):
        return "utf-32-le"
    if all(u[:3] == b"\x00\x00\x00" or (u[:2] == b"\x00\x00" and u[3]) for u in units):
        return "utf-32-be"
    pairs = [sample[i : i + 2] for i in range(0, len(sample), 2)]
    zero_high = sum(1 for p in pairs if p[1] == 0 and p[0] != 0)
    zero_low = sum(1 for p in pairs if p[0] == 0 and p[1] != 0)
    if zero_high >= 0.6 * len(pairs) and not any(p == b"\x00\x00" for p in pairs):
        return "utf-16-le"
    if zero_low >= 0.6 * len(pairs) and not any(p == b"\x00\x00" for p in pairs):
        return "utf-16-be"
    return None


def sniff_encoding(binary: BinaryIO) -> str:
    """Decide the encoding by decoding the whole stream incrementally (constant memory).

    A file is UTF-8 only if every byte decodes; IEEE's and some BibTeX exports are Latin-1 or
    Windows-1252, which would otherwise raise on the first accented letter.
    """
    start = binary.tell()
    head = binary.read(_WIDE_SAMPLE)
    binary.seek(start)
    wide = wide_encoding(head)
    if wide:
        return wide
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = True
    try:
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
    wide = wide_encoding(data)
    if wide:
        # A UTF-16/32 head may end inside a character: drop the incomplete unit.
        unit = 4 if wide.startswith("utf-32") else 2
        return data[: len(data) - len(data) % unit].decode(wide, errors="replace").lstrip("\ufeff")
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 4:
            return data[: error.start].decode("utf-8")
        return data.decode("cp1252", errors="replace")
