"""Parser and normalisation unit tests: pure Python, no database, milliseconds each."""

import io
from itertools import islice

import pytest

from screening.domain.normalise import (
    latex_to_unicode,
    normalise_doi,
    normalise_year,
    split_glued_authors,
)
from screening.domain.parsers import (
    EntryProblem,
    ParsedRecord,
    ParseError,
    UnknownColumns,
    binary_kind,
    detect_format,
    iter_entries,
    read_columns,
    ris,
)

from .conftest import SHARED_DATA


def parse_bytes(data: bytes, fmt: str, **kwargs):
    items = list(iter_entries(io.BytesIO(data), fmt, **kwargs))
    records = [i for i in items if isinstance(i, ParsedRecord)]
    problems = [i for i in items if isinstance(i, EntryProblem)]
    return records, problems


RIS_TWO = (
    "TY  - JOUR\nTI  - First title\nAU  - Doe, Jane\nAU  - Roe, Rick\nPY  - 2019//\n"
    "DO  - https://doi.org/10.1000/ABC.1\nAB  - An abstract.\nER  - \n\n"
    "TY  - CONF\nT1  - Second title\nY1  - 1 Jan.-Feb. 2020\nER  - \n"
)


# --- normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("https://doi.org/10.1016/J.ESWA.2016.10.021", "10.1016/j.eswa.2016.10.021"),
        ("http://dx.doi.org/10.1002/cpp.2398", "10.1002/cpp.2398"),
        ("doi:10.1000/xyz.", "10.1000/xyz"),
        ("10.1016%2fj.eswa.2016.10.021", "10.1016/j.eswa.2016.10.021"),
        ("S1769-7212(19)30059-X [pii]", ""),
        ("", ""),
    ],
)
def test_normalise_doi(raw, expected):
    assert normalise_doi(raw) == expected


@pytest.mark.parametrize(
    "raw,expected",
    [("2019//", 2019), ("1 Jan.-Feb. 2019", 2019), ("2012-07-03", 2012), ("n.d.", None)],
)
def test_normalise_year(raw, expected):
    assert normalise_year(raw) == expected


@pytest.mark.parametrize(
    "raw,expected",
    [
        (r"{\"U}ber {B}ayesian", "Über Bayesian"),
        (r"Mart{\'\i}nez", "Martínez"),
        (r"Fran\c{c}ois \& co", "François & co"),
        (r"pages 10\textendash{}20", "pages 10–20"),
        (r"{\ss}", "ß"),
    ],
)
def test_latex_to_unicode(raw, expected):
    assert latex_to_unicode(raw) == expected


def test_springer_glued_authors_are_split():
    assert split_glued_authors("Vivek K. PallipuramMohammad BhuiyanMelissa C. Smith") == [
        "Vivek K. Pallipuram",
        "Mohammad Bhuiyan",
        "Melissa C. Smith",
    ]
    assert split_glued_authors("John McNamaraJane Doe") == ["John McNamara", "Jane Doe"]


# --- RIS -------------------------------------------------------------------------------------


def test_ris_fields_are_normalised():
    records, problems = parse_bytes(RIS_TWO.encode(), "ris")
    assert problems == []
    first, second = records
    assert (first.title, first.authors, first.year) == (
        "First title",
        ["Doe, Jane", "Roe, Rick"],
        2019,
    )
    assert first.doi == "10.1000/abc.1"
    assert first.raw["AU"] == ["Doe, Jane", "Roe, Rick"]
    assert (second.title, second.year, second.publication_type) == ("Second title", 2020, "CONF")
    assert first.line == 1 and second.line == 10


def test_ris_bom_keeps_first_record_and_bare_cr_splits_tags():
    data = (
        b"\xef\xbb\xbf"
        + RIS_TWO.replace("AU  - Roe, Rick\n", "AU  - Roe, Rick\rAD  - Univ\r").encode()
    )
    records, _ = parse_bytes(data, "ris")
    assert [r.title for r in records] == ["First title", "Second title"]
    assert records[0].raw["AD"] == "Univ"


def test_ris_ovid_numbering_and_trailing_tags_belong_to_the_record():
    data = (
        b"1.\nTY  - JOUR\nT1  - Ovid one\nER  -\nNL  - Clin Psychol\n\nLink: x\n\n"
        b"2.\nTY  - JOUR\nT1  - Ovid two\nER  -\n"
    )
    records, problems = parse_bytes(data, "ris")
    assert [r.title for r in records] == ["Ovid one", "Ovid two"]
    assert records[0].raw["NL"] == "Clin Psychol"
    assert problems == []


def test_ris_untagged_continuation_lines_and_export_date_text():
    data = (
        b"TY  - JOUR\nTI  - Wrapped\ntitle here\nKW  - one\ntwo\nthree\nPY  - 2011\n\n"
        b"Export Date: 12 May 2022\n\nER  -\n"
    )
    (record,), _ = parse_bytes(data, "ris")
    assert record.title == "Wrapped title here"
    assert record.keywords == ["one", "two", "three"]
    assert record.raw["_untagged"] == "Export Date: 12 May 2022"


def test_ris_repeated_abstract_tags_are_all_kept():
    data = b"TY  - JOUR\nTI  - T\nAB  - Main abstract.\nAB  - Copyright line.\nER  -\n"
    (record,), _ = parse_bytes(data, "ris")
    assert record.abstract == "Main abstract. Copyright line."


def test_ris_truncated_file_is_an_error_with_a_line_number():
    data = RIS_TWO.encode() + b"TY  - JOUR\nTI  - Cut off\nAB  - The file ends her"
    with pytest.raises(ParseError, match="truncated") as error:
        parse_bytes(data, "ris")
    assert error.value.line == 16


def test_ris_parser_streams_instead_of_reading_everything():
    def endless():
        number = 0
        while True:
            number += 1
            yield "TY  - JOUR\n"
            yield f"TI  - Record {number}\n"
            yield "ER  - \n"

    first_three = list(islice(ris.parse(endless()), 3))
    assert [r.title for r in first_three] == ["Record 1", "Record 2", "Record 3"]


# --- BibTeX ---------------------------------------------------------------------------------

BIB = r"""Scopus
EXPORT DATE: 13 January 2017

@ARTICLE{Key2017,
author={D{\"o}e, J. and Roe, R.},
title={{R}egression trees for {\"U}ber data},
journal={Expert Systems},
year={2017},
keywords={trees; regression},
keywords={repeated},
doi={10.1016/J.ESWA.2016.10.021}
}

@article{Key2017,
  title = "Same key, other entry",
  abstract = "Goal 3, "Health and Well-Being", and more",
  year = 2018,
  Early Access Date = {{DEC 2019}},
}
@comment{ignored}
"""


def test_bibtex_repeated_fields_duplicate_keys_and_accents():
    records, problems = parse_bytes(BIB.encode(), "bibtex")
    assert [p for p in problems if p.severity == "skipped"] == []
    first, second = records
    assert first.title == "Regression trees for Über data"
    assert first.authors == ["Döe, J.", "Roe, R."]
    assert first.raw["keywords"] == ["trees; regression", "repeated"]
    assert first.keywords == ["trees", "regression", "repeated"]
    assert first.doi == "10.1016/j.eswa.2016.10.021"
    assert second.title == "Same key, other entry"
    assert second.abstract == 'Goal 3, "Health and Well-Being", and more'
    assert second.raw["Early Access Date"] == "{DEC 2019}"
    assert second.year == 2018


def test_bibtex_latin1_file_is_decoded():
    data = "@article{k, title={Caf\u00e9 na\u00efve}, year={2020}}\n".encode("latin-1")
    (record,), _ = parse_bytes(data, "bibtex")
    assert record.title == "Café naïve"


def test_bibtex_key_with_a_comma_and_a_byte_order_mark():
    data = b"\xef\xbb\xbf@ARTICLE{Kenny20103,17,\n\tauthor = {Kenny, P},\n\ttitle = {Parity}}\n"
    (record,), _ = parse_bytes(data, "bibtex")
    assert (record.source_record_id, record.title) == ("Kenny20103,17", "Parity")


def test_bibtex_truncated_entry_is_an_error():
    with pytest.raises(ParseError, match="truncated"):
        parse_bytes(b"@article{a, title={One}}\n@article{b, title={Two", "bibtex")


# --- tables ---------------------------------------------------------------------------------


def test_csv_semicolon_with_preamble_and_excel_equals():
    data = (
        "\ufeffSEARCH QUERY;dinosaur:ti;;\n-----;;;\n;;;\n"
        'Title;Author Names;Abstract;ISSN\nA title;"Doe J., Roe R.";Text;="0012"\n'
    ).encode()
    (record,), _ = parse_bytes(data, "csv")
    assert record.raw["ISSN"] == "0012"
    assert record.authors == ["Doe J.", "Roe R."]
    assert record.line == 5


def test_csv_multiline_quoted_fields_and_source_map():
    data = (
        b'"Document Title",Authors,"Abstract","DOI","PDF Link","Publication Year"\n'
        b'"Title one","A. Smith; B. Jones","line one\nline two","10.1109/X.1","http://x","2020"\n'
    )
    records, problems = parse_bytes(data, "csv")
    assert records[0].abstract == "line one line two"
    assert records[0].authors == ["A. Smith", "B. Jones"]
    assert any("IEEE Xplore" in p.reason for p in problems if p.severity == "info")


def test_scopus_extra_funding_column_keeps_the_columns_after_it_aligned():
    header = "Title,Funding Text 1,Publisher,EID,Source title\n"
    row = "T,fund one,fund two,Elsevier,2-s2.0-1,Journal\n"
    (record,), problems = parse_bytes((header + row).encode(), "csv")
    assert record.raw["Publisher"] == "Elsevier"
    assert record.source_record_id == "2-s2.0-1"
    assert record.raw["Funding Text 1"] == "fund one fund two"


def test_unknown_columns_need_a_mapping_then_import_with_it():
    data = b"Heading,Summary,Writers\nA study,Some text,Doe J.; Roe R.\n"
    with pytest.raises(UnknownColumns) as error:
        parse_bytes(data, "csv")
    assert error.value.columns == ["Heading", "Summary", "Writers"]
    assert read_columns(io.BytesIO(data), "csv") == ["Heading", "Summary", "Writers"]
    (record,), _ = parse_bytes(
        data, "csv", column_map={"title": "Heading", "abstract": "Summary", "authors": "Writers"}
    )
    assert (record.title, record.abstract, record.authors) == (
        "A study",
        "Some text",
        ["Doe J.", "Roe R."],
    )


def test_xlsx_title_row_above_header():
    path = SHARED_DATA / "exports/asreview-citation-file-formatting/XLSX/_baseline.xlsx"
    records, _ = parse_bytes(path.read_bytes(), "xlsx")
    assert len(records) == 100
    assert all(r.title for r in records)


# --- other formats and detection ---------------------------------------------------------------


def test_medline_continuation_lines_and_doi():
    data = (
        b"PMID- 30922926\nTI  - Time lapse: A glimpse\n      into genomics.\n"
        b"LID - 10.1016/j.ejmg.2019.03.004 [doi]\nFAU - Griffin, Darren K\nDP  - 2020 Feb\n\n"
        b"PMID- 2\nTI  - Second\n"
    )
    records, _ = parse_bytes(data, "medline")
    assert records[0].title == "Time lapse: A glimpse into genomics."
    assert (records[0].doi, records[0].pmid, records[0].year) == (
        "10.1016/j.ejmg.2019.03.004",
        "30922926",
        2020,
    )
    assert records[1].title == "Second"


def test_wos_plain_text_lists_and_truncation():
    data = (
        b"FN Clarivate\nVR 1.0\nPT J\nAU Doe, J\n   Roe, R\nTI A wrapped\n   title\n"
        b"PY 2001\nER\n\nEF\n"
    )
    (record,), _ = parse_bytes(data, "wos")
    assert record.authors == ["Doe, J", "Roe, R"]
    assert record.title == "A wrapped title"
    with pytest.raises(ParseError, match="truncated"):
        parse_bytes(b"FN x\nPT J\nTI Cut", "wos")


def test_endnote_xml_truncated_is_an_error():
    path = SHARED_DATA / "dedup/bib-dedupe-benchmark/respiratory/Respiratory_endnote.xml"
    with pytest.raises(ParseError, match="malformed or truncated"):
        parse_bytes(path.read_bytes()[:20000], "endnote_xml")


@pytest.mark.parametrize(
    "head,name,expected",
    [
        (b"PMID- 1\nTI  - x\n", "pubmed.ris", "medline"),
        (b"FN Clarivate\nVR 1.0\nPT J\nTI x\nER\n", "x.ris", "wos"),
        (b"\r\nTY  - JOUR\r\nER  - \r\n", "x.txt", "ris"),
        (b"@article{a, title={x}}", "x.txt", "bibtex"),
        (b"%T Title\n%A Author\n", "x.txt", "endnote_tagged"),
        (b"<?xml version='1.0'?><xml><records><record>", "x.xml", "endnote_xml"),
        (b"Title,Authors\nA,B\n", "x.csv", "csv"),
        (b"PT\tAU\tTI\nJ\tA\tB\n", "x.txt", "tsv"),
        (b"Dear colleague, here is my letter.", "x.txt", None),
    ],
)
def test_detect_format_from_content(head, name, expected):
    assert detect_format(head, name) == expected


@pytest.mark.parametrize(
    "head,kind",
    [
        (b"\x89PNG\r\n\x1a\n....", "a PNG image"),
        (b"%PDF-1.7 ...", "a PDF document"),
        (b"\x00\x01\x02binary" * 10, "a binary file"),
        (b"TY  - JOUR\n", None),
    ],
)
def test_binary_files_are_recognised(head, kind):
    assert binary_kind(head) == kind
