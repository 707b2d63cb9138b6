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
    quality_consensus_record,
    quality_consensus_reopen,
    quality_settings_update,
)

from .quality_helpers import TABLE5, included_study, seed_protocol, seed_studies


@pytest.fixture
def protocol(review):
    seed_protocol(review)
    return review


def answer_all(review, study, assessor, answers):
    for criterion, answer in zip(review.quality_criteria.all(), answers, strict=True):
        quality_answer_record(
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
        quality_answer_record(
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
    assert total_of(protocol, study) is None  # the second assessor has not answered
    answer_all(protocol, study, cast["reviewer2"], ["y", "n", "y", "y", "y"])
    sheet = quality_study_sheet(review=protocol, study=study, user=cast["owner"])
    assert [c.open_disagreement for c in sheet.cells] == [False, True, False, False, False]
    assert sheet.status == "disagreement" and sheet.total is None
    qc2 = protocol.quality_criteria.get(code="QC2")
    quality_consensus_record(
        review=protocol, study=study, criterion=qc2, actor=cast["owner"], answer="n", note="pilot"
    )
    assert total_of(protocol, study) == 4
    assert AuditEvent.objects.filter(action="quality.consensus").count() == 1
    # The owner's decision stands when an assessor changes their mind afterwards ...
    quality_answer_record(
        review=protocol, study=study, criterion=qc2, assessor=cast["reviewer"], answer="y"
    )
    assert QualityConsensus.objects.get(study=study, criterion=qc2).answer == 0
    # ... until reopened: then the assessors' agreement (now Yes) applies.
    quality_answer_record(
        review=protocol, study=study, criterion=qc2, assessor=cast["reviewer2"], answer="y"
    )
    quality_consensus_reopen(review=protocol, study=study, criterion=qc2, actor=cast["owner"])
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
    assert total_of(protocol, study) == 5
    quality_answer_record(
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
            quality_answer_record(
                review=protocol, study=study, criterion=criterion, assessor=cast[user], answer="y"
            )
    with pytest.raises(PermissionDenied):
        quality_consensus_record(
            review=protocol, study=study, criterion=criterion, actor=cast["reviewer"], answer="y"
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
