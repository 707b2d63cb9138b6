"""Blind mode on the reports page, its fragments, drill-downs and files, and the API's funnel:
the figures built from decisions are shown only where `outcomes_visible` allows (owners and
adjudicators, or everyone once blind mode is off); searches and overlap stay open."""

import pytest
from django.urls import reverse

from screening.selectors import reports as report_selectors
from screening.selectors.screening import outcomes_visible
from screening.services import funnel as funnel_service
from screening.services.screening import adjudicator_designate
from screening.services.tokens import api_token_create

from .reports_helpers import seeded_module  # noqa: F401

NOTE = "Blind mode is on: the funnel and tables built from decisions are shown"
OUTCOME_DOWNLOADS = [
    "prisma.svg",
    "prisma.pdf",
    "funnel.json",
    "prisma2020.csv",
    "figure2.svg",
    "figure2.csv",
    "included.ris",
    "included.bib",
    "included.csv",
]
OPEN_DOWNLOADS = ["table1.csv", "overlap.csv"]
BOXES = sorted(report_selectors.RECORD_BOXES | report_selectors.STUDY_BOXES)
# Markup that carries a figure built from decisions (diagram, stage table, Figure 2, the
# included count) or offers one (the outcome files).
LEAKS = [
    "prisma-diagram",
    'id="funnel-stages"',
    'id="funnel-precision"',
    "chart-per-year",
    " included).",
    *[f'data-download="{name}"' for name in OUTCOME_DOWNLOADS],
]


@pytest.fixture
def seeded(seeded_module, db):  # noqa: F811 (the imported fixture, requested by name)
    review, _, _ = seeded_module
    review.refresh_from_db()
    funnel_service.funnel_compute(review=review)
    return review


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def assert_hidden(html: str) -> None:
    assert NOTE in html
    for leak in LEAKS:
        assert leak not in html, leak


def assert_shown(html: str) -> None:
    assert NOTE not in html
    for leak in LEAKS:
        assert leak in html, leak


def test_blind_reviewer_gets_the_note_instead_of_the_funnel(seeded, client_for, htmx_headers):
    assert seeded.blind_mode
    client = client_for("reviewer")
    for headers in ({}, htmx_headers):
        response = client.get(url("reports_home", seeded), **headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert_hidden(html)
        # Searches and deduplication reveal nobody's answers: Table 1 and the overlap stay.
        assert 'id="reports-table1"' in html and 'id="overlap-multi"' in html
        for name in OPEN_DOWNLOADS:
            assert f'data-download="{name}"' in html
    # The polling fragment, on the turn where it swaps the refreshed funnel in.
    response = client.get(url("reports_status", seeded) + "?since=0", **htmx_headers)
    assert response.status_code == 200
    assert 'hx-swap-oob="true"' in response.content.decode()
    assert_hidden(response.content.decode())


@pytest.mark.parametrize("name", OUTCOME_DOWNLOADS)
def test_blind_reviewer_cannot_download_outcome_files(seeded, client_for, name):
    response = client_for("viewer").get(url("reports_download", seeded, name))
    assert response.status_code == 403
    assert NOTE in response.content.decode()
    assert "Content-Disposition" not in response


def test_blind_reviewer_still_downloads_search_tables(seeded, client_for):
    client = client_for("reviewer")
    for name in OPEN_DOWNLOADS:
        assert client.get(url("reports_download", seeded, name)).status_code == 200


def test_blind_reviewer_cannot_drill_down(seeded, client_for, htmx_headers):
    client = client_for("reviewer")
    for box in BOXES:
        response = client.get(url("reports_box", seeded, box))
        assert response.status_code == 403, box
        html = response.content.decode()
        assert NOTE in html and "<table" not in html, box
    response = client.get(url("reports_box", seeded, "new_studies"), **htmx_headers)
    assert response.status_code == 403
    assert 'id="reports-blind-note"' in response.content.decode()


def test_owner_and_everyone_without_blind_mode_get_the_figures(seeded, client_for):
    assert_shown(client_for("owner").get(url("reports_home", seeded)).content.decode())
    assert client_for("owner").get(url("reports_box", seeded, "new_studies")).status_code == 200
    seeded.blind_mode = False
    seeded.save(update_fields=["blind_mode"])
    client = client_for("reviewer")
    assert_shown(client.get(url("reports_home", seeded)).content.decode())
    assert client.get(url("reports_box", seeded, "new_studies")).status_code == 200
    assert client.get(url("reports_download", seeded, "funnel.json")).status_code == 200


def test_adjudicator_gets_the_figures(seeded, seeded_module, client_for):  # noqa: F811
    _, cast, _ = seeded_module
    adjudicator_designate(review=seeded, user=cast["reviewer2"], by=cast["owner"])
    assert outcomes_visible(review=seeded, user=cast["reviewer2"])
    assert_shown(client_for("reviewer2").get(url("reports_home", seeded)).content.decode())


def test_api_funnel_is_403_for_blind_members(seeded, seeded_module, client):  # noqa: F811
    _, cast, _ = seeded_module

    tokens = {name: api_token_create(user=cast[name], name="script")[1] for name in cast}

    def get(name: str, path: str):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens[name]}"}
        return client.get(f"/api/reviews/{seeded.slug}/{path}", **headers)

    for name in ("reviewer", "viewer"):
        answer = get(name, "funnel")
        assert answer.status_code == 403
        assert answer.json() == {"detail": report_selectors.BLIND_OUTCOMES_NOTE}
        # Searches stay open.
        assert get(name, "table1").status_code == 200
        assert get(name, "prisma-s").status_code == 200
    assert get("owner", "funnel").json()["new_studies"] > 0
    seeded.blind_mode = False
    seeded.save(update_fields=["blind_mode"])
    assert get("viewer", "funnel").status_code == 200
