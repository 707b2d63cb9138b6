"""Screening services: decisions, consensus, routing, undo, conflicts, claims, blind mode."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from screening.models import AuditEvent, Decision, Resolution, ScreeningClaim, Stage, Study
from screening.selectors.screening import conflicts_pending, decisions_visible
from screening.services.screening import (
    adjudicator_designate,
    conflict_resolve,
    decision_record,
    decision_undo,
    review_blind_mode_set,
    study_claim_next,
    study_skip,
)

from .screening_helpers import exclusion_criteria, make_studies, priority_set, stage


def decide(review, study, key, user, verdict, **kw):
    return decision_record(
        review=review, study=study, stage=stage(review, key), reviewer=user, verdict=verdict, **kw
    )


@pytest.mark.parametrize(
    "key,verdict,next_stage,outcome",
    [
        ("title", "include", "full_text", "screening"),
        ("title", "uncertain", "abstract", "screening"),
        ("title", "exclude", "title", "excluded"),
        ("abstract", "include", "full_text", "screening"),
        ("abstract", "uncertain", "full_text", "screening"),
        ("abstract", "exclude", "abstract", "excluded"),
        ("full_text", "include", "full_text", "included"),
        ("full_text", "exclude", "full_text", "excluded"),
    ],
)
def test_agreement_routes_the_study(review, cast, key, verdict, next_stage, outcome):
    reasons = exclusion_criteria(review, 1) if verdict == "exclude" else []
    (study,) = make_studies(review, 1, stage_key=key)
    decide(review, study, key, cast["reviewer"], verdict, reasons=reasons)
    study.refresh_from_db()
    assert study.current_stage.key == key and study.outcome == "screening"
    decide(review, study, key, cast["reviewer2"], verdict, reasons=reasons)
    study.refresh_from_db()
    assert (study.current_stage.key, study.outcome) == (next_stage, outcome)
    resolution = Resolution.objects.get(study=study, stage__key=key)
    assert resolution.method == "agreement" and resolution.verdict == verdict
    assert AuditEvent.objects.filter(action="resolution.record", review=review).count() == 1
    assert AuditEvent.objects.filter(action="decision.record", review=review).count() == 2


def test_disagreement_is_a_conflict_then_adjudicated(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(review, study, "title", cast["reviewer2"], "exclude")
    assert list(conflicts_pending(review=review)) == [study]
    with pytest.raises(PermissionDenied):
        conflict_resolve(
            review=review,
            study=study,
            stage=stage(review),
            adjudicator=cast["reviewer"],
            verdict="include",
            note="why",
        )
    with pytest.raises(ValidationError, match="differs from every reviewer"):
        conflict_resolve(
            review=review,
            study=study,
            stage=stage(review),
            adjudicator=cast["owner"],
            verdict="uncertain",
            note="  ",
        )
    resolution = conflict_resolve(
        review=review,
        study=study,
        stage=stage(review),
        adjudicator=cast["owner"],
        verdict="uncertain",
        note="Needs the abstract",
    )
    study.refresh_from_db()
    assert resolution.method == "adjudication" and resolution.decided_by == cast["owner"]
    assert study.current_stage.key == "abstract"
    assert not conflicts_pending(review=review).exists()
    assert AuditEvent.objects.filter(action="resolution.record", actor=cast["owner"]).exists()


def test_designated_adjudicator_resolves(review, cast):
    from screening.models import Membership
    from tests.factories import UserFactory

    third = UserFactory(username="third")
    Membership.objects.create(review=review, user=third, role="reviewer")
    with pytest.raises(PermissionDenied):
        adjudicator_designate(review=review, user=third, by=cast["reviewer"])
    with pytest.raises(ValidationError):
        adjudicator_designate(review=review, user=cast["viewer"], by=cast["owner"])
    adjudicator_designate(review=review, user=third, by=cast["owner"])
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(review, study, "title", cast["reviewer2"], "exclude")
    conflict_resolve(
        review=review,
        study=study,
        stage=stage(review),
        adjudicator=third,
        verdict="include",
        note="Clearly MLOps",
    )
    study.refresh_from_db()
    assert study.current_stage.key == "full_text"


def test_resolving_a_non_conflict_is_refused(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    with pytest.raises(ValidationError, match="waits"):
        conflict_resolve(
            review=review,
            study=study,
            stage=stage(review),
            adjudicator=cast["owner"],
            verdict="include",
            note="x",
        )


@pytest.mark.parametrize(
    "rule,verdicts,expected_stage,expected_outcome,conflict",
    [
        ("unanimous", ["include", "exclude"], "title", "screening", True),
        ("liberal", ["include", "exclude"], "full_text", "screening", False),
        ("liberal", ["exclude", "uncertain"], "abstract", "screening", False),
        ("majority", ["include", "include", "exclude"], "full_text", "screening", False),
        ("majority", ["include", "exclude", "uncertain"], "title", "screening", True),
    ],
)
def test_consensus_rules_in_service(
    review, cast, rule, verdicts, expected_stage, expected_outcome, conflict
):
    from screening.models import Membership
    from tests.factories import UserFactory

    title = stage(review)
    title.consensus_rule = rule
    title.reviewers_required = len(verdicts)
    title.save()
    users = [cast["reviewer"], cast["reviewer2"]]
    if len(verdicts) == 3:
        third = UserFactory(username="third")
        Membership.objects.create(review=review, user=third, role="reviewer")
        users.append(third)
    (study,) = make_studies(review, 1)
    for user, verdict in zip(users, verdicts, strict=True):
        decide(review, study, "title", user, verdict)
    study.refresh_from_db()
    assert (study.current_stage.key, study.outcome) == (expected_stage, expected_outcome)
    assert conflicts_pending(review=review).exists() is conflict


def undo(review, study, user, version=1, **kw):
    return decision_undo(
        review=review, stage=stage(review), reviewer=user, study=study, seen_version=version, **kw
    )


def test_decision_unique_and_change_before_resolution(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(
        review,
        study,
        "title",
        cast["reviewer"],
        "uncertain",
        note="second thoughts",
        seen_version=1,
    )
    decision = Decision.objects.get(study=study)
    assert (decision.verdict, decision.note, decision.version) == (
        "uncertain",
        "second thoughts",
        2,
    )
    assert AuditEvent.objects.filter(action="decision.change").count() == 1


def test_third_decision_refused_when_two_required(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(review, study, "title", cast["reviewer2"], "exclude")
    with pytest.raises(ValidationError, match="already has the decisions"):
        decide(review, study, "title", cast["owner"], "include")
    assert Decision.objects.filter(study=study).count() == 2


def test_viewer_and_outsider_cannot_decide(review, cast):
    (study,) = make_studies(review, 1)
    for who in ("viewer", "outsider"):
        with pytest.raises(PermissionDenied):
            decide(review, study, "title", cast[who], "include")
    assert not Decision.objects.exists()


def test_reasons_rules(review, cast):
    criteria = exclusion_criteria(review, 2)
    (study,) = make_studies(review, 1, stage_key="full_text")
    with pytest.raises(ValidationError, match="at least one exclusion reason"):
        decide(review, study, "full_text", cast["reviewer"], "exclude")
    with pytest.raises(ValidationError, match="only with an exclusion"):
        decide(review, study, "full_text", cast["reviewer"], "include", reasons=criteria[:1])
    other = review.criteria.get(code="INVALID-TYPE")
    decide(review, study, "full_text", cast["reviewer"], "exclude", reasons=[other, criteria[1]])
    assert {c.code for c in Decision.objects.get().reasons.all()} == {"INVALID-TYPE", "EC2"}
    # Before full text only the protocol's exclusion criteria are offered.
    (early,) = make_studies(review, 1)
    with pytest.raises(ValidationError, match="not one of"):
        decide(review, early, "title", cast["reviewer"], "exclude", reasons=[other])
    decide(review, early, "title", cast["reviewer"], "exclude")


def test_agreed_exclusion_before_full_text_keeps_the_union_of_reasons(review, cast):
    ec1, ec2, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1, stage_key="abstract")
    decide(review, study, "abstract", cast["reviewer"], "exclude", reasons=[ec1])
    decide(review, study, "abstract", cast["reviewer2"], "exclude", reasons=[ec2])
    resolution = Resolution.objects.get(study=study)
    assert {c.code for c in resolution.reasons.all()} == {"EC1", "EC2"}


def test_undo_pending_decision_gives_the_study_back(review, cast):
    studies = make_studies(review, 2)
    decide(review, studies[0], "title", cast["reviewer"], "include")
    decide(review, studies[1], "title", cast["reviewer"], "exclude")
    undone = undo(review, studies[1], cast["reviewer"])
    assert undone.study_id == studies[1].pk and undone.verdict == "exclude"
    assert list(Decision.objects.values_list("study_id", flat=True)) == [studies[0].pk]
    assert (
        study_claim_next(review=review, stage=stage(review), reviewer=cast["reviewer"])
        == (studies[1])
    )
    event = AuditEvent.objects.get(action="decision.undo")
    assert event.before["verdict"] == "exclude"
    with pytest.raises(ValidationError, match="no decision"):
        undo(review, studies[0], cast["reviewer2"], version=0)


def test_undo_withdraws_an_agreement_that_moved_the_study(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(review, study, "title", cast["reviewer2"], "include")
    study.refresh_from_db()
    assert study.current_stage.key == "full_text"
    undo(review, study, cast["reviewer2"])
    study.refresh_from_db()
    assert study.current_stage.key == "title" and study.outcome == "screening"
    assert not Resolution.objects.exists()
    assert AuditEvent.objects.filter(action="resolution.withdraw").exists()


def test_undo_refused_once_next_stage_started_or_adjudicated(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    decide(review, study, "title", cast["reviewer2"], "include")
    decide(review, study, "full_text", cast["reviewer"], "include")
    with pytest.raises(ValidationError, match="next stage"):
        undo(review, study, cast["reviewer2"])
    (other,) = make_studies(review, 1)
    decide(review, other, "title", cast["reviewer"], "include")
    decide(review, other, "title", cast["reviewer2"], "exclude")
    conflict_resolve(
        review=review,
        study=other,
        stage=stage(review),
        adjudicator=cast["owner"],
        verdict="exclude",
        note="off topic",
    )
    with pytest.raises(ValidationError, match="adjudicator"):
        undo(review, other, cast["reviewer2"])
    assert Decision.objects.filter(study=other).count() == 2


def test_claims_never_exceed_required_and_never_repeat(review, cast):
    from screening.models import Membership
    from tests.factories import UserFactory

    studies = make_studies(review, 2)
    third = UserFactory(username="third")
    Membership.objects.create(review=review, user=third, role="reviewer")
    title = stage(review)
    a = study_claim_next(review=review, stage=title, reviewer=cast["reviewer"])
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == a
    b = study_claim_next(review=review, stage=title, reviewer=cast["reviewer2"])
    assert a == b == studies[0]
    # Study 0 has two live claims: the third reviewer gets study 1.
    assert study_claim_next(review=review, stage=title, reviewer=third) == studies[1]
    decide(review, a, "title", cast["reviewer"], "exclude")
    # The reviewer never gets study 0 again; study 1 still has a free slot.
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == studies[1]
    assert study_claim_next(review=review, stage=title, reviewer=cast["owner"]) is None


def test_expired_claim_frees_the_study(review, cast, settings):
    settings.SCREENING_CLAIM_MINUTES = 0
    (study,) = make_studies(review, 1)
    title = stage(review)
    title.reviewers_required = 1
    title.save()
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == study
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer2"]) == study


def test_skip_then_comes_back_last(review, cast):
    studies = make_studies(review, 2)
    title = stage(review)
    first = study_claim_next(review=review, stage=title, reviewer=cast["reviewer"])
    study_skip(review=review, stage=title, study=first, reviewer=cast["reviewer"])
    second = study_claim_next(review=review, stage=title, reviewer=cast["reviewer"])
    assert second != first
    decide(review, second, "title", cast["reviewer"], "include")
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == first
    assert {first, second} == set(studies)


def test_prioritised_and_random_queue_order(review, cast):
    low, high, none = make_studies(review, 3)
    priority_set(low, 0.1)
    priority_set(high, 0.9)
    title = stage(review)
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == high
    ScreeningClaim.objects.all().delete()
    title.queue_order = Stage.QueueOrder.RANDOM
    title.reviewers_required = 1
    title.save()
    more = make_studies(review, 20)
    orders = {}
    for who in ("reviewer", "reviewer2"):
        seen = []
        for _ in range(5):
            study = study_claim_next(review=review, stage=title, reviewer=cast[who])
            seen.append(study.pk)
            study_skip(review=review, stage=title, study=study, reviewer=cast[who])
        ScreeningClaim.objects.filter(reviewer=cast[who]).delete()
        again = [study_claim_next(review=review, stage=title, reviewer=cast[who]).pk]
        assert again[0] == seen[0], "the order is stable for a reviewer"
        ScreeningClaim.objects.filter(reviewer=cast[who]).delete()
        orders[who] = seen
    assert orders["reviewer"] != orders["reviewer2"]
    assert orders["reviewer"] != sorted(orders["reviewer"]) or len(more) == 0


def test_blind_mode_visibility(review, cast):
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    assert decisions_visible(review=review, study=study, user=cast["reviewer2"]) == []
    assert decisions_visible(review=review, study=study, user=cast["owner"]) == []
    assert len(decisions_visible(review=review, study=study, user=cast["reviewer"])) == 1
    decide(review, study, "title", cast["reviewer2"], "exclude")
    # In conflict: the adjudicator sees both, the other reviewer still only their own.
    assert len(decisions_visible(review=review, study=study, user=cast["owner"])) == 2
    assert len(decisions_visible(review=review, study=study, user=cast["reviewer2"])) == 1
    conflict_resolve(
        review=review,
        study=study,
        stage=stage(review),
        adjudicator=cast["owner"],
        verdict="include",
        note="ok",
    )
    assert len(decisions_visible(review=review, study=study, user=cast["reviewer2"])) == 2


def test_blind_mode_off_only_by_owner(review, cast):
    with pytest.raises(PermissionDenied):
        review_blind_mode_set(review=review, blind=False, by=cast["reviewer"])
    review_blind_mode_set(review=review, blind=False, by=cast["owner"])
    review.refresh_from_db()
    assert review.blind_mode is False
    assert AuditEvent.objects.filter(action="review.blind_mode").exists()
    (study,) = make_studies(review, 1)
    decide(review, study, "title", cast["reviewer"], "include")
    assert len(decisions_visible(review=review, study=study, user=cast["reviewer2"])) == 1


def test_seed_three_stage_flow_with_two_blind_reviewers(review, cast):
    """Title -> abstract -> full text for two blind reviewers, as the seed screened."""
    ec1, _, _ = exclusion_criteria(review)
    studies = make_studies(review, 6)
    r1, r2 = cast["reviewer"], cast["reviewer2"]
    title, abstract, full = (stage(review, k) for k in ("title", "abstract", "full_text"))
    plan = {  # study index -> title verdict (both), abstract verdict, full text verdict
        0: ("include", None, "include"),
        1: ("uncertain", "include", "include"),
        2: ("uncertain", "exclude", None),
        3: ("exclude", None, None),
        4: ("uncertain", "uncertain", "exclude"),
        5: ("include", None, "exclude"),
    }
    for current, column in ((title, 0), (abstract, 1), (full, 2)):
        for reviewer in (r1, r2):
            while True:
                study = study_claim_next(review=review, stage=current, reviewer=reviewer)
                if study is None:
                    break
                verdict = plan[studies.index(study)][column]
                reasons = [ec1] if verdict == "exclude" else []
                shown = decisions_visible(review=review, study=study, user=reviewer)
                assert not [d for d in shown if d.stage_id == current.pk], "blind"
                decision_record(
                    review=review,
                    study=study,
                    stage=current,
                    reviewer=reviewer,
                    verdict=verdict,
                    reasons=reasons,
                )
    outcomes = {
        studies.index(s): (s.outcome, s.current_stage.key)
        for s in Study.objects.filter(review=review).select_related("current_stage")
    }
    assert outcomes == {
        0: ("included", "full_text"),
        1: ("included", "full_text"),
        2: ("excluded", "abstract"),
        3: ("excluded", "title"),
        4: ("excluded", "full_text"),
        5: ("excluded", "full_text"),
    }
    assert Resolution.objects.filter(stage=title).count() == 6
    assert Resolution.objects.filter(stage=abstract).count() == 3
    assert Resolution.objects.filter(stage=full).count() == 4
    assert Decision.objects.count() == 2 * 13


def test_a_decision_ends_the_deciders_claim_and_a_refused_one_keeps_it(review, cast):
    """The decision ends the reviewer's own claim on the study (not another reviewer's); a
    decision refused under the study's lock leaves the claim as it was (and nothing else)."""
    title = stage(review)
    (study,) = make_studies(review, 1)
    for who in ("reviewer", "reviewer2"):
        assert study_claim_next(review=review, stage=title, reviewer=cast[who]) == study

    def claimants():
        return set(
            ScreeningClaim.objects.filter(study=study, stage=title).values_list(
                "reviewer__username", flat=True
            )
        )

    # Refused under the lock: the study has moved on to another stage since it was claimed.
    Study.objects.filter(pk=study.pk).update(current_stage=stage(review, "full_text"))
    with pytest.raises(ValidationError, match="no longer waiting"):
        decide(review, study, "title", cast["reviewer"], "include")
    assert claimants() == {"reviewer", "reviewer2"}
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.record").exists()

    Study.objects.filter(pk=study.pk).update(current_stage=title)
    decide(review, study, "title", cast["reviewer"], "include")
    assert claimants() == {"reviewer2"}
    assert Decision.objects.filter(study=study, reviewer=cast["reviewer"]).count() == 1
