"""Issue 11 (screening): stale writes, final decisions in a conflict, parties to a conflict,
full-text reason conflicts and adjudicator rights that end with the role.

Every write is checked against the stored rows, through the services and through the views as
the same user and as another one.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from screening.models import Adjudicator, AuditEvent, Decision, Membership, Resolution, Study
from screening.services.protocol import member_add, member_remove, member_update, stage_update
from screening.services.screening import (
    adjudicator_designate,
    conflict_resolve,
    decision_record,
    decision_undo,
)
from screening.services.stale import StaleWrite

from .pdf_helpers import pdf_text
from .screening_helpers import exclusion_criteria, make_studies, stage


def decide(review, study, user, verdict, key="title", **kw):
    return decision_record(
        review=review, study=study, stage=stage(review, key), reviewer=user, verdict=verdict, **kw
    )


def resolve(review, study, user, verdict="include", key="title", **kw):
    kw.setdefault("note", "settled")
    return conflict_resolve(
        review=review,
        study=study,
        stage=stage(review, key),
        adjudicator=user,
        verdict=verdict,
        **kw,
    )


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


# Bug 2: stale writes -------------------------------------------------------------------------


def test_stale_second_tab_decision_is_refused_and_keeps_the_first(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "include", seen_version=0)
    with pytest.raises(StaleWrite) as refused:
        decide(review, study, cast["reviewer"], "exclude", seen_version=0)
    assert refused.value.current == "include" and refused.value.by == "reviewer"
    assert refused.value.current_version == 1
    decision = Decision.objects.get(study=study)
    assert (decision.verdict, decision.version) == ("include", 1)


def test_forced_stale_decision_overwrites_and_is_audited(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "include", seen_version=0)
    decide(review, study, cast["reviewer"], "exclude", seen_version=0, force=True)
    decision = Decision.objects.get(study=study)
    assert (decision.verdict, decision.version) == ("exclude", 2)
    event = AuditEvent.objects.get(action="decision.overwrite")
    assert event.before["verdict"] == "include" and event.before["version"] == 1
    assert event.after["verdict"] == "exclude" and event.after["version"] == 2


def test_stale_undo_is_refused_and_keeps_the_decision(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "include")
    decide(review, study, cast["reviewer"], "exclude", seen_version=1)  # another tab: v2
    with pytest.raises(StaleWrite):
        decision_undo(
            review=review,
            stage=stage(review),
            reviewer=cast["reviewer"],
            study=study,
            seen_version=1,
        )
    assert Decision.objects.get(study=study).verdict == "exclude"
    decision_undo(
        review=review,
        stage=stage(review),
        reviewer=cast["reviewer"],
        study=study,
        seen_version=1,
        force=True,
    )
    assert not Decision.objects.filter(study=study).exists()
    assert AuditEvent.objects.filter(action="decision.overwrite", object_type="decision").exists()


def test_stale_conflict_resolution_is_refused_and_can_be_forced(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "include")
    decide(review, study, cast["reviewer2"], "exclude")
    adjudicator_designate(review=review, user=cast["reviewer2"], by=cast["owner"])
    stage_update(
        review=review,
        actor=cast["owner"],
        stage=stage(review),
        values={"parties_may_resolve": True},
        seen_version=stage(review).version,
    )
    resolve(review, study, cast["owner"], "exclude", seen_version=0)
    with pytest.raises(StaleWrite) as refused:
        resolve(review, study, cast["reviewer2"], "uncertain", seen_version=0)
    assert refused.value.by == "owner" and refused.value.current.startswith("exclude")
    assert Resolution.objects.get(study=study).verdict == "exclude"
    resolve(review, study, cast["reviewer2"], "uncertain", seen_version=0, force=True)
    resolution = Resolution.objects.get(study=study)
    assert (resolution.verdict, resolution.version) == ("uncertain", 2)
    assert resolution.decided_by == cast["reviewer2"]
    study.refresh_from_db()
    assert (study.current_stage.key, study.outcome) == ("abstract", "screening")
    event = AuditEvent.objects.get(action="resolution.overwrite")
    assert event.before["verdict"] == "exclude" and event.before["version"] == 1


def test_stale_decision_view_answers_409_with_the_stored_verdict(review, cast, client_for):
    (study,) = make_studies(review, 1)
    client = client_for("reviewer")
    decide_url = url("screening_decide", review, "title")
    headers = {"HTTP_HX_REQUEST": "true"}
    client.post(decide_url, {"study": study.pk, "verdict": "include", "version": 0}, **headers)
    stale = client.post(
        decide_url, {"study": study.pk, "verdict": "exclude", "version": 0}, **headers
    )
    assert stale.status_code == 409
    body = stale.content.decode()
    assert "data-stale-current" in body and ">include<" in body and "Apply mine anyway" in body
    assert stale["HX-Retarget"] == "#screen-stale"
    assert Decision.objects.get(study=study).verdict == "include"
    forced = client.post(
        decide_url,
        {"study": study.pk, "verdict": "exclude", "version": 1, "force": "1"},
        **headers,
    )
    assert forced.status_code == 200
    assert Decision.objects.get(study=study).verdict == "exclude"
    assert AuditEvent.objects.get(action="decision.overwrite").before["verdict"] == "include"
    # After a reload the reviewer's own study page shows the stored verdict; blind mode keeps
    # it from another reviewer while the study waits for their decision.
    mine = client.get(url("screening_study", review, study.pk)).content.decode()
    assert "<td>Exclude</td>" in mine
    theirs = client_for("reviewer2").get(url("screening_study", review, study.pk))
    assert "<td>Exclude</td>" not in theirs.content.decode()


def test_stale_conflict_view_answers_409(review, cast, client_for):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "include")
    decide(review, study, cast["reviewer2"], "exclude")
    resolve(review, study, cast["owner"], "exclude", seen_version=0)
    data = {"verdict": "include", "note": "mine", "version": 0, "stage": "title"}
    answer = client_for("owner").post(
        url("conflict_resolve", review, study.pk), data, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 409
    assert answer["HX-Retarget"] == f"#conflict-stale-{study.pk}"
    assert Resolution.objects.get(study=study).verdict == "exclude"


# Bug 18: a decision in a conflict is final ---------------------------------------------------


def test_decision_completing_a_conflict_cannot_be_undone_or_changed(review, cast, client_for):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["reviewer"], "exclude")
    decide(review, study, cast["reviewer2"], "include")
    with pytest.raises(ValidationError, match="adjudicator settles"):
        decision_undo(
            review=review,
            stage=stage(review),
            reviewer=cast["reviewer2"],
            study=study,
            seen_version=1,
        )
    with pytest.raises(ValidationError, match="adjudicator settles"):
        decide(review, study, cast["reviewer2"], "exclude", seen_version=1, force=True)
    answer = client_for("reviewer2").post(
        url("screening_undo", review, "title"),
        {"study": study.pk, "version": 1},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 422 and "adjudicator settles" in answer.content.decode()
    assert sorted(Decision.objects.values_list("verdict", flat=True)) == ["exclude", "include"]
    assert not Resolution.objects.exists()
    study.refresh_from_db()
    assert study.outcome == Study.Outcome.SCREENING


# Bug 6: a party to a conflict does not resolve it --------------------------------------------


def test_party_to_a_conflict_cannot_resolve_it_unless_the_stage_allows(review, cast, client_for):
    (study,) = make_studies(review, 1)
    decide(review, study, cast["owner"], "include")
    decide(review, study, cast["reviewer"], "exclude")
    with pytest.raises(PermissionDenied, match="took part"):
        resolve(review, study, cast["owner"], "include")
    client = client_for("owner")
    page = client.get(url("conflict_list", review)).content.decode()
    assert "data-party" in page and url("conflict_resolve", review, study.pk) not in page
    answer = client.post(
        url("conflict_resolve", review, study.pk), {"verdict": "include", "note": "I was right"}
    )
    assert answer.status_code == 403
    assert not Resolution.objects.exists()
    stage_update(
        review=review,
        actor=cast["owner"],
        stage=stage(review),
        values={"parties_may_resolve": True},
        seen_version=stage(review).version,
    )
    assert AuditEvent.objects.filter(
        action="stage_update", after__parties_may_resolve=True
    ).exists()
    resolve(review, study, cast["owner"], "include")
    assert Resolution.objects.get(study=study).decided_by == cast["owner"]


def test_parties_may_resolve_is_off_by_default_and_editable_in_stage_settings(
    review, cast, client_for
):
    assert not stage(review).parties_may_resolve
    form = client_for("owner").get(
        reverse("screening:protocol_stage", args=[review.slug, stage(review).pk]),
        HTTP_HX_REQUEST="true",
    )
    assert f'name="stage-{stage(review).pk}-parties_may_resolve"' in form.content.decode()


# Bug 5: different full-text exclusion reasons ------------------------------------------------


def test_full_text_exclusions_with_different_reasons_are_a_conflict(review, cast, client_for):
    ec1, ec2, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1, stage_key="full_text")
    decide(review, study, cast["reviewer"], "exclude", key="full_text", reasons=[ec1])
    decide(review, study, cast["reviewer2"], "exclude", key="full_text", reasons=[ec2])
    assert not Resolution.objects.exists()
    page = client_for("owner").get(url("conflict_list", review)).content.decode()
    assert "data-reason-conflict" in page
    with pytest.raises(ValidationError, match="reason that counts"):
        resolve(review, study, cast["owner"], "exclude", key="full_text", reasons=[ec1, ec2])
    resolve(
        review,
        study,
        cast["owner"],
        "exclude",
        key="full_text",
        reasons=[ec1, ec2],
        primary_reason=ec2,
    )
    resolution = Resolution.objects.get(study=study)
    assert resolution.primary_reason == ec2
    assert {c.code for c in resolution.reasons.all()} == {"EC1", "EC2"}


def test_full_text_exclusions_with_the_same_reason_agree(review, cast):
    ec1, _, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1, stage_key="full_text")
    decide(review, study, cast["reviewer"], "exclude", key="full_text", reasons=[ec1])
    decide(review, study, cast["reviewer2"], "exclude", key="full_text", reasons=[ec1])
    assert Resolution.objects.get(study=study).method == Resolution.Method.AGREEMENT


# Bug 19: adjudicator rights end with the role ------------------------------------------------


@pytest.fixture
def adjudicated_conflict(review, cast):
    (study,) = make_studies(review, 1, title="Contested study")
    decide(review, study, cast["owner"], "include", note="OWNER-NOTE")
    decide(review, study, cast["reviewer"], "exclude", note="REVIEWER-NOTE")
    adjudicator_designate(review=review, user=cast["reviewer2"], by=cast["owner"])
    return study


def assert_sees_no_conflict_details(client, review, study):
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        for page in (url("conflict_list", review), url("screening_study", review, study.pk)):
            answer = client.get(page, **headers)
            body = answer.content.decode()
            assert "OWNER-NOTE" not in body and "REVIEWER-NOTE" not in body, page
    data = {"verdict": "include", "note": "x"}
    assert client.post(url("conflict_resolve", review, study.pk), data).status_code in (403, 404)
    assert not Resolution.objects.filter(study=study).exists()


def test_demoted_adjudicator_loses_conflict_access(review, cast, client_for, adjudicated_conflict):
    client = client_for("reviewer2")
    assert "REVIEWER-NOTE" in client.get(url("conflict_list", review)).content.decode()
    membership = Membership.objects.get(review=review, user=cast["reviewer2"])
    member_update(
        review=review, actor=cast["owner"], membership=membership, role="viewer", can_import=False
    )
    assert not Adjudicator.objects.filter(user=cast["reviewer2"]).exists()
    assert AuditEvent.objects.filter(action="adjudicator.remove").exists()
    assert_sees_no_conflict_details(client, review, adjudicated_conflict)
    member_update(
        review=review, actor=cast["owner"], membership=membership, role="reviewer", can_import=False
    )
    assert_sees_no_conflict_details(client, review, adjudicated_conflict)


def test_removed_adjudicator_loses_conflict_access(review, cast, client_for, adjudicated_conflict):
    membership = Membership.objects.get(review=review, user=cast["reviewer2"])
    member_remove(review=review, actor=cast["owner"], membership=membership)
    assert not Adjudicator.objects.filter(user=cast["reviewer2"]).exists()
    client = client_for("reviewer2")
    assert client.get(url("conflict_list", review)).status_code == 404


def test_readded_member_is_not_an_adjudicator_again(review, cast, client_for, adjudicated_conflict):
    membership = Membership.objects.get(review=review, user=cast["reviewer2"])
    member_remove(review=review, actor=cast["owner"], membership=membership)
    member_add(review=review, actor=cast["owner"], username="reviewer2", role="reviewer")
    assert not Adjudicator.objects.filter(user=cast["reviewer2"]).exists()
    assert_sees_no_conflict_details(client_for("reviewer2"), review, adjudicated_conflict)


def test_prisma_counts_the_adjudicated_reason_once_in_every_output(review, cast):
    """Two full-text reports, each excluded with two reasons by two reviewers: the adjudicator's
    reason is the one PRISMA counts, in the JSON, CSV, SVG, PDF and the box's study list."""
    from screening.models import Criterion
    from screening.selectors import reports

    ec1, _, _ = exclusion_criteria(review)
    invalid = Criterion.objects.get(review=review, kind=Criterion.Kind.OTHER, code="INVALID-TYPE")
    first, second = make_studies(review, 2, stage_key="full_text")
    for study, primary in ((first, ec1), (second, ec1)):
        decide(review, study, cast["reviewer"], "exclude", key="full_text", reasons=[ec1])
        decide(review, study, cast["reviewer2"], "exclude", key="full_text", reasons=[invalid])
        resolve(
            review,
            study,
            cast["owner"],
            "exclude",
            key="full_text",
            reasons=[ec1, invalid],
            primary_reason=primary,
        )
    funnel = reports.funnel_live(review=review)
    # The old rule ("other" reasons win) would have reported both as invalid publication type.
    assert funnel["dbr_excluded"] == {"exclusion criteria": 2}
    csv_text = reports.funnel_prisma_csv(funnel=funnel)
    assert "exclusion criteria, 2" in csv_text and "invalid publication type" not in csv_text
    svg = reports.funnel_diagram(funnel=funnel, title=review.title)
    assert "Exclusion criteria (n = 2)" in svg and "Invalid publication type" not in svg
    pdf = reports.funnel_diagram(funnel=funnel, title=review.title, fmt="pdf")
    text = pdf_text(pdf)
    assert "Exclusion criteria (n = 2)" in text
    assert "Invalid publication type" not in text
    listed = reports.funnel_box_rows(review=review, box="dbr_excluded", detail="exclusion criteria")
    assert set(listed) == {first, second}
    assert not reports.funnel_box_rows(
        review=review, box="dbr_excluded", detail="invalid publication type"
    ).exists()
