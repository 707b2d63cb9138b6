"""The reports pages: access, fragments, recompute and polling, drill-down, every download."""

import csv
import io
import json
import xml.etree.ElementTree as ET
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from screening.models import AuditEvent, FunnelSnapshot
from screening.services import funnel as funnel_service
from screening.services import queue as queue_service

from .reports_helpers import assert_seed_funnel, seeded_module  # noqa: F401

DOWNLOAD_NAMES = [
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
]


@pytest.fixture
def seeded(seeded_module, db):  # noqa: F811 (the imported fixture, requested by name)
    review, cast, _ = seeded_module
    review.refresh_from_db()
    # What every member sees with blind mode off (rolled back with the test); blind mode's
    # hiding of the funnel from reviewers and viewers is tests/test_reports_blind.py's.
    review.blind_mode = False
    review.save(update_fields=["blind_mode"])
    return review


@pytest.fixture
def snapshot(seeded):
    return funnel_service.funnel_compute(review=seeded)


@pytest.fixture
def no_broker():
    with mock.patch.object(queue_service.current_app, "send_task") as send:
        yield send


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


# reports_home ---------------------------------------------------------------------------------


def test_home_shows_snapshot_diagram_tables_and_downloads(seeded, snapshot, client_for):
    response = client_for("viewer").get(url("reports_home", seeded))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Snapshot computed" in html
    assert 'class="prisma-diagram"' in html
    assert "(n = 1,655)" in html and "(n = 1,905)" in html
    assert url("reports_box", seeded, "new_studies") in html
    assert 'id="table1-imported">1,905<' in html
    assert "Figure 2" in html and "chart-per-year" in html
    assert "1.81 %" in html and "3.44 %" in html
    for name in DOWNLOAD_NAMES:
        assert url("reports_download", seeded, name) in html
    # Viewers read but cannot recompute.
    assert 'id="funnel-recompute"' not in html


def test_home_never_computes_in_the_request(seeded, client_for):
    response = client_for("owner").get(url("reports_home", seeded))
    assert response.status_code == 200
    assert "No funnel computed yet" in response.content.decode()
    assert not FunnelSnapshot.objects.filter(review=seeded).exists()
    assert 'id="funnel-recompute"' in response.content.decode()


def test_home_fragment_for_htmx(seeded, snapshot, client_for, htmx_headers):
    response = client_for("owner").get(url("reports_home", seeded), **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "prisma-diagram" in html


def test_home_anonymous_outsider_and_method(seeded, client_for):
    response = Client().get(url("reports_home", seeded))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client_for("outsider").get(url("reports_home", seeded)).status_code == 404
    assert client_for("owner").post(url("reports_home", seeded)).status_code == 405


# recompute and status -------------------------------------------------------------------------


def test_recompute_enqueues_and_answers_with_a_polling_fragment(
    seeded, client_for, htmx_headers, no_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("reviewer").post(url("reports_recompute", seeded), **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in html and "Computing the funnel" in html
    assert no_broker.call_count == 1
    assert no_broker.call_args.kwargs == {
        "kwargs": {"review_id": seeded.pk},
        "countdown": 0,
        "retry": False,
        "ignore_result": True,
    }
    assert not FunnelSnapshot.objects.filter(review=seeded).exists()
    assert AuditEvent.objects.filter(review=seeded, action="funnel.request").exists()

    # The worker's run (here called directly) ends the polling and swaps the diagram in.
    funnel_service.funnel_refresh(review_id=seeded.pk)
    response = client_for("reviewer").get(
        url("reports_status", seeded) + "?since=0", **htmx_headers
    )
    html = response.content.decode()
    assert "hx-trigger" not in html
    assert 'hx-swap-oob="true"' in html and "prisma-diagram" in html


def test_recompute_without_htmx_redirects(seeded, client_for, no_broker):
    response = client_for("owner").post(url("reports_recompute", seeded))
    assert response.status_code == 302
    assert response["Location"] == url("reports_home", seeded)


def test_recompute_refused_to_viewer_outsider_anonymous_and_get(seeded, client_for, no_broker):
    assert client_for("viewer").post(url("reports_recompute", seeded)).status_code == 403
    assert client_for("outsider").post(url("reports_recompute", seeded)).status_code == 404
    assert Client().post(url("reports_recompute", seeded)).status_code == 302
    assert client_for("owner").get(url("reports_recompute", seeded)).status_code == 405
    assert no_broker.call_count == 0
    assert not AuditEvent.objects.filter(review=seeded, action="funnel.request").exists()


def test_status_bad_input_and_access(seeded, client_for):
    response = client_for("owner").get(url("reports_status", seeded) + "?since=abc")
    assert response.status_code == 400
    assert "since" in response.content.decode()
    assert client_for("outsider").get(url("reports_status", seeded)).status_code == 404
    assert Client().get(url("reports_status", seeded)).status_code == 302
    assert client_for("owner").post(url("reports_status", seeded)).status_code == 405


def test_status_while_nothing_was_requested_does_not_poll(seeded, snapshot, client_for):
    html = client_for("viewer").get(url("reports_status", seeded)).content.decode()
    assert "hx-trigger" not in html and "Snapshot computed" in html


# drill-down -----------------------------------------------------------------------------------


def test_box_lists_the_studies_behind_the_number_escaped(seeded, snapshot, client_for):
    response = client_for("viewer").get(url("reports_box", seeded, "new_studies"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="box-count" class="fw-semibold">30<' in html
    assert "&lt;b&gt;MLOps&lt;/b&gt; &amp; pipelines" in html
    assert "<b>MLOps</b>" not in html
    assert "Included" in html


def test_box_with_reason_detail_and_pages(seeded, snapshot, client_for, htmx_headers):
    client = client_for("viewer")
    response = client.get(url("reports_box", seeded, "dbr_excluded") + "?detail=duplicate")
    assert 'id="box-count" class="fw-semibold">1<' in response.content.decode()
    response = client.get(
        url("reports_box", seeded, "records_screened") + "?page=2", **htmx_headers
    )
    html = response.content.decode()
    assert "<html" not in html and "Page 2 of 34" in html
    response = client.get(url("reports_box", seeded, "database_results") + "?detail=IEEE+Xplore")
    assert 'id="box-count" class="fw-semibold">90<' in response.content.decode()


def test_box_bad_input_unknown_box_and_access(seeded, client_for):
    owner = client_for("owner")
    response = owner.get(url("reports_box", seeded, "records_screened") + "?page=zero")
    assert response.status_code == 400
    assert "Enter a whole number" in response.content.decode()
    assert owner.get(url("reports_box", seeded, "no_such_box")).status_code == 404
    assert owner.post(url("reports_box", seeded, "new_studies")).status_code == 405
    assert Client().get(url("reports_box", seeded, "new_studies")).status_code == 302
    assert client_for("outsider").get(url("reports_box", seeded, "new_studies")).status_code == 404


# downloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOWNLOAD_NAMES)
def test_every_download_is_an_attachment(seeded, snapshot, client_for, name):
    response = client_for("viewer").get(url("reports_download", seeded, name))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{seeded.slug}-{name}"'
    assert len(response.content) > 100


def test_funnel_downloads_match_the_snapshot(seeded, snapshot, client_for):
    client = client_for("viewer")
    data = json.loads(client.get(url("reports_download", seeded, "funnel.json")).content)
    assert_seed_funnel(data)
    svg = client.get(url("reports_download", seeded, "prisma.svg")).content.decode()
    root = ET.fromstring(svg)
    text = " ".join(root.itertext())
    assert "Seeded <MLOps> review" in text and "(n = 1,598)" in text
    assert "http://testserver/r/seeded-review/reports/box/new_studies/" in svg
    pdf = client.get(url("reports_download", seeded, "prisma.pdf")).content
    assert pdf.startswith(b"%PDF") and b"/URI (http://testserver/r/" in pdf
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(url("reports_download", seeded, "prisma2020.csv")).content.decode()
            )
        )
    )
    assert list(rows[0]) == [
        "data",
        "node",
        "box",
        "description",
        "boxtext",
        "tooltips",
        "url",
        "n",
    ]
    by_data = {r["data"]: r for r in rows}
    assert by_data["dbr_assessed"]["n"] == "54"
    assert (
        by_data["dbr_excluded"]["n"]
        == "invalid publication type, 3; duplicate, 1; exclusion criteria, 20"
    )
    assert by_data["database_results"]["url"].endswith("/box/database_results/")


def test_table_downloads(seeded, client_for):
    client = client_for("viewer")
    table1 = list(
        csv.reader(
            io.StringIO(client.get(url("reports_download", seeded, "table1.csv")).content.decode())
        )
    )
    assert table1[-1][-2:] == ["1905", "1905"]
    overlap = client.get(url("reports_download", seeded, "overlap.csv")).content.decode()
    assert overlap.startswith("study_id,title,year,doi,libraries,sources")
    figure2 = client.get(url("reports_download", seeded, "figure2.svg"))
    assert figure2["Content-Type"] == "image/svg+xml"
    ET.fromstring(figure2.content)
    included = list(
        csv.DictReader(
            io.StringIO(
                client.get(url("reports_download", seeded, "included.csv")).content.decode()
            )
        )
    )
    assert len(included) == 30
    ris = client.get(url("reports_download", seeded, "included.ris")).content.decode()
    assert ris.count("ER  - ") == 30


FUNNEL_NAMES = ["prisma.svg", "prisma.pdf", "funnel.json", "prisma2020.csv"]


def test_funnel_download_buttons_are_disabled_with_the_reason_without_snapshot(seeded, client_for):
    for role in ("owner", "viewer"):
        html = client_for(role).get(url("reports_home", seeded)).content.decode()
        for name in FUNNEL_NAMES:
            assert url("reports_download", seeded, name) not in html, name
            assert f'data-download="{name}" disabled' in html, name
        assert 'id="downloads-reason"' in html and "No funnel has been computed" in html
        # Tables do not need the funnel: they stay links.
        assert url("reports_download", seeded, "table1.csv") in html
    assert (
        "press Recompute" in client_for("owner").get(url("reports_home", seeded)).content.decode()
    )


def test_funnel_download_buttons_are_links_once_a_snapshot_exists(seeded, snapshot, client_for):
    html = client_for("viewer").get(url("reports_home", seeded)).content.decode()
    for name in FUNNEL_NAMES:
        assert url("reports_download", seeded, name) in html, name
    assert 'id="downloads-reason"' not in html


def test_status_poll_that_finds_the_new_snapshot_enables_the_downloads(
    seeded, snapshot, client_for
):
    html = (
        client_for("owner")
        .get(url("reports_status", seeded) + "?since=0", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert 'id="downloads" hx-swap-oob="true"' in html
    assert url("reports_download", seeded, "prisma.svg") in html


def test_funnel_download_without_snapshot_is_a_page_not_plain_text(seeded, client_for):
    response = client_for("owner").get(url("reports_download", seeded, "prisma.svg"))
    html = response.content.decode()
    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/html")
    assert "<html" in html and "No funnel has been computed" in html
    assert url("reports_home", seeded) in html


def test_download_unknown_name_access_and_method(seeded, client_for):
    assert (
        client_for("owner").get(url("reports_download", seeded, "secrets.txt")).status_code == 404
    )
    assert (
        client_for("outsider").get(url("reports_download", seeded, "table1.csv")).status_code == 404
    )
    assert Client().get(url("reports_download", seeded, "table1.csv")).status_code == 302
    assert (
        client_for("owner").post(url("reports_download", seeded, "table1.csv")).status_code == 405
    )


def test_empty_review_pages_and_downloads(review, client_for):
    client = client_for("owner")
    html = client.get(url("reports_home", review)).content.decode()
    assert "No funnel computed yet" in html and "No search strings logged yet" in html
    assert "No included studies yet" in html
    funnel_service.funnel_compute(review=review)
    html = client.get(url("reports_home", review)).content.decode()
    assert "(n = 0)" in html
    for name in DOWNLOAD_NAMES:
        assert client.get(url("reports_download", review, name)).status_code == 200, name
    assert (
        'id="box-count" class="fw-semibold">0<'
        in client.get(url("reports_box", review, "dbr_excluded")).content.decode()
    )
