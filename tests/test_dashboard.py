"""The dashboard: progress and agreement from stored decisions, blind-safe, blind mode switch."""

import re

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


# The review at a glance: funnel, open conflicts, kappa and Table 5 -------------------------------


def _glance_setup(review, cast):
    """Two conflicts and two agreements at title screening, two included studies with Table 5
    answers, and the funnel snapshot the worker would store."""
    from decimal import Decimal

    from screening.models import QualityConsensus, QualityCriterion
    from screening.services.funnel import funnel_compute

    from .quality_helpers import included_study

    pairs = [("include", "exclude"), ("exclude", "uncertain"), ("exclude", "exclude")]
    screen(review, cast, [*pairs, ("include", "include")])
    qc1 = QualityCriterion.objects.create(review=review, code="QC1", text="Aims clear", position=0)
    qc2 = QualityCriterion.objects.create(review=review, code="QC2", text="Method", position=1)
    first, second = included_study(review, title="First"), included_study(review, title="Second")
    for study, answers in ((first, ("1", "1")), (second, ("1", "0"))):
        for criterion, answer in zip((qc1, qc2), answers, strict=True):
            QualityConsensus.objects.create(
                study=study, criterion=criterion, answer=Decimal(answer)
            )
    return funnel_compute(review=review)


def _attr(body: str, attribute: str, value: str) -> str:
    """The text of the element carrying attribute="value" (the glance's figures are leaves)."""
    match = re.search(rf'{attribute}="{re.escape(value)}"[^>]*>([^<]*)<', body)
    assert match, f"no {attribute}={value!r} on the page"
    return match.group(1).strip().replace(",", "")


def test_owner_sees_the_review_at_a_glance(review, cast, client_for):
    from screening.selectors.screening import conflicts_pending

    snapshot = _glance_setup(review, cast)
    body = client_for("owner").get(url(review)).content.decode()

    def figure(name):
        return _attr(body, "data-figure", name)

    data = snapshot.data
    assert figure("identified") == str(data["database_results"])
    assert figure("screened") == str(data["records_screened"]) != "0"
    assert figure("excluded") == str(data["records_excluded"])
    assert figure("sought") == str(data["dbr_sought_reports"]) == "1"  # the title include
    assert figure("included") == str(data["new_studies"])
    awaiting = {s["stage"]: s["awaiting"] for s in data["stages"] if s["awaiting"]}
    assert awaiting.get("title")
    assert {key: int(_attr(body, "data-awaiting", key)) for key in awaiting} == awaiting
    assert figure("awaiting") == str(sum(awaiting.values()))
    reports = reverse("screening:reports_home", args=[review.slug])
    assert f'href="{reports}#diagram-heading"' in body
    # Open conflicts: derived from the stored decisions, linked to the conflicts page.
    conflicts = reverse("screening:conflict_list", args=[review.slug])
    assert figure("open-conflicts") == str(conflicts_pending(review=review).count()) == "2"
    assert f'href="{conflicts}" data-figure="open-conflicts"' in body
    # Kappa of the title stage, as the agreement table below computes it.
    kappa = agreement_by_stage(review=review)[0]["fleiss"].kappa
    assert f"κ {kappa:.3f}" in body.split('data-glance-kappa="title">')[1].split("</li>")[0]
    # Table 5: 2 of 2 scored, total average (2 + 1) / 2, QC2 average 0.5.
    assert (figure("table5-complete"), figure("table5-studies")) == ("2", "2")
    assert figure("table5-average") == "1.5"
    assert _attr(body, "data-table5-average", "QC2") == "0.5"
    assert f'href="{reverse("screening:quality_table", args=[review.slug])}"' in body


def test_glance_before_any_funnel_or_quality(review, client_for):
    body = client_for("owner").get(url(review)).content.decode()
    assert 'data-figure="no-funnel"' in body and 'data-figure="table5-empty"' in body
    assert 'data-figure="open-conflicts">0<' in body


def test_blind_reviewer_gets_none_of_the_glance(review, cast, client_for, htmx_headers):
    _glance_setup(review, cast)
    assert review.blind_mode
    for headers in ({}, htmx_headers):
        body = client_for("reviewer").get(url(review), **headers).content.decode()
        assert "data-blind-hidden" in body
        for marker in ("dashboard-glance", "data-figure", "glance-funnel", "glance-table5"):
            assert marker not in body
    # The owner (an adjudicator) and, with blind mode off, the reviewer do see it.
    assert "dashboard-glance" in client_for("owner").get(url(review)).content.decode()
    review.blind_mode = False
    review.save()
    assert "dashboard-glance" in client_for("reviewer").get(url(review)).content.decode()


def test_glance_queries_do_not_grow_with_the_review(
    review, cast, client_for, django_assert_max_num_queries
):
    _glance_setup(review, cast)
    owner = client_for("owner")
    owner.get(url(review))  # warm the session and the caches
    with django_assert_max_num_queries(40) as small:
        owner.get(url(review))
    screen(review, cast, [("include", "exclude")] * 5 + [("include", "include")] * 5)
    with django_assert_max_num_queries(len(small.captured_queries)):
        owner.get(url(review))
