"""Writers for the included-studies export: RIS, BibTeX and CSV.

Pure Python. RIS and BibTeX are written for reference managers (Zotero, EndNote, Mendeley,
JabRef) and LaTeX: BibTeX special characters are escaped, keys are unique and ASCII, and
non-ASCII text is kept as UTF-8 (biber and bibtex with inputenc read it).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Citation:
    title: str
    authors: Sequence[str] = ()
    year: int | None = None
    venue: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    doi: str = ""
    url: str = ""
    pmid: str = ""
    abstract: str = ""
    keywords: Sequence[str] = ()
    publication_type: str = ""
    sources: Sequence[str] = field(default_factory=tuple)
    study_id: int | None = None


def _kind(publication_type: str, venue: str) -> str:
    """One of journal, conference, chapter, book, other, guessed from the type and venue."""
    text = f"{publication_type} {venue}".lower()
    if any(word in text for word in ("conference", "proceeding", "symposium", "workshop")):
        return "conference"
    if "chapter" in text:
        return "chapter"
    if "book" in text:
        return "book"
    if any(word in text for word in ("journal", "article", "transactions", "letters")):
        return "journal"
    return "other"


RIS_TYPES = {
    "journal": "JOUR",
    "conference": "CPAPER",
    "chapter": "CHAP",
    "book": "BOOK",
    "other": "GEN",
}
BIBTEX_TYPES = {
    "journal": ("article", "journal"),
    "conference": ("inproceedings", "booktitle"),
    "chapter": ("incollection", "booktitle"),
    "book": ("book", "series"),
    "other": ("misc", "howpublished"),
}


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def _pages(pages: str) -> tuple[str, str]:
    parts = re.split(r"\s*[-\u2013\u2014]+\s*", pages.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def to_ris(citations: Iterable[Citation]) -> str:
    """RIS (one record per citation, `TAG  - value` lines, `ER  -` after each)."""
    lines: list[str] = []
    for c in citations:
        lines.append(f"TY  - {RIS_TYPES[_kind(c.publication_type, c.venue)]}")
        lines.append(f"TI  - {_one_line(c.title)}")
        lines += [f"AU  - {_one_line(a)}" for a in c.authors if a.strip()]
        if c.year:
            lines.append(f"PY  - {c.year}")
        if c.venue:
            lines.append(f"T2  - {_one_line(c.venue)}")
        if c.volume:
            lines.append(f"VL  - {_one_line(c.volume)}")
        if c.issue:
            lines.append(f"IS  - {_one_line(c.issue)}")
        if c.pages:
            start, end = _pages(c.pages)
            lines.append(f"SP  - {start}")
            if end:
                lines.append(f"EP  - {end}")
        if c.doi:
            lines.append(f"DO  - {_one_line(c.doi)}")
        if c.url:
            lines.append(f"UR  - {_one_line(c.url)}")
        if c.pmid:
            lines.append(f"AN  - {_one_line(c.pmid)}")
        if c.abstract:
            lines.append(f"AB  - {_one_line(c.abstract)}")
        lines += [f"KW  - {_one_line(k)}" for k in c.keywords if k.strip()]
        if c.publication_type:
            lines.append(f"M3  - {_one_line(c.publication_type)}")
        lines.append("ER  - ")
        lines.append("")
    return "\n".join(lines)


_BIBTEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_SPECIAL = re.compile("|".join(re.escape(ch) for ch in _BIBTEX_ESCAPES))


def bibtex_escape(value: str) -> str:
    """Escape the characters LaTeX treats as commands or groups; whitespace collapsed."""
    return _BIBTEX_SPECIAL.sub(lambda m: _BIBTEX_ESCAPES[m.group(0)], _one_line(value))


def _ascii_word(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9]", "", folded)


_STOP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "and", "to", "towards", "toward"}


def bibtex_key(citation: Citation) -> str:
    """`lastnameYEARfirstword`, ASCII letters and digits only (for example chen2020mlops)."""
    author = citation.authors[0] if citation.authors else ""
    last = author.split(",")[0] if "," in author else (author.split() or [""])[-1]
    words = [_ascii_word(w) for w in citation.title.split()]
    first = next((w for w in words if w and w.lower() not in _STOP_WORDS), "")
    key = f"{_ascii_word(last).lower()}{citation.year or ''}{first.lower()}"
    return key or "study"


def unique_keys(citations: Sequence[Citation]) -> list[str]:
    """One key per citation; repeats get a, b, c... suffixes (the first keeps the bare key)."""
    keys: list[str] = []
    seen: set[str] = set()
    for citation in citations:
        base = bibtex_key(citation)
        key, n = base, 0
        while key in seen:
            n += 1
            key = f"{base}{_suffix(n)}"
        seen.add(key)
        keys.append(key)
    return keys


def _suffix(n: int) -> str:
    letters = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def to_bibtex(citations: Sequence[Citation]) -> str:
    """BibTeX entries with unique keys and escaped values."""
    entries: list[str] = []
    for key, c in zip(unique_keys(citations), citations, strict=True):
        entry_type, venue_field = BIBTEX_TYPES[_kind(c.publication_type, c.venue)]
        fields: list[tuple[str, str]] = [("title", bibtex_escape(c.title))]
        if c.authors:
            fields.append(
                ("author", " and ".join(bibtex_escape(a) for a in c.authors if a.strip()))
            )
        if c.year:
            fields.append(("year", str(c.year)))
        if c.venue:
            fields.append((venue_field, bibtex_escape(c.venue)))
        for name, value in (("volume", c.volume), ("number", c.issue)):
            if value:
                fields.append((name, bibtex_escape(value)))
        if c.pages:
            start, end = _pages(c.pages)
            fields.append(("pages", bibtex_escape(f"{start}--{end}" if end else start)))
        if c.doi:
            fields.append(("doi", bibtex_escape(c.doi)))
        if c.url:
            fields.append(("url", _one_line(c.url).replace("%", r"\%").replace("#", r"\#")))
        if c.pmid:
            fields.append(("pmid", bibtex_escape(c.pmid)))
        if c.abstract:
            fields.append(("abstract", bibtex_escape(c.abstract)))
        if c.keywords:
            fields.append(("keywords", bibtex_escape(", ".join(k for k in c.keywords if k))))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@{entry_type}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


CSV_COLUMNS = (
    "key",
    "title",
    "authors",
    "year",
    "venue",
    "volume",
    "issue",
    "pages",
    "doi",
    "url",
    "pmid",
    "publication_type",
    "keywords",
    "sources",
    "abstract",
)


def spreadsheet_safe(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def to_csv(citations: Sequence[Citation]) -> str:
    """CSV with a header row; lists joined with "; "; formula-like cells defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key, c in zip(unique_keys(citations), citations, strict=True):
        row = [
            key,
            c.title,
            "; ".join(c.authors),
            str(c.year or ""),
            c.venue,
            c.volume,
            c.issue,
            c.pages,
            c.doi,
            c.url,
            c.pmid,
            c.publication_type,
            "; ".join(c.keywords),
            "; ".join(c.sources),
            c.abstract,
        ]
        writer.writerow([spreadsheet_safe(_one_line(v)) for v in row])
    return buffer.getvalue()


def rows_to_csv(rows: Iterable[Sequence[object]]) -> str:
    """Any table as CSV (text cells defused against formula injection)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([spreadsheet_safe(v) if isinstance(v, str) else v for v in row])
    return buffer.getvalue()
