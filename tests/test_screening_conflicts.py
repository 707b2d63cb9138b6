"""The conflicts queue views: adjudicators see decisions and resolve; others see a count."""

import pytest
from django.test import Client
from django.urls import reverse

from screening.models import Adjudicator, AuditEvent, Resolution
from screening.services.screening import decision_record

from .screening_helpers import exclusion_criteria, make_studies, stage


@pytest.fixture
def conflict(review, cast):
    (study,) = make_studies(review, 1, title="Contested study")
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="include",
        note="NOTE-ONE",
    )
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer2"],
        verdict="exclude",
        note="NOTE-TWO",
    )
    return study


def list_url(review):
    return reverse("screening:conflict_list", args=[review.slug])


def resolve_url(review, study):
    return reverse("screening:conflict_resolve", args=[review.slug, study.pk])


def test_owner_sees_all_decisions(review, conflict, client_for, htmx_headers):
    client = client_for("owner")
    page = client.get(list_url(review))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Contested study" in body and "NOTE-ONE" in body and "NOTE-TWO" in body
    fragment = client.get(list_url(review), **htmx_headers).content.decode()
    assert "<html" not in fragment and "NOTE-TWO" in fragment


@pytest.mark.parametrize("who", ["reviewer", "reviewer2", "viewer"])
def test_non_adjudicators_see_only_a_count(review, conflict, client_for, htmx_headers, who):
    review.blind_mode = False
    review.save()
    for headers in ({}, htmx_headers):
        response = client_for(who).get(list_url(review), **headers)
        assert response.status_code == 200
        body = response.content.decode()
        assert "NOTE-ONE" not in body and "NOTE-TWO" not in body
        assert "Contested study" not in body
        assert "1 study awaits" in body


def test_access(review, conflict, client, client_for):
    assert Client().get(list_url(review)).status_code == 302
    assert client_for("outsider").get(list_url(review)).status_code == 404
    data = {"verdict": "include", "note": "x"}
    assert client_for("viewer").post(resolve_url(review, conflict), data).status_code == 403
    assert client_for("reviewer").post(resolve_url(review, conflict), data).status_code == 403
    assert client_for("owner").get(resolve_url(review, conflict)).status_code == 405
    assert client_for("owner").post(list_url(review)).status_code == 405
    assert not Resolution.objects.exists()


def test_owner_resolves_by_htmx(review, conflict, client_for, htmx_headers):
    response = client_for("owner").post(
        resolve_url(review, conflict),
        {"verdict": "uncertain", "note": "Read the abstract"},
        **htmx_headers,
    )
    assert response.status_code == 200
    assert "resolved" in response.content.decode()
    conflict.refresh_from_db()
    assert conflict.current_stage.key == "abstract"
    resolution = Resolution.objects.get()
    assert (resolution.method, resolution.note) == ("adjudication", "Read the abstract")


def test_resolve_bad_input(review, conflict, client_for, htmx_headers):
    client = client_for("owner")
    response = client.post(resolve_url(review, conflict), {"note": "x"}, **htmx_headers)
    assert response.status_code == 422
    assert "Choose the outcome" in response.content.decode()
    response = client.post(
        resolve_url(review, conflict), {"verdict": "nope", "note": "x"}, **htmx_headers
    )
    assert response.status_code == 422
    assert not Resolution.objects.exists()


def test_page_preselects_nothing_and_shows_abstract_and_reasons(review, conflict, client_for):
    (ec1, ec2, ec3) = exclusion_criteria(review)
    conflict.abstract = "An <b>abstract</b> the adjudicator reads"
    conflict.save()
    body = client_for("owner").get(list_url(review)).content.decode()
    card = body[body.index(f'id="conflict-{conflict.pk}"') :]
    assert "An &lt;b&gt;abstract&lt;/b&gt; the adjudicator reads" in card
    assert 'name="verdict"' in card and " checked" not in card and "selected>" not in card
    # Every reason is a checkbox with its number key: no multi-select to Ctrl-click.
    for number, reason in enumerate((ec1, ec2, ec3), start=1):
        assert f'type="checkbox" name="reasons" value="{reason.pk}"' in card
        assert f'data-key="{number}"' in card
    assert " multiple" not in card
    assert "<script>" not in body and "onclick" not in body


def test_note_only_when_overriding_both_reviewers(review, cast, conflict, client_for):
    """Siding with one reviewer needs no note; an outcome neither chose does (nothing stored)."""
    client = client_for("owner")
    (other,) = make_studies(review, 1, title="Second contested study")
    for who, verdict in (("reviewer", "include"), ("reviewer2", "exclude")):
        decision_record(
            review=review, study=other, stage=stage(review), reviewer=cast[who], verdict=verdict
        )
    sided = client.post(resolve_url(review, conflict), {"verdict": "exclude", "version": 0})
    assert sided.status_code == 302
    assert Resolution.objects.get(study=conflict).verdict == "exclude"
    refused = client.post(resolve_url(review, other), {"verdict": "uncertain", "version": 0})
    assert refused.status_code == 422
    assert "differs from every reviewer" in refused.content.decode()
    assert not Resolution.objects.filter(study=other).exists()
    other.refresh_from_db()
    assert other.current_stage.key == "title"
    done = client.post(
        resolve_url(review, other), {"verdict": "uncertain", "note": "Neither", "version": 0}
    )
    assert done.status_code == 302
    stored = Resolution.objects.get(study=other)
    assert (stored.verdict, stored.note, stored.decided_by) == (
        "uncertain",
        "Neither",
        cast["owner"],
    )


def test_resolve_exclusion_at_full_text_needs_reason(review, cast, client_for, htmx_headers):
    ec1, _, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1, stage_key="full_text")
    full = stage(review, "full_text")
    decision_record(
        review=review, study=study, stage=full, reviewer=cast["reviewer"], verdict="include"
    )
    decision_record(
        review=review,
        study=study,
        stage=full,
        reviewer=cast["reviewer2"],
        verdict="exclude",
        reasons=[ec1],
    )
    client = client_for("owner")
    refused = client.post(
        resolve_url(review, study), {"verdict": "exclude", "note": "no"}, **htmx_headers
    )
    assert refused.status_code == 422 and "exclusion reason" in refused.content.decode()
    done = client.post(
        resolve_url(review, study),
        {"verdict": "exclude", "note": "no", "reasons": [ec1.pk]},
    )
    assert done.status_code == 302
    study.refresh_from_db()
    assert study.outcome == "excluded"


def test_owner_designates_adjudicator(review, conflict, cast, client_for):
    url = reverse("screening:conflict_adjudicators", args=[review.slug])
    assert (
        client_for("reviewer")
        .post(url, {"user": cast["reviewer2"].pk, "action": "add"})
        .status_code
        == 403
    )
    response = client_for("owner").post(url, {"user": cast["reviewer2"].pk, "action": "add"})
    assert response.status_code == 302
    assert Adjudicator.objects.filter(user=cast["reviewer2"]).exists()
    assert AuditEvent.objects.filter(action="adjudicator.designate").exists()
    # The designated adjudicator now sees the decisions and may resolve.
    body = client_for("reviewer2").get(list_url(review)).content.decode()
    assert "NOTE-ONE" in body
    viewer = client_for("owner").post(url, {"user": cast["viewer"].pk, "action": "add"})
    assert viewer.status_code == 302
    assert not Adjudicator.objects.filter(user=cast["viewer"]).exists()
    assert client_for("owner").post(url, {"user": "x"}).status_code == 302
