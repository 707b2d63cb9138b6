"""Blind mode in screening: one test per place that could reveal another reviewer's verdict,
and agreement computed over every double-screened study (issue 11, bugs 3 and 18).

The pattern of each blind test: reviewer2 looks, reviewer decides, reviewer2 looks again; what
reviewer2 sees must not depend on the verdict reviewer gave (include vs exclude).
"""

import re

import pytest
from django.urls import reverse

from screening.selectors.dashboard import agreement_by_stage
from screening.services.screening import decision_record

from .quality_helpers import included_study, seed_protocol
from .screening_helpers import make_studies, stage


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def decide(review, study, user, verdict, key="title"):
    return decision_record(
        review=review, study=study, stage=stage(review, key), reviewer=user, verdict=verdict
    )


def normalise(body: str) -> str:
    """The page without what differs between two renders of the same state (CSRF tokens)."""
    return re.sub(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]+"', "", body)


def seen_by_reviewer2_after(review, cast, client_for, first_verdict, page, headers):
    """reviewer decides `first_verdict` on study 1, reviewer2 completes it with exclude, then
    reviewer2 loads `page`; returns what reviewer2 saw.

    An agreed exclusion leaves the review, so (unlike an agreed include, which reviewer2 will
    meet again at full text) nothing but the pending verdict differs between the two cases.
    """
    studies = make_studies(review, 3)
    decide(review, studies[0], cast["reviewer"], first_verdict)
    decide(review, studies[0], cast["reviewer2"], "exclude")
    return normalise(client_for("reviewer2").get(page, **headers).content.decode())


BLIND_PLACES = [
    ("dashboard", ()),
    ("conflict_list", ()),
    ("screening_home", ()),
]


@pytest.mark.parametrize("name,args", BLIND_PLACES)
@pytest.mark.parametrize("headers", [{}, {"HTTP_HX_REQUEST": "true"}], ids=["page", "fragment"])
def test_blind_reviewer_sees_the_same_whatever_the_other_verdict(
    review_and_cast, client_for, django_db_reset_sequences, name, args, headers
):
    """A conflict (include vs exclude) and an agreement (exclude vs exclude) look the same to
    reviewer2 on every page and fragment: no count, colour or class moves."""
    from screening.models import Decision, Resolution, Study

    review, cast = review_and_cast
    conflict = seen_by_reviewer2_after(
        review, cast, client_for, "exclude", url(name, review), headers
    )
    Resolution.objects.all().delete()
    Decision.objects.all().delete()
    Study.objects.all().delete()
    agreement = seen_by_reviewer2_after(
        review, cast, client_for, "exclude", url(name, review), headers
    )
    assert "text-bg-warning" not in conflict and "conflicts</span>" not in conflict
    strip_ids = lambda body: re.sub(r"\d{3,}", "N", body)  # noqa: E731 - study ids differ
    assert strip_ids(conflict) == strip_ids(agreement)


def test_panel_progress_does_not_move_with_the_other_verdict(review, cast, client_for):
    """The screening panel's team and remaining counts move the same way for a conflict and
    for an agreement."""
    from django.core.cache import cache

    first, second = make_studies(review, 2)
    decide(review, first, cast["reviewer"], "exclude")
    decide(review, second, cast["reviewer"], "include")
    client = client_for("reviewer2")
    decide(review, first, cast["reviewer2"], "include")  # a conflict
    cache.clear()
    after_conflict = client.get(url("screening_stage", review, "title")).content.decode()
    remaining = re.search(r'data-progress="remaining">(\d+)<', after_conflict).group(1)
    decide(review, second, cast["reviewer2"], "include")  # an agreement
    cache.clear()
    after_agreement = client.get(url("screening_stage", review, "title")).content.decode()
    # Each completed study left "needing decisions" the same way: 1 then 0.
    assert remaining == "1"
    assert re.search(r'data-progress="remaining">(\d+)<', after_agreement).group(1) == "0"


def test_blind_conflicts_page_shows_no_count_to_reviewers(review, cast, client_for):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "exclude")
    decide(review, study, cast["reviewer2"], "include")
    body = client_for("reviewer2").get(url("conflict_list", review)).content.decode()
    assert "1 study awaits" not in body and "Blind mode is on" in body
    owner = client_for("owner").get(url("conflict_list", review)).content.decode()
    assert f'id="conflict-{study.pk}"' in owner


def test_blind_dashboard_hides_agreement_and_conflicts_from_reviewers(review, cast, client_for):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "exclude")
    decide(review, study, cast["reviewer2"], "include")
    for who in ("reviewer", "reviewer2", "viewer"):
        body = client_for(who).get(url("dashboard", review)).content.decode()
        assert 'id="agreement-title"' not in body and "data-blind-hidden" in body
        assert url("conflict_list", review) + '">1<' not in body
    owner = client_for("owner").get(url("dashboard", review)).content.decode()
    assert 'id="agreement-title"' in owner


# Bug 3: agreement over every double-screened study ------------------------------------------


def test_agreement_counts_pending_conflicts_from_the_first_decision(review, cast):
    """Blind mode on, nothing resolved by an adjudicator: the conflicts count."""
    studies = make_studies(review, 4)
    for study, (a, b) in zip(
        studies,
        [
            ("include", "include"),
            ("exclude", "exclude"),
            ("include", "exclude"),
            ("exclude", "include"),
        ],
        strict=True,
    ):
        decide(review, study, cast["reviewer"], a)
        decide(review, study, cast["reviewer2"], b)
    title = agreement_by_stage(review=review)[0]
    assert title["subjects"] == 4
    assert title["raw"] == pytest.approx(0.5)
    (pair,) = title["cohen_rows"]
    assert pair["agreement"].subjects == 4
    assert pair["agreement"].kappa == pytest.approx(0.0)


def test_undefined_kappa_is_a_dash_with_its_reason_on_the_dashboard(review, cast, client_for):
    for study in make_studies(review, 3):
        decide(review, study, cast["reviewer"], "include")
        decide(review, study, cast["reviewer2"], "include")
    body = client_for("owner").get(url("dashboard", review)).content.decode()
    section = body[body.index('id="agreement-title"') :]
    assert "chance agreement is 1" in section and "data-kappa-undefined" in section
    kappa_cells = re.findall(r"<td class=\"text-end\" data-(?:fleiss|cohen)>(.*?)</td>", section)
    assert kappa_cells and all("undefined" in cell and "1.000" not in cell for cell in kappa_cells)


def test_undefined_kappa_is_a_dash_with_its_reason_in_table5(review, cast, client_for):
    from screening.services.quality import (
        quality_answer_record,
        quality_assessors_assign_bulk,
        quality_complete_set,
    )

    seed_protocol(review)
    studies = [included_study(review, title=f"Included {i}") for i in range(3)]
    quality_assessors_assign_bulk(
        review=review,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        per_study=2,
        actor=cast["owner"],
    )
    for study in studies:
        for criterion in review.quality_criteria.all():
            for who in ("reviewer", "reviewer2"):
                quality_answer_record(
                    review=review,
                    study=study,
                    criterion=criterion,
                    assessor=cast[who],
                    answer="y",
                    seen_version=0,
                )
        # Table 5 counts revealed studies only: both assessors mark each study done.
        for who in ("reviewer", "reviewer2"):
            quality_complete_set(review=review, study=study, assessor=cast[who])
    body = client_for("owner").get(url("quality_table", review)).content.decode()
    kappa_section = body[body.index('id="kappa-heading"') :]
    assert "almost perfect" not in kappa_section
    assert "undefined: every rating is in one category" in kappa_section
