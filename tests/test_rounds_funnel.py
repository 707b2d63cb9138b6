"""The PRISMA 2020 diagram of a review updated by a search round, over real overlapping
exports (PubMed in round 1, Scopus in round 2): each round counted on its own, the previous
version's studies and the total, every box adding up and drilling down to as many studies."""

import io
import xml.etree.ElementTree as ET

import pypdf
import pytest

from screening.domain.funnel import BOXES as FUNNEL_BOXES
from screening.domain.funnel import (
    UPDATED_BOXES,
    awaiting_figure,
    box_total,
    prisma_csv_rows,
)
from screening.domain.prisma_svg import prisma_pdf, prisma_svg
from screening.models import Study
from screening.selectors.reports import funnel_box_rows, funnel_live
from screening.selectors.rounds import round_diff
from screening.selectors.screening import stage_get
from screening.services.funnel import funnel_compute
from screening.services.screening import decision_record

from .imports_helpers import media_root_fixture  # noqa: F401 (fixtures are found by name)
from .test_rounds import PUBMED, import_into, open_round_two
from .test_rounds import round_one as round_one  # the fixture, found by name
from .test_rounds import round_two as round_two  # the fixture, found by name

SVG = "{http://www.w3.org/2000/svg}"


def decide(review, cast, studies, stage_key, verdict):
    stage = stage_get(review=review, key=stage_key)
    for study in studies:
        for reviewer in (cast["reviewer"], cast["reviewer2"]):
            decision_record(
                review=review, study=study, stage=stage, reviewer=reviewer, verdict=verdict
            )


@pytest.fixture
def screened(review, cast, round_one, round_two):
    """Round 1: 3 studies included (5 excluded by the fixture); round 2: of its 205 new
    studies, 2 excluded at title, 1 included, 1 assessed at full text and not decided yet."""
    excluded = {s.pk for s in round_one["excluded"]}
    old = list(
        Study.objects.filter(review=review, outcome="screening").exclude(pk__in=excluded)[:3]
    )
    decide(review, cast, old, "title", "include")
    decide(review, cast, old, "full_text", "include")
    diff = round_diff(review=review, search_round=round_two)
    new = list(Study.objects.filter(records__pk__in=diff.new).distinct().order_by("id")[:4])
    decide(review, cast, new[:2], "title", "exclude")
    decide(review, cast, new[2:], "title", "include")
    decide(review, cast, new[2:3], "full_text", "include")
    return {"previous": old, "new": new}


BOXES = (*FUNNEL_BOXES, *UPDATED_BOXES)


def test_round_two_funnel_counts_the_update_and_the_previous_version(review, screened):
    funnel = funnel_live(review=review)
    assert funnel["current_round"] == 2
    assert funnel["database_results"] == 286
    assert funnel["database_specific_results"] == {"PubMed": 0, "Scopus": 286}
    # The 81 records already in the review (63 unchanged, 18 changed) are duplicates.
    assert funnel["duplicates"] == 81
    assert funnel["records_screened"] == 205
    assert funnel["records_excluded"] == 2
    assert (funnel["dbr_sought_reports"], funnel["dbr_assessed"]) == (2, 2)
    assert funnel["new_studies"] == funnel["new_reports"] == 1
    assert funnel["previous_studies"] == funnel["previous_reports"] == 3
    assert funnel["total_studies"] == funnel["total_reports"] == 4
    first, second = funnel["rounds"]
    assert (first["round"], first["database_results"], first["records_screened"]) == (1, 104, 104)
    assert (first["records_excluded"], first["dbr_sought_reports"], first["new_studies"]) == (
        5,
        3,
        3,
    )
    assert (second["round"], second["new_studies"]) == (2, 1)
    # Every box adds up: identified = duplicates + screened; screened = excluded + sought +
    # awaiting; assessed = excluded + included + awaiting a full-text decision.
    assert funnel["database_results"] == funnel["duplicates"] + funnel["records_screened"]
    assert awaiting_figure(funnel, "title") == 205 - 2 - 2
    assert funnel["records_screened"] == (
        funnel["records_excluded"] + funnel["dbr_sought_reports"] + awaiting_figure(funnel, "title")
    )
    assert awaiting_figure(funnel, "full_text") == 1
    assert (
        funnel["total_studies"] == Study.objects.filter(review=review, outcome="included").count()
    )


def test_round_two_boxes_drill_down_to_as_many_rows(review, screened):
    funnel = funnel_live(review=review)
    for box in BOXES:
        rows = funnel_box_rows(review=review, box=box)
        assert rows.count() == box_total(funnel, box), box
    previous = funnel_box_rows(review=review, box="previous_studies")
    assert set(previous.values_list("pk", flat=True)) == {s.pk for s in screened["previous"]}
    new = funnel_box_rows(review=review, box="new_studies")
    assert list(new.values_list("pk", flat=True)) == [screened["new"][2].pk]
    for stage in ("title", "full_text"):
        rows = funnel_box_rows(review=review, box="awaiting", detail=stage)
        assert rows.count() == awaiting_figure(funnel, stage), stage
    scopus = funnel_box_rows(review=review, box="database_results", detail="Scopus")
    assert scopus.count() == 286


def test_round_two_diagram_svg_pdf_and_csv(review, screened):
    funnel = funnel_live(review=review)
    svg = prisma_svg(funnel, url=lambda box, detail: f"/d/{box}/{detail}")
    root = ET.fromstring(svg)
    boxes = {g.get("data-box"): g for g in root.iter(f"{SVG}g") if g.get("data-box")}
    assert {"previous_studies", "total_studies", "new_studies"} <= set(boxes)
    texts = lambda box: " ".join(t.text for t in boxes[box].iter(f"{SVG}text"))  # noqa: E731
    assert "Studies included in previous version of review (n = 3)" in texts("previous_studies")
    assert "Reports of studies included in previous version of review (n = 3)" in texts(
        "previous_studies"
    )
    assert "Total studies included in review (n = 4)" in texts("total_studies")
    assert "New studies included in review (n = 1)" in texts("new_studies")
    assert "Awaiting screening (n = 201)" in texts("records_screened")
    assert "Awaiting a full-text decision (n = 1)" in texts("dbr_assessed")
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    assert {"/d/previous_studies/None", "/d/total_studies/None", "/d/awaiting/title"} <= links
    pdf = prisma_pdf(funnel, url=lambda box, detail: f"https://x.test/{box}")
    text = " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert "Previous studies" in text and "Total studies included in review (n = 4)" in text
    rows = {row[0]: row for row in prisma_csv_rows(funnel)[1:] if row[0] != "NA"}
    assert (rows["previous_studies"][7], rows["new_studies"][7]) == (3, 1)
    assert (rows["total_studies"][7], rows["database_results"][7]) == (4, 286)


def test_an_update_with_nothing_new_keeps_the_previous_version(review, cast, round_one, tmp_path):
    """Round 2 re-imports PubMed's records only (re-saved: another file, the same records):
    everything is a duplicate, no study is new, the previous version is the total."""
    excluded = {s.pk for s in round_one["excluded"]}
    old = list(Study.objects.filter(review=review).exclude(pk__in=excluded).order_by("id")[:2])
    decide(review, cast, old, "title", "include")
    decide(review, cast, old, "full_text", "include")
    search_round = open_round_two(review, cast["owner"], round_one)
    again = tmp_path / "pubmed-again.nbib"
    again.write_bytes(PUBMED.read_bytes() + b"\n")
    import_into(review, cast["owner"], search_round.runs.get(source=round_one["pubmed"]), again)
    funnel = funnel_live(review=review)
    assert (funnel["database_results"], funnel["duplicates"]) == (104, 104)
    assert (funnel["records_screened"], funnel["new_studies"]) == (0, 0)
    assert funnel["previous_studies"] == funnel["total_studies"] == 2
    assert [r["database_results"] for r in funnel["rounds"]] == [104, 104]
    assert funnel_box_rows(review=review, box="total_studies").count() == 2
    assert Study.objects.filter(review=review).count() == 104


def test_one_round_review_funnel_has_no_round_fields(review, round_one):
    funnel = funnel_live(review=review)
    assert not {"previous_studies", "rounds", "current_round", "total_studies"} & set(funnel)
    snapshot = funnel_compute(review=review)
    assert "previous_studies" not in snapshot.data
