"""In Chromium, against a real worker: recompute the funnel from the reports page, drill down
from a box, and download the diagram, Table 1, Figure 2 and the exports."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from screening.models import FunnelSnapshot

from .factories import review_with_cast
from .reports_helpers import assert_seed_funnel, build_selection


@pytest.mark.browser
@pytest.mark.worker
def test_reports_page_end_to_end(celery_worker, login_page, live_server, tmp_path):
    review, cast = review_with_cast(slug="browser-review", title="Browser <MLOps> review")
    build_selection(review, [cast["reviewer"], cast["reviewer2"]])
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/reports/")
    assert page.locator("#funnel-status").inner_text().strip().startswith("No funnel computed")

    # Recompute: the worker computes, the polling fragment stops and the diagram swaps in.
    page.keyboard.press("r")
    page.wait_for_selector("svg.prisma-diagram", timeout=30_000)
    assert page.locator("#funnel-status[hx-trigger]").count() == 0
    assert "Snapshot computed" in page.locator("#funnel-status").inner_text()
    diagram = page.locator("svg.prisma-diagram")
    for text in ("(n = 1,905)", "(n = 250)", "(n = 1,655)", "(n = 1,598)", "(n = 57)", "(n = 30)"):
        assert text in diagram.inner_html()
    assert_seed_funnel(FunnelSnapshot.objects.get(review=review).data)
    page.screenshot(path=str(tmp_path / "reports.png"), full_page=True)

    # Table 1 and Figure 2 are on the page.
    assert page.locator("#table1-reported").inner_text() == "1,905"
    assert page.locator("#table1-imported").inner_text() == "1,905"
    assert page.locator(".figure2 svg.chart-per-year").is_visible()

    # Every download works from the page. Chromium holds back a download that a page starts
    # shortly after earlier ones (its guard against sites starting many downloads): the click
    # arrives on the link but no request is ever sent, at random among the later links. So
    # each download is started from a freshly loaded reports page, as a person returning to
    # the page would; every link is still clicked and every file still checked.
    downloads = {}
    for name in (
        "prisma.svg",
        "prisma.pdf",
        "funnel.json",
        "prisma2020.csv",
        "table1.csv",
        "figure2.svg",
        "figure2.csv",
        "overlap.csv",
        "included.ris",
        "included.bib",
        "included.csv",
    ):
        page.goto(f"/r/{review.slug}/reports/")
        with page.expect_download(timeout=20_000) as info:
            page.click(f'a[data-download="{name}"]')
        download = info.value
        assert download.suggested_filename == f"{review.slug}-{name}"
        downloads[name] = Path(download.path()).read_bytes()
    assert_seed_funnel(json.loads(downloads["funnel.json"]))
    assert "(n = 1,655)" in "".join(ET.fromstring(downloads["prisma.svg"]).itertext())
    assert downloads["prisma.pdf"].startswith(b"%PDF-")
    ET.fromstring(downloads["figure2.svg"])
    assert downloads["table1.csv"].decode().splitlines()[-1].endswith(",1905,1905")
    assert downloads["included.bib"].decode().count("@") == 30

    # Drill-down: the box of included studies lists its 30 studies, titles escaped.
    page.click('g[data-box="new_studies"] rect')
    page.wait_for_selector("#box-table")
    assert page.locator("#box-count").inner_text() == "30"
    assert "<b>MLOps</b> & pipelines" in page.locator("#box-table tbody tr").first.inner_text()
    page.screenshot(path=str(tmp_path / "box.png"), full_page=True)
