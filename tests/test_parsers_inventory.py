"""Every real export in ../shared/data/INVENTORY.tsv parses to its exact record count, and every
title and abstract present in the file comes through.

The titles and abstracts "present in the file" are found by a deliberately simple scan that
shares no code with the parsers (a regex per tag, the csv module, openpyxl), so a parser that
drops or garbles an entry fails here. Parser level only: no database, a few seconds in all.
"""

import codecs
import csv
import html
import io
import re
import unicodedata

import pytest

from screening.domain.parsers import (
    HEAD_BYTES,
    EntryProblem,
    ParsedRecord,
    detect_format,
    iter_entries,
)

from .conftest import SHARED_DATA

INVENTORY = SHARED_DATA / "INVENTORY.tsv"
EXTRA = {"dedup/bib-dedupe-benchmark/respiratory/Respiratory_endnote.xml"}

# INVENTORY's own format column -> the format key detection must return.
EXPECTED_FORMAT = {
    "RIS": "ris",
    "BibTeX": "bibtex",
    "CSV": "csv",
    "CSV (; separated)": "csv",
    "TSV": "tsv",
    "XLSX": "xlsx",
    "PubMed MEDLINE": "medline",
    "PubMed MEDLINE (.nbib) despite .ris name": "medline",
    "WoS plain text (field-tagged)": "wos",
    "WoS plain text despite .ris name": "wos",
    "WoS tab-delimited": "tsv",
    "EndNote XML": "endnote_xml",
    "EndNote tagged (%T/%A)": "endnote_tagged",
    "ProQuest plain-text report": "proquest",
}

# Rows the importer skips on purpose, with the reason its report gives. abstrackr writes the
# section heading "citations that are not yet labeled by anyone" as a one-cell CSV row;
# INVENTORY does not count it as a record, and we skip it with its line number and reason in
# the report rather than import an empty study.
SKIPPED_ON_PURPOSE = {
    "exports/asreview-citation-file-formatting/CSV/_baseline_abstrackr.csv": [
        (36, "heading row"),
    ],
}


def inventory_rows():
    with open(INVENTORY, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [row for row in rows if row["path"].startswith("exports/") or row["path"] in EXTRA]


ROWS = inventory_rows() if INVENTORY.exists() else []


def fold(text: str) -> str:
    """Letters and digits only, accents and LaTeX commands dropped: a loose comparison key."""
    text = re.sub(r"\\[A-Za-z]+", "", text)
    text = unicodedata.normalize("NFKD", html.unescape(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text.lower())


def decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def physical_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


# Per format: (title pattern, abstract pattern), matched against each physical line.
LINE_TAGS = {
    "ris": (r"^\s*(?:TI|T1)\s{1,2}-\s*(.+)", r"^\s*(?:AB|N2)\s{1,2}-\s*(.+)"),
    "medline": (r"^TI\s+-\s*(.+)", r"^AB\s+-\s*(.+)"),
    "wos": (r"^TI (.+)", r"^AB (.+)"),
    "endnote_tagged": (r"^%T (.+)", r"^%X (.+)"),
    "proquest": (r"^Title: (.+)", r"^Abstract: (.+)"),
    "bibtex": (r"(?i)^\s*title\s*=\s*[{\"]+(.+)", r"(?i)^\s*abstract\s*=\s*[{\"]+(.+)"),
}
TABLE_TITLES = {
    "title",
    "document title",
    "article title",
    "item title",
    "title primary",
    "ti",
    "display_name",
}
TABLE_ABSTRACTS = {"abstract", "abstract note", "ab"}


def scan_table(rows: list[list[str]]) -> tuple[list[str], list[str]]:
    for index, row in enumerate(rows):
        names = [str(c or "").strip().lstrip("\ufeff").lower() for c in row]
        title_col = next((i for i, n in enumerate(names) if n in TABLE_TITLES), None)
        if title_col is None:
            continue
        abstract_col = next((i for i, n in enumerate(names) if n in TABLE_ABSTRACTS), None)
        titles, abstracts = [], []
        for data in rows[index + 1 :]:
            if title_col < len(data) and str(data[title_col] or "").strip():
                titles.append(str(data[title_col]))
            if (
                abstract_col is not None
                and abstract_col < len(data)
                and str(data[abstract_col] or "").strip()
            ):
                abstracts.append(str(data[abstract_col]))
        return titles, abstracts
    return [], []


def independent_scan(path, fmt: str, delimiter: str) -> tuple[list[str], list[str]]:
    """Titles and abstracts found in the file without the parsers (first line of each)."""
    data = path.read_bytes()
    if fmt == "xlsx":
        import openpyxl

        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
        return scan_table([list(r) for r in sheet.iter_rows(values_only=True)])
    text = decode(data)
    if fmt in {"csv", "tsv"}:
        return scan_table(list(csv.reader(io.StringIO(text), delimiter=delimiter)))
    if fmt == "endnote_xml":
        strip = re.compile(r"<[^>]+>")
        titles = [strip.sub("", t) for t in re.findall(r"<titles><title>(.*?)</title>", text, re.S)]
        abstracts = [
            strip.sub("", a) for a in re.findall(r"<abstract>(.*?)</abstract>", text, re.S)
        ]
        return titles, abstracts
    title_re, abstract_re = (re.compile(p) for p in LINE_TAGS[fmt])
    titles, abstracts = [], []
    for line in physical_lines(text):
        if match := title_re.match(line):
            titles.append(match.group(1))
        elif match := abstract_re.match(line):
            abstracts.append(match.group(1))
    return titles, abstracts


def missing(found: list[str], parsed: list[str]) -> list[str]:
    """Texts found by the scan whose first 50 letters appear in no parsed text.

    Containment, not prefix: a repeated AB tag (CINAHL's copyright line) is appended to the
    abstract it follows.
    """
    haystack = "|".join(fold(p) for p in parsed)
    return [text[:80] for text in found if fold(text) and fold(text)[:50] not in haystack]


def parse_all(path, fmt):
    records, problems = [], []
    with open(path, "rb") as handle:
        for item in iter_entries(handle, fmt):
            if isinstance(item, ParsedRecord):
                records.append(item)
            else:
                problems.append(item)
    return records, problems


def test_inventory_is_there():
    assert len(ROWS) == 122, "121 exports and the Respiratory EndNote library"


@pytest.mark.parametrize("row", ROWS, ids=[row["path"].split("/", 1)[1] for row in ROWS])
def test_export_parses_completely(row):
    path = SHARED_DATA / row["path"]
    expected_format = EXPECTED_FORMAT[row["format"]]
    with open(path, "rb") as handle:
        fmt = detect_format(handle.read(HEAD_BYTES), path.name)
    assert fmt == expected_format

    records, problems = parse_all(path, fmt)
    skipped = [p for p in problems if isinstance(p, EntryProblem) and p.severity == "skipped"]
    on_purpose = SKIPPED_ON_PURPOSE.get(row["path"], [])
    assert len(records) == int(row["records"])
    assert [(p.line, "heading row") for p in skipped] == on_purpose
    assert all("heading row" in p.reason for p in skipped)

    delimiter = "\t" if fmt == "tsv" else ";" if "; separated" in row["format"] else ","
    titles, abstracts = independent_scan(path, fmt, delimiter)
    assert missing(titles, [r.title for r in records]) == []
    assert missing(abstracts, [r.abstract for r in records]) == []
    # The scan must see something wherever the parser does, or it proves nothing.
    if any(r.title for r in records):
        assert titles
    assert sum(1 for r in records if r.title) >= len({fold(t)[:50] for t in titles if fold(t)})
    if abstracts:
        assert any(r.abstract for r in records)
