"""Format detection from content (the extension is only a tie-breaker): PubMed's .ris that is
MEDLINE, WoS plain text named .ris, RIS named .txt."""

import re

from .textio import decode_head, wide_encoding

FORMATS = {
    "ris": "RIS",
    "bibtex": "BibTeX",
    "csv": "CSV",
    "tsv": "TSV (tab-delimited)",
    "xlsx": "Excel workbook (XLSX)",
    "medline": "PubMed MEDLINE (.nbib)",
    "wos": "Web of Science plain text",
    "endnote_xml": "EndNote XML",
    "endnote_tagged": "EndNote tagged text (%-tags)",
    "proquest": "ProQuest text report",
}
HEAD_BYTES = 64 * 1024

_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
    b"BM": None,  # checked with NUL bytes below: "BM" also starts plain text
    b"\xd0\xcf\x11\xe0": "an old Excel/Word file (.xls/.doc); save it as .xlsx or .csv",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_RIS_TY = re.compile(r"^\s*TY\s{1,2}-", re.M)
_RIS_ER = re.compile(r"^ER\s{1,2}-", re.M)
_MEDLINE = re.compile(r"^PMID-\s*\d", re.M)
_WOS = re.compile(r"^(FN |VR |PT [A-Z]\s*$)", re.M)
_WOS_ER = re.compile(r"^ER\s*$", re.M)
_BIBTEX = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.M)
_REFER = re.compile(r"^%[A-Z0-9@] \S", re.M)
_PROQUEST = re.compile(r"^(Report Information from ProQuest|Document \d+ of \d+\s*$)", re.M)


class BinaryFile(ValueError):
    pass


def binary_kind(head: bytes) -> str | None:
    """A description of a non-text file (image, PDF, archive), or None for text."""
    for magic, description in _BINARY_MAGIC.items():
        if description and head.startswith(magic):
            return description
    if head.startswith(b"PK\x03\x04"):
        return None  # a ZIP: XLSX is one (checked by the caller)
    if wide_encoding(head):
        return None  # UTF-16/UTF-32 text: its NUL bytes are half of every character
    sample = head[:8192]
    if b"\x00" in sample:
        return "a binary file"
    if sample:
        control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
        if control / len(sample) > 0.05:
            return "a binary file"
    return None


def detect_format(head: bytes, file_name: str = "") -> str | None:
    """The format key of a file from its first bytes, or None when unrecognised."""
    name = file_name.lower()
    if head.startswith(b"PK\x03\x04"):
        return "xlsx" if b"xl/" in head or name.endswith((".xlsx", ".xlsm")) else None
    if binary_kind(head):
        return None
    text = decode_head(head)
    stripped = text.lstrip()
    if stripped.startswith("<?xml") or stripped.startswith("<xml"):
        return "endnote_xml" if "<record" in text or "<records" in text else None
    if _MEDLINE.search(text):
        return "medline"
    if _RIS_TY.search(text):
        return "ris"
    if _WOS.search(text) and (_WOS_ER.search(text) or len(head) >= HEAD_BYTES):
        return "wos"
    first_line = stripped.split("\n", 1)[0]
    if first_line.startswith("PT\tAU\t") or first_line.count("\t") >= 3:
        return "tsv"
    if _BIBTEX.search(text):
        return "bibtex"
    if _PROQUEST.search(text):
        return "proquest"
    if len(_REFER.findall(text)) >= 2:
        return "endnote_tagged"
    if _looks_tabular(text, cut=len(head) >= HEAD_BYTES):
        return "csv"
    if name.endswith(".ris") and _RIS_ER.search(text):
        return "ris"
    return None


def _looks_tabular(text: str, cut: bool = False) -> bool:
    lines = [line for line in text.splitlines()[:30] if line.strip()]
    if cut and len(lines) <= 30:
        # The head ends inside a row (a very long first record): judge by the complete lines.
        lines = lines[:-1]
        if len(lines) == 1:
            return any(lines[0].count(delimiter) >= 2 for delimiter in (",", ";"))
    if len(lines) < 2:
        return False
    for delimiter in (",", ";"):
        counts = [line.count(delimiter) for line in lines[:10]]
        if max(counts) >= 1 and sum(1 for c in counts if c >= 1) >= len(counts) * 0.6:
            return True
    return False
