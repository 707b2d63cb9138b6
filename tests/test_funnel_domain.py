"""Pure funnel arithmetic, the PRISMA diagram (SVG and PDF), Figure 2 and citation writers.

No database: these run in milliseconds.
"""

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pypdf
import pytest

from screening.domain.charts import nice_step, per_year_matrix, studies_per_year_svg
from screening.domain.citation_export import (
    Citation,
    bibtex_escape,
    spreadsheet_safe,
    to_bibtex,
    to_csv,
    to_ris,
    unique_keys,
)
from screening.domain.funnel import (
    PRISMA_CSV_COLUMNS,
    ROUND_FIELDS,
    FunnelCounts,
    StageCounts,
    awaiting_figure,
    box_total,
    funnel_from_counts,
    funnel_ordered,
    funnel_updated,
    percent,
    prisma_csv_rows,
    reason_label,
)
from screening.domain.prisma_svg import layout, prisma_pdf, prisma_svg, text_width, wrap

SEED = json.loads(
    (Path(__file__).resolve().parent.parent / "screening/demo_data/mlops_seed.json").read_text()
)
SVG = "{http://www.w3.org/2000/svg}"


def seed_counts(**overrides) -> FunnelCounts:
    reported = SEED["selection_funnel_reported"]
    title, abstract = reported["title_stage"], reported["abstract_stage"]
    reasons = dict(reported["full_text_excluded"]["reasons"])
    reasons.pop("content not accessible")
    stages = [
        StageCounts(
            "title", "Title screening", "title", "full_text", "abstract", "excluded",
            title["selected"], title["doubtful"], title["excluded"],
        ),
        StageCounts(
            "abstract", "Abstract screening", "abstract", "full_text", "full_text", "excluded",
            abstract["selected"], 0, abstract["excluded"],
        ),
        StageCounts(
            "full_text", "Full-text reading", "full_text", "included", "excluded", "excluded",
            reported["included"], 0, sum(reasons.values()),
        ),
    ]  # fmt: skip
    values = dict(
        records_by_source=reported["identified_by_source"],
        records_deduplicated=reported["identified"],
        studies=reported["screened_by_title"],
        stages=stages,
        not_retrieved=reported["full_text_excluded"]["reasons"]["content not accessible"],
        fulltext_exclusions=reasons,
    )
    values.update(overrides)
    return FunnelCounts(**values)


def expected_seed_funnel() -> dict:
    """The seed's reported figures in the funnel JSON's names (what every seed test asserts)."""
    reported = SEED["selection_funnel_reported"]
    reasons = dict(reported["full_text_excluded"]["reasons"])
    not_retrieved = reasons.pop("content not accessible")
    return {
        "database_results": reported["identified"],
        "database_specific_results": reported["identified_by_source"],
        "duplicates": reported["duplicates_removed"],
        "records_screened": reported["screened_by_title"],
        "records_excluded": reported["title_stage"]["excluded"]
        + reported["abstract_stage"]["excluded"],
        "dbr_sought_reports": reported["full_text_assessed"],
        "dbr_notretrieved_reports": not_retrieved,
        "dbr_assessed": reported["full_text_assessed"] - not_retrieved,
        "dbr_excluded": reasons,
        "new_studies": reported["included"],
        "precision": {
            "included_percent": reported["precision_percent"]["included"],
            "full_text_percent": reported["precision_percent"]["full_text_assessed"],
        },
    }


def test_seed_counts_give_the_papers_funnel_field_by_field():
    funnel = funnel_from_counts(seed_counts())
    for name, value in expected_seed_funnel().items():
        assert funnel[name] == value, name
    assert funnel["records_excluded"] == 1598
    assert funnel["dbr_assessed"] == 54
    assert box_total(funnel, "dbr_excluded") == 24
    assert funnel["excluded_automatic"] == funnel["excluded_other"] == 0
    assert funnel["new_reports"] == 30
    assert [s["stage"] for s in funnel["stages"]] == ["title", "abstract", "full_text"]
    assert funnel["stages"][0] | {"name": None} == {
        "stage": "title",
        "name": None,
        "screened": 1655,
        "include": 40,
        "uncertain": 284,
        "exclude": 1331,
        "awaiting": 0,
    }
    assert funnel["stages"][1]["screened"] == 284


def test_funnel_json_is_serialisable_with_integer_counts():
    funnel = json.loads(json.dumps(funnel_from_counts(seed_counts())))
    for name in ("database_results", "duplicates", "records_screened", "new_studies"):
        assert isinstance(funnel[name], int)


def test_quality_threshold_exclusion_is_its_own_reason():
    funnel = funnel_from_counts(seed_counts(quality_excluded=4))
    assert funnel["dbr_excluded"]["quality score below threshold"] == 4
    assert funnel["new_studies"] == 26
    assert box_total(funnel, "dbr_excluded") == 28


def test_records_awaiting_deduplication_are_not_counted_as_duplicates():
    funnel = funnel_from_counts(seed_counts(records_deduplicated=1800))
    assert funnel["duplicates"] == 145
    assert funnel["records_awaiting_deduplication"] == 105


def test_combined_title_abstract_routing():
    stages = [
        StageCounts("ta", "Title and abstract", "title_abstract", "full_text", "full_text",
                    "excluded", 10, 5, 85, awaiting=7),
        StageCounts("full_text", "Full text", "full_text", "included", "excluded", "excluded",
                    8, 2, 4),
    ]  # fmt: skip
    funnel = funnel_from_counts(
        FunnelCounts({"Scopus": 120}, 120, 107, stages, 1, {"exclusion criteria": 6})
    )
    assert funnel["records_excluded"] == 85
    assert funnel["dbr_sought_reports"] == 15
    assert funnel["dbr_assessed"] == 14
    assert funnel["new_studies"] == 8
    assert funnel["stages"][0]["awaiting"] == 7


def test_empty_review_has_zero_precision_not_a_division_error():
    funnel = funnel_from_counts(FunnelCounts({}, 0, 0, []))
    assert funnel["precision"] == {"included_percent": 0.0, "full_text_percent": 0.0}
    assert percent(1, 3) == 33.33


def test_reason_labels_group_protocol_criteria():
    assert reason_label(kind="exclusion", code="EC4", text="Not MLOps") == "exclusion criteria"
    assert reason_label(kind="other", code="INVALID-TYPE", text="x") == "invalid publication type"
    assert reason_label(kind="other", code="DUPLICATE", text="x") == "duplicate"
    assert reason_label(kind="other", code="X1", text=" Retracted ") == "retracted"


def test_prisma_csv_has_the_packages_columns_and_numbers():
    funnel = funnel_from_counts(seed_counts())
    rows = prisma_csv_rows(funnel, urls={"new_studies": "https://example.org/included"})
    assert rows[0] == PRISMA_CSV_COLUMNS
    by_data = {row[0]: row for row in rows[1:] if row[0] != "NA"}
    assert by_data["database_results"][7] == 1905
    assert by_data["duplicates"][7] == 250
    assert by_data["records_screened"][7] == 1655
    assert by_data["dbr_excluded"][7] == (
        "invalid publication type, 3; duplicate, 1; exclusion criteria, 20"
    )
    assert by_data["database_specific_results"][7].startswith("ACM Digital Library, 602;")
    assert by_data["new_studies"][6] == "https://example.org/included"
    assert by_data["total_studies"][7] == 30
    for row in rows:
        assert len(row) == 8


def test_wrap_respects_width_and_cuts_long_words():
    lines = wrap("Records marked as ineligible by automation tools (n = 0)", 150)
    assert len(lines) > 1
    assert all(text_width(line) <= 150 for line in lines)
    assert all(text_width(piece) <= 40 for piece in wrap("x" * 60, 40))


def test_svg_is_well_formed_escaped_and_carries_counts_and_links():
    funnel = funnel_from_counts(
        seed_counts(fulltext_exclusions={"<script>alert(1)</script> & co": 24})
    )
    svg = prisma_svg(funnel, title='Review "<b>"', url=lambda box, detail: f"/d/{box}?r={detail}")
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for number in ("1,905", "250", "1,655", "1,598", "57", "(n = 3)", "54", "30", "602", "797"):
        assert number in texts
    assert "<script>" in texts  # as text, escaped in the document
    assert "<script>" not in svg
    boxes = {g.get("data-box") for g in root.iter(f"{SVG}g") if g.get("data-box")}
    assert boxes >= {
        "database_results",
        "duplicates",
        "records_screened",
        "records_excluded",
        "dbr_sought_reports",
        "dbr_notretrieved_reports",
        "dbr_assessed",
        "dbr_excluded",
        "new_studies",
    }
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    assert "/d/new_studies?r=None" in links
    assert "/d/database_results?r=IEEE Xplore" in links


def test_layout_boxes_do_not_overlap_and_fit_the_canvas():
    diagram = layout(funnel_from_counts(seed_counts()))
    boxes = diagram.boxes
    for box in boxes:
        assert box.x + box.w <= diagram.width and box.y + box.h <= diagram.height
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            disjoint = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert disjoint, (a.key, b.key)


def _pdf_pages(pdf: bytes) -> list:
    return pypdf.PdfReader(io.BytesIO(pdf)).pages


def test_pdf_is_a_valid_single_page_document_with_the_counts_and_links():
    pdf = prisma_pdf(funnel_from_counts(seed_counts()), url=lambda b, d: f"https://x.test/{b}")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    (page,) = _pdf_pages(pdf)
    text = page.extract_text()
    for number in ("(n = 1,905)", "(n = 250)", "(n = 1,655)", "(n = 30)", "Springer Link"):
        assert number in text
    links = [a.get_object()["/A"]["/URI"] for a in page["/Annots"]]
    assert len(links) == 9
    assert "https://x.test/new_studies" in links


UNICODE_LABELS = {
    "Portuguese": "Biblioteca Digital Brasileira de Teses e Dissertações",
    "Greek": "Ελληνική βιβλιοθήκη",
    "Cyrillic": "Научная электронная библиотека eLIBRARY.RU",
    "Chinese": "中国知网",
    "Japanese": "医中誌ウェブ",
    "Korean": "한국학술지인용색인",
}


def test_pdf_keeps_non_latin_source_names_reasons_and_title():
    """Every script prints as written (the PDF writer once printed anything outside
    Windows-1252 as "?"); pypdf reads the text back out of the embedded fonts."""
    funnel = funnel_from_counts(
        seed_counts(
            records_by_source={label: n for n, label in enumerate(UNICODE_LABELS.values(), 1)},
            fulltext_exclusions={"Karlaš – Œuvre (東京)": 24},
        )
    )
    pdf = prisma_pdf(funnel, title="Revisão sistemática: 系统综述")
    text = " ".join(_pdf_pages(pdf)[0].extract_text().split())  # lines wrapped in the boxes
    assert "?" not in text
    assert "Revisão sistemática: 系统综述" in text
    for n, label in enumerate(UNICODE_LABELS.values(), 1):
        assert f"{label} (n = {n})" in text
    assert "Karlaš – Œuvre (東京) (n = 24)" in text


def test_figure2_chart_fills_year_gaps_and_is_well_formed():
    counts = {(2019, "ACM"): 3, (2021, "IEEE"): 2, (2021, "ACM"): 5}
    years, matrix = per_year_matrix(counts, ["ACM", "IEEE"])
    assert years == [2019, 2020, 2021]
    assert matrix == [[3, 0], [0, 0], [5, 2]]
    counts[(2020, "IE<EE>")] = 1
    root = ET.fromstring(studies_per_year_svg(counts, ["ACM", "IE<EE>"]))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 3  # zero bars are not drawn; "IEEE" is not a listed source
    assert "IE<EE>, 2020: 1" in [b.find(f"{SVG}title").text for b in bars]
    assert "ACM, 2021: 5" in [b.find(f"{SVG}title").text for b in bars]
    assert ET.fromstring(studies_per_year_svg({}, [])).find(f"{SVG}title").text


@pytest.mark.parametrize("maximum,step", [(0, 1), (4, 1), (12, 5), (30, 10), (95, 20)])
def test_nice_step(maximum, step):
    assert nice_step(maximum) == step


CITATIONS = [
    Citation(
        title="MLOps & the 100% {weird} title_with $pecial #chars ~ ^",
        authors=["Karlaš, Bojan", "Müller, Anna"],
        year=2020,
        venue="Proceedings of the 26th ACM SIGKDD Conference",
        pages="3259-3269",
        doi="10.1145/3394486.3403290",
        abstract="Line one\nline two",
        keywords=["mlops", "ci"],
    ),
    Citation(title="Another MLOps study", authors=["Karlaš, B."], year=2020, venue="J. Syst."),
    Citation(title="The Third", authors=[], year=None, publication_type="Journal Article"),
]


def test_bibtex_escapes_specials_and_keys_are_unique_ascii():
    bib = to_bibtex(CITATIONS)
    assert r"MLOps \& the 100\% \{weird\} title\_with \$pecial \#chars" in bib
    assert r"\textasciitilde{} \textasciicircum{}" in bib
    assert "@inproceedings{karlas2020mlops," in bib
    assert "@misc{karlas2020mlopsa," not in bib
    assert "@misc{karlas2020anothera," not in bib
    keys = unique_keys(CITATIONS + [CITATIONS[0]])
    assert len(set(keys)) == 4 and keys[3] == "karlas2020mlopsa"
    assert all(re.fullmatch(r"[a-z0-9]+", key) for key in keys)
    assert "pages = {3259--3269}" in bib
    assert "author = {Karlaš, Bojan and Müller, Anna}" in bib
    assert bib.count("{") - bib.count(r"\{") == bib.count("}") - bib.count(r"\}")
    assert bibtex_escape("a\\b") == r"a\textbackslash{}b"


def test_bibtex_parses_with_bibtexparser():
    import bibtexparser

    database = bibtexparser.loads(to_bibtex(CITATIONS))
    assert len(database.entries) == 3
    assert database.entries[0]["doi"] == "10.1145/3394486.3403290"


def test_ris_has_one_record_per_citation_and_parses_with_rispy():
    ris = to_ris(CITATIONS)
    assert ris.count("ER  - ") == 3
    assert "TY  - CPAPER" in ris and "TY  - JOUR" in ris
    assert "AB  - Line one line two" in ris
    import rispy

    entries = rispy.loads(ris)
    assert entries[0]["title"] == CITATIONS[0].title
    assert entries[0]["authors"] == ["Karlaš, Bojan", "Müller, Anna"]
    assert entries[0]["start_page"] == "3259" and entries[0]["end_page"] == "3269"


def test_csv_defuses_formulas_and_keeps_the_rest():
    rows = list(
        csv.DictReader(io.StringIO(to_csv([Citation(title="=HYPERLINK(1)", authors=["A, B"])])))
    )
    assert rows[0]["title"] == "'=HYPERLINK(1)"
    assert rows[0]["authors"] == "A, B"
    assert spreadsheet_safe("MLOps") == "MLOps"


def test_funnel_ordered_restores_reading_order_lost_by_jsonb():
    funnel = funnel_from_counts(seed_counts(quality_excluded=1))
    shuffled = json.loads(json.dumps(funnel, sort_keys=True))
    shuffled["dbr_excluded"]["retracted"] = 2
    ordered = funnel_ordered(shuffled, sources=["Springer Link", "IEEE Xplore"])
    assert list(ordered["dbr_excluded"]) == [
        "invalid publication type",
        "duplicate",
        "retracted",
        "exclusion criteria",
        "quality score below threshold",
    ]
    assert list(ordered["database_specific_results"]) == [
        "Springer Link",
        "IEEE Xplore",
        "ACM Digital Library",
        "ScienceDirect",
    ]


def _in_progress_funnel() -> dict:
    """2,250 studies screened by title: 7 excluded, 12 sent to full text, 2,231 waiting; of
    the 12, 5 assessed so far (3 included, 2 excluded), 7 awaiting their full-text decision."""
    stages = [
        StageCounts(
            "title", "Title screening", "title", "full_text", "full_text", "excluded",
            include=12, exclude=7, awaiting=2231,
        ),
        StageCounts(
            "full_text", "Full-text reading", "full_text", "included", "excluded", "excluded",
            include=3, exclude=2, awaiting=7,
        ),
    ]  # fmt: skip
    return funnel_from_counts(
        FunnelCounts(
            records_by_source={"Scopus": 2250},
            records_deduplicated=2250,
            studies=2250,
            stages=stages,
            fulltext_exclusions={"exclusion criteria": 2},
        )
    )


def _box_texts(svg: str) -> dict[str, str]:
    root = ET.fromstring(svg)
    return {
        g.get("data-box"): " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
        for g in root.iter(f"{SVG}g")
        if g.get("data-box")
    }


def test_diagram_in_progress_shows_what_awaits_a_decision_so_boxes_add_up():
    funnel = _in_progress_funnel()
    assert (funnel["records_screened"], funnel["records_excluded"]) == (2250, 7)
    assert (funnel["dbr_sought_reports"], funnel["dbr_assessed"]) == (12, 12)
    assert awaiting_figure(funnel, "title") == 2231
    assert awaiting_figure(funnel, "full_text") == 7
    texts = _box_texts(prisma_svg(funnel, url=lambda box, detail: f"/d/{box}/{detail}"))
    assert "Awaiting screening (n = 2,231) Title screening: 2,231" in texts["records_screened"]
    assert "Awaiting a full-text decision (n = 7)" in texts["dbr_assessed"]
    links = {
        a.get("href")
        for a in ET.fromstring(prisma_svg(funnel, url=lambda b, d: f"/d/{b}/{d}")).iter(f"{SVG}a")
    }
    assert {"/d/awaiting/title", "/d/awaiting/full_text"} <= links


def test_finished_diagram_shows_nothing_awaiting():
    texts = " ".join(_box_texts(prisma_svg(funnel_from_counts(seed_counts()))).values())
    assert "Awaiting" not in texts


def _updated_funnel() -> dict:
    first = funnel_from_counts(seed_counts())
    second = _in_progress_funnel()
    return funnel_updated([(1, first), (2, second)])


def test_updated_funnel_adds_the_previous_version_and_keeps_each_round():
    funnel = _updated_funnel()
    assert funnel["current_round"] == 2
    assert funnel["database_results"] == 2250 and funnel["new_studies"] == 3
    assert (funnel["previous_studies"], funnel["previous_reports"]) == (30, 30)
    assert (funnel["total_studies"], funnel["total_reports"]) == (33, 33)
    assert [r["round"] for r in funnel["rounds"]] == [1, 2]
    assert funnel["rounds"][0]["database_results"] == 1905
    assert funnel["rounds"][0]["dbr_excluded"] == funnel_from_counts(seed_counts())["dbr_excluded"]
    assert set(funnel["rounds"][1]) == {"round", *ROUND_FIELDS}
    rows = {row[0]: row[7] for row in prisma_csv_rows(funnel)[1:] if row[0] != "NA"}
    assert (rows["previous_studies"], rows["new_studies"], rows["total_studies"]) == (30, 3, 33)
    assert "previous_studies" not in funnel_from_counts(seed_counts())


def test_updated_review_layout_has_the_previous_and_total_boxes_without_overlap():
    diagram = layout(_updated_funnel(), title="Update")
    keys = [box.key for box in diagram.boxes]
    assert keys[0] == "previous_studies" and "total_studies" in keys
    assert [h.lines[0].text for h in diagram.headers] == [
        "Previous studies",
        "Identification of new studies via databases and registers",
    ]
    for box in diagram.boxes:
        assert box.x + box.w <= diagram.width and box.y + box.h <= diagram.height
    for i, a in enumerate(diagram.boxes):
        for b in diagram.boxes[i + 1 :]:
            disjoint = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert disjoint, (a.key, b.key)
    previous = diagram.boxes[0]
    total = next(box for box in diagram.boxes if box.key == "total_studies")
    new = next(box for box in diagram.boxes if box.key == "new_studies")
    # Arrows into the total: down from the previous version, left from the new studies.
    assert (previous.x + previous.w / 2, previous.y + previous.h) in [a[:2] for a in diagram.arrows]
    assert (new.x, total.x + total.w) in [(a[0], a[2]) for a in diagram.arrows]
