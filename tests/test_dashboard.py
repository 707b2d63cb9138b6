"""The dashboard: progress and agreement from stored decisions, blind-safe, blind mode switch."""

import pytest
from django.test import Client
from django.urls import reverse

from screening.selectors.dashboard import agreement_by_stage
from screening.services.screening import decision_record

from .screening_helpers import exclusion_criteria, make_studies, stage


def url(review):
    return reverse("screening:dashboard", args=[review.slug])


def screen(review, cast, verdict_pairs, key="title", reasons=None):
    studies = make_studies(review, len(verdict_pairs), stage_key=key)
    for study, (a, b) in zip(studies, verdict_pairs, strict=True):
        for user, verdict in ((cast["reviewer"], a), (cast["reviewer2"], b)):
            decision_record(
                review=review,
                study=study,
                stage=stage(review, key),
                reviewer=user,
                verdict=verdict,
                reasons=(reasons or []) if verdict == "exclude" else [],
            )
    return studies


def test_kappa_from_stored_decisions(review, cast):
    review.blind_mode = False
    review.save()
    # Wikipedia's grant-proposal table scaled down: yes/yes 4, yes/no 1, no/yes 2, no/no 3
    # -> p_o 0.7, p_e 0.5, Cohen's kappa 0.4.
    pairs = (
        [("include", "include")] * 4
        + [("include", "exclude")]
        + [("exclude", "include")] * 2
        + [("exclude", "exclude")] * 3
    )
    screen(review, cast, pairs)
    title = agreement_by_stage(review=review)[0]
    assert title["subjects"] == 10
    assert title["raw"] == pytest.approx(0.7)
    (pair,) = title["cohen_rows"]
    assert pair["agreement"].kappa == pytest.approx(0.4)


def test_per_criterion_agreement(review, cast):
    ec1, _, _ = exclusion_criteria(review)
    screen(review, cast, [("exclude", "exclude")] * 3, reasons=[ec1])
    title = agreement_by_stage(review=review)[0]
    (item,) = title["per_criterion"]
    assert item["criterion"] == ec1 and item["raw"] == pytest.approx(1.0)


def test_page_fragment_access(review, cast, client, client_for, htmx_headers):
    review.blind_mode = False
    review.save()
    screen(review, cast, [("include", "include"), ("exclude", "exclude")])
    page = client_for("viewer").get(url(review))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Title screening" in body and "Agreement" in body and 'id="agreement-title"' in body
    assert "reviewer2" in body
    fragment = client_for("viewer").get(url(review), **htmx_headers).content.decode()
    assert "<html" not in fragment and "stage-progress" in fragment
    assert Client().get(url(review)).status_code == 302
    assert client_for("outsider").get(url(review)).status_code == 404
    assert client_for("viewer").post(url(review)).status_code == 405


def test_dashboard_does_not_leak_pending_verdicts(review, cast, client_for):
    (study,) = make_studies(review, 1)
    before = client_for("reviewer2").get(url(review)).content.decode()
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="exclude",
        note="DASH-NOTE",
    )
    after = client_for("reviewer2").get(url(review)).content.decode()
    assert "DASH-NOTE" not in after
    # Only the decision count moves; verdict tallies and agreement stay as they were.
    title_before = agreement_by_stage(review=review)[0]
    assert title_before["subjects"] == 0
    assert before.count("Exclude") == after.count("Exclude")


def test_owner_switches_blind_mode(review, client_for):
    switch = reverse("screening:dashboard_blind_mode", args=[review.slug])
    assert client_for("reviewer").post(switch, {"blind_mode": "off"}).status_code == 403
    assert client_for("owner").post(switch, {"blind_mode": "maybe"}).status_code == 302
    review.refresh_from_db()
    assert review.blind_mode is True
    assert client_for("owner").post(switch, {"blind_mode": "off"}).status_code == 302
    review.refresh_from_db()
    assert review.blind_mode is False
    assert client_for("owner").get(switch).status_code == 405


def test_conflicts_counted_per_stage(review, cast, client_for):
    from screening.selectors.screening import stage_overview

    screen(review, cast, [("include", "exclude"), ("include", "include"), ("exclude", "uncertain")])
    rows = {row["stage"].key: row for row in stage_overview(review=review, user=cast["owner"])}
    assert rows["title"]["conflicts"] == 2
    assert rows["title"]["resolved"] == {"include": 1}
    assert rows["full_text"]["waiting"] == 1
    body = client_for("owner").get(url(review)).content.decode()
    assert f'{reverse("screening:conflict_list", args=[review.slug])}">2<' in body
