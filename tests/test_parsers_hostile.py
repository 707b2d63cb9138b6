"""Hostile and odd exports at the parser level: entity bombs, external entities, a zip bomb,
wide encodings, oversize fields, HTML entities, semicolon tables mapped by hand.

Memory is bounded with tracemalloc (allocations of this process while parsing), a
correctness bound on how much the parser holds, not a timing.
"""

import io
import tracemalloc

import pytest

from screening.domain.parsers import (
    EntryProblem,
    HostileFile,
    ParsedRecord,
    ParseError,
    UnknownColumns,
    binary_kind,
    check_container,
    detect_format,
    iter_entries,
    read_columns,
)
from screening.domain.parsers.base import FIELD_LIMITS

from . import hostile_files

MEMORY_BOUND = 20 * 2**20  # far below any expansion of the files below


def parse(data: bytes, fmt: str, **kwargs):
    items = list(iter_entries(io.BytesIO(data), fmt, **kwargs))
    return (
        [i for i in items if isinstance(i, ParsedRecord)],
        [i for i in items if isinstance(i, EntryProblem)],
    )


def peak_while(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.fixture(scope="module")
def zip_bomb():
    return hostile_files.xlsx_zip_bomb()


# --- entity bombs and external entities ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [hostile_files.billion_laughs(), hostile_files.quadratic_blowup()],
    ids=["billion-laughs", "quadratic-blowup"],
)
def test_xml_entity_bombs_are_refused_with_memory_flat(data):
    def attempt():
        with pytest.raises(HostileFile, match="declares its own entity .*'billion laughs'"):
            parse(data, "endnote_xml")

    assert peak_while(attempt) < MEMORY_BOUND + len(data)
    with pytest.raises(HostileFile, match="declares its own entity"):
        check_container(io.BytesIO(data), "endnote_xml")


def test_xml_external_entity_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the content of a server file")
    data = hostile_files.external_entity(secret)
    with pytest.raises(HostileFile, match="refers to an outside file") as error:
        parse(data, "endnote_xml")
    assert "the content of a server file" not in str(error.value)
    with pytest.raises(HostileFile, match="refers to an outside file"):
        check_container(io.BytesIO(data), "endnote_xml")


def test_plain_endnote_xml_still_parses():
    data = (
        b"<?xml version='1.0'?><xml><records>"
        b"<record><titles><title>A &amp;lt; study</title></titles></record>"
        b"</records></xml>"
    )
    check_container(io.BytesIO(data), "endnote_xml")
    (record,), _ = parse(data, "endnote_xml")
    assert record.title == "A < study"


# --- XLSX ---------------------------------------------------------------------------------


def test_xlsx_zip_bomb_is_refused_before_unpacking_with_memory_flat(zip_bomb):
    def attempt():
        with pytest.raises(HostileFile, match="ZIP bomb"):
            parse(zip_bomb, "xlsx")

    assert peak_while(attempt) < MEMORY_BOUND + len(zip_bomb)
    with pytest.raises(HostileFile, match=r"would unpack from [\d,]+ to 1,073,741,824 bytes"):
        check_container(io.BytesIO(zip_bomb), "xlsx")


def test_xlsx_over_the_unpacked_size_limit_is_refused_in_words():
    workbook_bytes = hostile_files.xlsx_zip_bomb(unpacked=8 * 2**20)
    with pytest.raises(ParseError, match="unpacks to 8 MB, over the limit of 1 MB"):
        check_container(io.BytesIO(workbook_bytes), "xlsx", max_unpacked_bytes=2**20)


def test_xlsx_row_limit():
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["Title", "Authors"])
    for index in range(60):
        workbook.active.append([f"Study {index}", "Doe, J."])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(ParseError, match="more than 50 rows"):
        parse(buffer.getvalue(), "xlsx", max_rows=50)
    records, _ = parse(buffer.getvalue(), "xlsx", max_rows=100)
    assert len(records) == 60


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        hostile_files.utf16_ris(),
        hostile_files.utf16_ris(big_endian=True),
        hostile_files.utf16_ris(bom=False),
        hostile_files.utf16_ris(bom=False, big_endian=True),
        "TY  - JOUR\nTI  - Über Qualität 1&lt;p≤2\nAU  - Müller, Jörg\nER  - \n".encode("utf-32"),
    ],
    ids=["utf16-le-bom", "utf16-be-bom", "utf16-le", "utf16-be", "utf32-bom"],
)
def test_utf16_and_utf32_exports_are_decoded(data):
    assert binary_kind(data[:4096]) is None
    assert detect_format(data, "export.txt") == "ris"
    (record,), _ = parse(data, "ris")
    assert record.title == "Über Qualität 1<p≤2"
    assert record.authors == ["Müller, Jörg"]


def test_utf16_csv_without_bom():
    data = "Title\tAuthors\tAbstract\tYear\nÉtude\tDoe, J.\tText\t2020\n".encode("utf-16-le")
    assert detect_format(data, "x.txt") == "tsv"
    (record,), _ = parse(data, "tsv")
    assert (record.title, record.year) == ("Étude", 2020)


# --- field limits -------------------------------------------------------------------------


def test_oversize_title_is_cut_and_the_cut_reported():
    records, problems = parse(hostile_files.oversize_title_csv(3_000_000), "csv")
    (record,) = records
    assert len(record.title) == FIELD_LIMITS["title"]
    warnings = [p.reason for p in problems if p.severity == "warning"]
    assert warnings == [
        "title cut from 3,000,000 to 2,000 characters; "
        "original field 'Title' cut to 50,000 characters"
    ]
    assert len(record.raw["Title"]) == 50_000


def test_cell_beyond_the_csv_bound_fails_the_file_in_words():
    with pytest.raises(ParseError, match="a cell holds more than 10,000,000 characters"):
        parse(hostile_files.oversize_title_csv(10_000_001), "csv")


def test_many_authors_and_long_keywords_are_bounded():
    authors = "\n".join(f"AU  - Author{i}, A." for i in range(6000))
    data = f"TY  - JOUR\nTI  - Big team\n{authors}\nKW  - {'k' * 500}\nER  - \n".encode()
    (record,), problems = parse(data, "ris")
    assert len(record.authors) == 5000
    assert record.keywords == ["k" * 200]
    (warning,) = [p.reason for p in problems if p.severity == "warning"]
    assert "only the first 5,000 authors of 6,000 kept" in warning
    assert "one of the keywords cut from 500 to 200 characters" in warning


# --- HTML entities (issue 11, bug 14) ------------------------------------------------------


def test_html_entities_are_decoded_once_at_import():
    data = (
        b"TY  - JOUR\nTI  - Bounds for 1&lt;p&#8804;2 &amp; R&D at AT&T\n"
        b"AB  - Escaped twice: &amp;lt;b&amp;gt; stays one level&#x2026;\nER  - \n"
    )
    (record,), _ = parse(data, "ris")
    assert record.title == "Bounds for 1<p≤2 & R&D at AT&T"
    assert record.abstract == "Escaped twice: &lt;b&gt; stays one level…"


# --- semicolon tables mapped by hand (issue 11, bug 8) --------------------------------------


SEMICOLON_CSV = (
    b"Titel;Autoren;Jahr;Zusammenfassung;DOI\n"
    b"Eine Studie;Doe, J.;2021;Text eins;10.1000/a\n"
    b"Zweite Studie;Roe, R.;2022;Text zwei;10.1000/b\n"
)


def test_semicolon_table_is_mapped_with_the_delimiter_it_was_read_with():
    with pytest.raises(UnknownColumns) as error:
        parse(SEMICOLON_CSV, "csv")
    columns = error.value.columns
    assert columns == ["Titel", "Autoren", "Jahr", "Zusammenfassung", "DOI"]
    assert read_columns(io.BytesIO(SEMICOLON_CSV), "csv") == columns
    records, _ = parse(
        SEMICOLON_CSV,
        "csv",
        column_map={"title": "Titel", "authors": "Autoren", "year": "Jahr", "doi": "DOI"},
    )
    assert [(r.title, r.year, r.doi) for r in records] == [
        ("Eine Studie", 2021, "10.1000/a"),
        ("Zweite Studie", 2022, "10.1000/b"),
    ]


def test_a_mapping_naming_missing_columns_asks_for_a_mapping_again():
    with pytest.raises(UnknownColumns, match="names columns not in the file") as error:
        parse(SEMICOLON_CSV, "csv", column_map={"title": "Title"})
    assert error.value.columns == ["Titel", "Autoren", "Jahr", "Zusammenfassung", "DOI"]
