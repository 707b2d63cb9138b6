"""Quality services: scales, consensus, threshold, assignment, access, audit; the seed's Table 5."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from screening.domain import quality as rules
from screening.models import AuditEvent, QualityAnswer, QualityConsensus, Study
from screening.selectors.quality import (
    quality_excluded_studies,
    quality_study_sheet,
    quality_table5,
)
from screening.services.quality import (
    quality_answer_record,
    quality_assessors_assign,
    quality_assessors_assign_bulk,
    quality_complete_set,
    quality_consensus_record,
    quality_consensus_reopen,
    quality_settings_update,
)
from screening.services.stale import StaleWrite

from .quality_helpers import (
    TABLE5,
    answer_as_seen,
    included_study,
    mark_done,
    seed_protocol,
    seed_studies,
)


@pytest.fixture
def protocol(review):
    seed_protocol(review)
    return review


def answer_all(review, study, assessor, answers):
    for criterion, answer in zip(review.quality_criteria.all(), answers, strict=True):
        answer_as_seen(
            review=review, study=study, criterion=criterion, assessor=assessor, answer=answer
        )


def total_of(review, study):
    return quality_study_sheet(review=review, study=study, user=None).total


# Domain: pure functions, no database.


def test_answer_parse_follows_the_scale():
    assert rules.answer_parse("yes_no", "y") == 1
    assert rules.answer_parse("yes_no", "No") == 0
    assert rules.answer_parse("yes_partly_no", "p") == Decimal("0.5")
    assert rules.answer_parse("yes_partly_no", "0.5") == Decimal("0.5")
    with pytest.raises(ValueError, match="not an answer on this scale"):
        rules.answer_parse("yes_no", "p")


def test_round_robin_spreads_evenly_and_counts_existing_load():
    plan = rules.round_robin([1, 2, 3, 4], [10, 20, 30], 2)
    assert plan == {1: [10, 20], 2: [10, 30], 3: [20, 30], 4: [10, 20]}
    assert rules.round_robin([1], [10, 20], 1, load={10: 5}) == {1: [20]}
    with pytest.raises(ValueError):
        rules.round_robin([1], [10], 2)


# Services.


def test_yes_no_total_and_agreement_consensus(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    answer_all(protocol, study, cast["reviewer"], ["y", "n", "y", "y", "n"])
    mark_done(protocol, study, cast["reviewer"])
    # One assessor: their answers are the consensus, no retyping by the owner.
    assert QualityConsensus.objects.filter(study=study, method="agreement").count() == 5
    assert total_of(protocol, study) == 3
    assert AuditEvent.objects.filter(action="quality.answer").count() == 5


def test_partly_scale_scores_half(protocol, cast):
    quality_settings_update(
        review=protocol, actor=cast["owner"], scale="yes_partly_no", threshold=None
    )
    protocol.refresh_from_db()
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    answer_all(protocol, study, cast["reviewer"], ["y", "p", "p", "n", "y"])
    mark_done(protocol, study, cast["reviewer"])
    assert total_of(protocol, study) == Decimal("3.0")
    # Partly cannot be dropped from the scale while answers use it.
    with pytest.raises(ValidationError, match="Partly"):
        quality_settings_update(review=protocol, actor=cast["owner"], scale="yes_no", threshold="")


def test_partly_refused_on_yes_no_scale(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    with pytest.raises(ValidationError, match="not an answer"):
        answer_as_seen(
            review=protocol,
            study=study,
            criterion=protocol.quality_criteria.first(),
            assessor=cast["reviewer"],
            answer="p",
        )
    assert not QualityAnswer.objects.exists()


def test_two_assessors_disagreement_needs_owner(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol,
        study=study,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    answer_all(protocol, study, cast["reviewer"], ["y", "y", "y", "y", "y"])
    mark_done(protocol, study, cast["reviewer"])
    assert total_of(protocol, study) is None  # the second assessor has not answered
    answer_all(protocol, study, cast["reviewer2"], ["y", "n", "y", "y", "y"])
    mark_done(protocol, study, cast["reviewer2"])
    sheet = quality_study_sheet(review=protocol, study=study, user=cast["owner"])
    assert [c.open_disagreement for c in sheet.cells] == [False, True, False, False, False]
    assert sheet.status == "disagreement" and sheet.total is None
    qc2 = protocol.quality_criteria.get(code="QC2")
    quality_consensus_record(
        review=protocol,
        study=study,
        criterion=qc2,
        actor=cast["owner"],
        answer="n",
        note="pilot",
        seen_version=0,
    )
    assert total_of(protocol, study) == 4
    assert AuditEvent.objects.filter(action="quality.consensus").count() == 1
    # The owner's decision stands when an assessor changes their mind afterwards ...
    answer_as_seen(
        review=protocol, study=study, criterion=qc2, assessor=cast["reviewer"], answer="y"
    )
    assert QualityConsensus.objects.get(study=study, criterion=qc2).answer == 0
    # ... until reopened: then the assessors' agreement (now Yes) applies.
    answer_as_seen(
        review=protocol, study=study, criterion=qc2, assessor=cast["reviewer2"], answer="y"
    )
    quality_consensus_reopen(
        review=protocol, study=study, criterion=qc2, actor=cast["owner"], seen_version=1
    )
    assert total_of(protocol, study) == 5


def test_changed_answer_withdraws_stale_agreement(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol,
        study=study,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    answer_all(protocol, study, cast["reviewer"], ["y"] * 5)
    answer_all(protocol, study, cast["reviewer2"], ["y"] * 5)
    mark_done(protocol, study, cast["reviewer"], cast["reviewer2"])
    assert total_of(protocol, study) == 5
    answer_as_seen(
        review=protocol,
        study=study,
        criterion=protocol.quality_criteria.first(),
        assessor=cast["reviewer2"],
        answer="n",
    )
    assert total_of(protocol, study) is None
    assert AuditEvent.objects.filter(action="quality.consensus_withdraw").count() == 1


def test_threshold_off_and_on(protocol, cast):
    low, high = included_study(protocol, title="low"), included_study(protocol, title="high")
    for study, answers in ((low, ["n", "n", "y", "n", "n"]), (high, ["y"] * 5)):
        quality_assessors_assign(
            review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
        )
        answer_all(protocol, study, cast["reviewer"], answers)
        mark_done(protocol, study, cast["reviewer"])
    assert list(quality_excluded_studies(review=protocol)) == []  # off, as in the seed
    quality_settings_update(review=protocol, actor=cast["owner"], scale="yes_no", threshold="3")
    protocol.refresh_from_db()
    assert list(quality_excluded_studies(review=protocol)) == [low]
    assert quality_table5(review=protocol)["threshold"] == 3
    quality_settings_update(review=protocol, actor=cast["owner"], scale="yes_no", threshold="")
    protocol.refresh_from_db()
    assert list(quality_excluded_studies(review=protocol)) == []


def test_only_assigned_assessors_answer(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    criterion = protocol.quality_criteria.first()
    for user in ("reviewer2", "owner", "viewer", "outsider"):
        with pytest.raises(PermissionDenied):
            answer_as_seen(
                review=protocol, study=study, criterion=criterion, assessor=cast[user], answer="y"
            )
    with pytest.raises(PermissionDenied):
        quality_consensus_record(
            review=protocol,
            study=study,
            criterion=criterion,
            actor=cast["reviewer"],
            answer="y",
            seen_version=0,
        )
    assert not QualityAnswer.objects.exists()


def test_assignment_rules(protocol, cast):
    study = included_study(protocol)
    with pytest.raises(ValidationError, match="only reviewers and owners"):
        quality_assessors_assign(
            review=protocol, study=study, assessors=[cast["viewer"]], actor=cast["owner"]
        )
    with pytest.raises(ValidationError, match="one or two people"):
        quality_assessors_assign(
            review=protocol,
            study=study,
            assessors=[cast["owner"], cast["reviewer"], cast["reviewer2"]],
            actor=cast["owner"],
        )
    with pytest.raises(PermissionDenied):
        quality_assessors_assign(
            review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["reviewer"]
        )
    screening = Study.objects.create(review=protocol, title="still screening")
    with pytest.raises(ValidationError, match="included at full text"):
        quality_assessors_assign(
            review=protocol, study=screening, assessors=[cast["reviewer"]], actor=cast["owner"]
        )


def test_bulk_round_robin(protocol, cast):
    studies = [included_study(protocol, title=f"s{i}") for i in range(5)]
    Study.objects.create(review=protocol, title="excluded", outcome="excluded")
    assigned = quality_assessors_assign_bulk(
        review=protocol,
        assessors=[cast["reviewer"], cast["reviewer2"], cast["owner"]],
        per_study=2,
        actor=cast["owner"],
    )
    assert assigned == 5
    loads = {
        u: sum(1 for s in studies if s.quality_assignments.filter(assessor=cast[u]).exists())
        for u in ("reviewer", "reviewer2", "owner")
    }
    assert sorted(loads.values()) == [3, 3, 4]
    # Studies that already have assessors are left alone.
    assert (
        quality_assessors_assign_bulk(
            review=protocol, assessors=[cast["reviewer"]], per_study=1, actor=cast["owner"]
        )
        == 0
    )


def test_seed_table5_reproduced_by_two_assessors(protocol, cast):
    """The paper's 30 studies scored by two assessors; the owner settles their disagreements.

    reviewer2 deliberately answers the opposite of the paper on a few cells; the owner's
    consensus restores the paper's value there, so every total must equal Table 5.
    """
    studies = seed_studies(protocol)
    assert len(studies) == 30
    quality_assessors_assign_bulk(
        review=protocol,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        per_study=2,
        actor=cast["owner"],
    )
    codes = [c.code for c in protocol.quality_criteria.all()]
    flipped = {(0, "QC5"), (9, "QC1"), (9, "QC2"), (14, "QC4"), (21, "QC3"), (29, "QC1")}
    for index, (study, row) in enumerate(zip(studies, TABLE5, strict=True)):
        paper = ["y" if row["scores"][code] else "n" for code in codes]
        other = [
            ("n" if a == "y" else "y") if (index, code) in flipped else a
            for a, code in zip(paper, codes, strict=True)
        ]
        answer_all(protocol, study, cast["reviewer"], paper)
        answer_all(protocol, study, cast["reviewer2"], other)
        mark_done(protocol, study, cast["reviewer"], cast["reviewer2"])
    table = quality_table5(review=protocol)
    disagreements = [
        (row.study.doi, c.criterion.code)
        for row in table["rows"]
        for c in row.cells
        if c.disagreement
    ]
    assert len(disagreements) == len(flipped)
    assert table["complete"] == 30 - len({index for index, _ in flipped})
    for study_index, code in flipped:
        row = TABLE5[study_index]
        quality_consensus_record(
            review=protocol,
            study=studies[study_index],
            criterion=protocol.quality_criteria.get(code=code),
            actor=cast["owner"],
            answer=str(row["scores"][code]),
            seen_version=0,
        )
    table = quality_table5(review=protocol)
    totals = {row.study.doi: row.total for row in table["rows"]}
    assert totals == {row["doi"]: row["total"] for row in TABLE5}
    by_title = {row.study.title: row.total for row in table["rows"]}
    assert by_title["Serban et al., 2020"] == 5
    assert by_title["Tamburri, 2020"] == 1
    assert table["complete"] == 30
    # Agreement: reviewer2 departed from reviewer on QC1 twice, so QC1's kappa is below 1.
    kappa = {a["criterion"].code: a for a in table["agreement"]}
    assert kappa["QC1"]["agreed"] == 28 and kappa["QC1"]["kappa"] < 1
    assert kappa["QC3"]["pairs"] == 30
    # Per-criterion averages from consensus answers: QC3 is Yes for all but Karlaš et al.
    averages = dict(zip(codes, table["averages"], strict=True))
    assert averages["QC3"] == Decimal(29) / 30
    assert AuditEvent.objects.filter(action="quality.consensus").count() == len(flipped)


# Blind assessment: nothing is derived before every assessor marked the study done.


def two_assessors(protocol, cast):
    study = included_study(protocol)
    quality_assessors_assign(
        review=protocol,
        study=study,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    return study


def test_no_consensus_or_disagreement_before_every_assessor_marked_done(protocol, cast):
    study = two_assessors(protocol, cast)
    answer_all(protocol, study, cast["reviewer"], ["y"] * 5)
    answer_all(protocol, study, cast["reviewer2"], ["y", "n", "y", "y", "y"])
    mark_done(protocol, study, cast["reviewer"])
    assert not QualityConsensus.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="quality.consensus").exists()
    sheet = quality_study_sheet(review=protocol, study=study, user=cast["reviewer"])
    assert sheet.masked and sheet.status == "in_progress" and sheet.open_disagreements == 0
    others = [answer for c in sheet.cells for who, answer in c.answers if who != cast["reviewer"]]
    assert others == [None] * 5
    mark_done(protocol, study, cast["reviewer2"])
    sheet = quality_study_sheet(review=protocol, study=study, user=cast["reviewer"])
    assert not sheet.masked and sheet.status == "disagreement"
    assert QualityConsensus.objects.filter(study=study, method="agreement").count() == 4
    assert AuditEvent.objects.filter(action="quality.reveal").count() == 1


def test_marking_done_needs_every_criterion_answered(protocol, cast):
    study = two_assessors(protocol, cast)
    qc1 = protocol.quality_criteria.get(code="QC1")
    answer_as_seen(
        review=protocol, study=study, criterion=qc1, assessor=cast["reviewer"], answer="y"
    )
    with pytest.raises(ValidationError, match="QC2, QC3, QC4, QC5 missing"):
        mark_done(protocol, study, cast["reviewer"])
    with pytest.raises(PermissionDenied):
        mark_done(protocol, study, cast["owner"])  # not an assessor of this study


def test_owner_cannot_decide_before_the_reveal(protocol, cast):
    study = two_assessors(protocol, cast)
    with pytest.raises(ValidationError, match="not all marked this study done"):
        quality_consensus_record(
            review=protocol,
            study=study,
            criterion=protocol.quality_criteria.first(),
            actor=cast["owner"],
            answer="y",
            seen_version=0,
        )


def test_revised_answer_keeps_the_blind_one_for_agreement(protocol, cast):
    study = two_assessors(protocol, cast)
    answer_all(protocol, study, cast["reviewer"], ["y"] * 5)
    answer_all(protocol, study, cast["reviewer2"], ["y", "n", "y", "y", "y"])
    mark_done(protocol, study, cast["reviewer"], cast["reviewer2"])
    with pytest.raises(ValidationError, match="change an answer directly"):
        quality_complete_set(review=protocol, study=study, assessor=cast["reviewer"], done=False)
    qc2 = protocol.quality_criteria.get(code="QC2")
    answer_as_seen(
        review=protocol, study=study, criterion=qc2, assessor=cast["reviewer2"], answer="y"
    )
    revised = QualityAnswer.objects.get(study=study, criterion=qc2, assessor=cast["reviewer2"])
    assert revised.answer == 1 and revised.answer_at_reveal == 0 and revised.revised_at
    assert AuditEvent.objects.filter(action="quality.answer_revise").count() == 1
    # The consensus follows the revision, the agreement statistics the blind answers.
    assert total_of(protocol, study) == 5
    agreement = {a["criterion"].code: a for a in quality_table5(review=protocol)["agreement"]}
    assert agreement["QC2"]["pairs"] == 1 and agreement["QC2"]["agreed"] == 0


def test_stale_tab_cannot_overwrite_a_newer_answer(protocol, cast):
    study = two_assessors(protocol, cast)
    qc1 = protocol.quality_criteria.get(code="QC1")
    mine = {"review": protocol, "study": study, "criterion": qc1, "assessor": cast["reviewer"]}
    quality_answer_record(**mine, answer="y", justification="aims stated", seen_version=0)
    with pytest.raises(StaleWrite) as refused:
        quality_answer_record(**mine, answer="n", seen_version=0)
    assert refused.value.current == "Yes “aims stated”" and refused.value.by == "reviewer"
    with pytest.raises(StaleWrite):
        quality_answer_record(**mine, answer="n", seen_version=None)
    stored = QualityAnswer.objects.get(study=study, criterion=qc1)
    assert (stored.answer, stored.version) == (1, 1)
    quality_answer_record(**mine, answer="n", seen_version=0, force=True)
    stored.refresh_from_db()
    assert (stored.answer, stored.version) == (0, 2)
    event = AuditEvent.objects.get(action="quality_answer.overwrite")
    assert event.before == {"answer": "1.00", "justification": "aims stated", "version": 1}
    assert event.after == {"answer": "0", "justification": "", "version": 2}


def test_stale_owner_decision_is_refused_with_the_current_consensus(protocol, cast):
    study = two_assessors(protocol, cast)
    answer_all(protocol, study, cast["reviewer"], ["y"] * 5)
    answer_all(protocol, study, cast["reviewer2"], ["y", "n", "y", "y", "y"])
    mark_done(protocol, study, cast["reviewer"], cast["reviewer2"])
    qc1, qc2 = protocol.quality_criteria.filter(code__in=["QC1", "QC2"]).order_by("code")
    owner = {"review": protocol, "study": study, "actor": cast["owner"]}
    quality_consensus_record(**owner, criterion=qc2, answer="n", seen_version=0)  # tab A
    with pytest.raises(StaleWrite) as refused:
        quality_consensus_record(**owner, criterion=qc2, answer="y", seen_version=0)  # tab B
    assert refused.value.current == "No" and refused.value.by == "owner"
    with pytest.raises(StaleWrite):
        quality_consensus_reopen(**owner, criterion=qc2, seen_version=0)
    assert QualityConsensus.objects.get(study=study, criterion=qc2).answer == 0
    # The agreement on QC1 was derived after the owner's page loaded (version 0 seen).
    with pytest.raises(StaleWrite) as refused:
        quality_consensus_record(**owner, criterion=qc1, answer="n", seen_version=0)
    assert refused.value.by == "the agreeing assessors"
    quality_consensus_record(**owner, criterion=qc2, answer="y", seen_version=0, force=True)
    consensus = QualityConsensus.objects.get(study=study, criterion=qc2)
    assert (consensus.answer, consensus.version) == (1, 2)
    event = AuditEvent.objects.get(action="quality_consensus.overwrite")
    assert event.before["version"] == 1 and event.after["version"] == 2
