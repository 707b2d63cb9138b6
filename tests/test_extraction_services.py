"""Extraction services: fields, validation per kind, drafts, reconciliation, access, themes."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from screening.domain import extraction as values
from screening.models import AuditEvent, ExtractionField, ExtractionValue
from screening.selectors.extraction import (
    extraction_studies_filter,
    extraction_study_sheet,
    extraction_synthesis,
    extraction_table,
)
from screening.services.extraction import (
    extraction_complete_set,
    extraction_contribution_flags_create,
    extraction_extractors_assign,
    extraction_extractors_assign_bulk,
    extraction_field_create,
    extraction_field_delete,
    extraction_reconcile,
    extraction_value_save,
)
from screening.services.stale import StaleWrite

from .quality_helpers import (
    THEMES,
    answer_as_seen,
    included_study,
    mark_done,
    seed_protocol,
    seed_studies,
)

Kind = ExtractionField.Kind


@pytest.fixture
def protocol(review):
    seed_protocol(review)
    return review


def reconciled(study, field):
    row = ExtractionValue.objects.filter(study=study, field=field, extractor=None).first()
    return row.value if row else "missing"


# Domain.


@pytest.mark.parametrize(
    "kind,raw,choices,expected",
    [
        ("text", "  Kubeflow ", (), "Kubeflow"),
        ("text", "   ", (), None),
        ("number", "42", (), 42),
        ("number", "0,5", (), 0.5),
        ("number", "-3.25", (), -3.25),
        ("choice", "Case study", ("Survey", "Case study"), "Case study"),
        (
            "multi_choice",
            ["Kubeflow", "MLflow"],
            ("MLflow", "Kubeflow", "TFX"),
            ["MLflow", "Kubeflow"],
        ),
        ("multi_choice", [], ("MLflow",), None),
        ("yes_no", "yes", (), True),
        ("yes_no", "no", (), False),
    ],
)
def test_value_clean(kind, raw, choices, expected):
    assert values.value_clean(kind, raw, choices) == expected


@pytest.mark.parametrize(
    "kind,raw,choices,message",
    [
        ("number", "many", (), "is not a number"),
        ("number", "inf", (), "not a finite number"),
        ("choice", "Other", ("Survey",), "not one of the choices"),
        ("multi_choice", ["Other"], ("MLflow",), "not one of the choices"),
        ("yes_no", "maybe", (), "Answer yes or no"),
        ("text", "x" * 501, (), "under 500"),
    ],
)
def test_value_clean_refuses_with_clear_message(kind, raw, choices, message):
    with pytest.raises(values.ValueInvalid, match=message):
        values.value_clean(kind, raw, choices)


def test_values_equal_and_display():
    assert values.values_equal(["a", "b"], ["b", "a"])
    assert values.values_equal("two  words", "two words")
    assert values.values_equal(1, 1.0)
    assert not values.values_equal(True, 1)
    assert values.value_display(["MLflow", "TFX"]) == "MLflow; TFX"
    assert values.value_display(False) == "No"


# Services.


def test_field_create_validates_and_flags_in_one_click(protocol, cast):
    with pytest.raises(ValidationError, match="at least two choices"):
        extraction_field_create(
            review=protocol, actor=cast["owner"], label="Method", kind="choice", choices="Survey"
        )
    with pytest.raises(PermissionDenied):
        extraction_field_create(review=protocol, actor=cast["reviewer"], label="Tools", kind="text")
    flags = extraction_contribution_flags_create(review=protocol, actor=cast["owner"])
    assert [f.label for f in flags][0] == "Contributes to RQ1 (Machine Learning Lifecycle)"
    assert len(flags) == 5 and all(f.kind == Kind.YES_NO and f.is_contribution for f in flags)
    # A second click adds nothing.
    assert extraction_contribution_flags_create(review=protocol, actor=cast["owner"]) == []
    tools = extraction_field_create(
        review=protocol,
        actor=cast["owner"],
        label="Tools",
        kind="multi_choice",
        choices="MLflow\nKubeflow\n\nMLflow\nTFX",
        research_question=protocol.research_questions.get(code="RQ4"),
    )
    assert tools.choices == ["MLflow", "Kubeflow", "TFX"]
    again = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Tools", kind="text"
    )
    assert again.key == "tools-2"
    assert AuditEvent.objects.filter(action="extraction.field_create").count() == 7
    extraction_field_delete(review=protocol, field=again, actor=cast["owner"])
    assert AuditEvent.objects.filter(action="extraction.field_delete").count() == 1


def test_one_extractor_value_becomes_reconciled_when_done(protocol, cast):
    study = included_study(protocol)
    field = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Sample size", kind="number"
    )
    extraction_extractors_assign(
        review=protocol, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    extraction_value_save(
        review=protocol,
        study=study,
        field=field,
        extractor=cast["reviewer"],
        raw="1",
        seen_version=0,
    )
    extraction_value_save(
        review=protocol,
        study=study,
        field=field,
        extractor=cast["reviewer"],
        raw="12",
        seen_version=1,
    )
    assert reconciled(study, field) == "missing"  # a draft until marked done
    with pytest.raises(ValidationError, match="not a number"):
        extraction_value_save(
            review=protocol,
            study=study,
            field=field,
            extractor=cast["reviewer"],
            raw="twelve",
            seen_version=0,
        )
    assert ExtractionValue.objects.get(study=study, extractor=cast["reviewer"]).value == 12
    extraction_complete_set(review=protocol, study=study, extractor=cast["reviewer"])
    assert reconciled(study, field) == 12
    assert AuditEvent.objects.filter(action="extraction.value").count() == 2


def test_two_extractors_differ_and_owner_reconciles(protocol, cast):
    study = included_study(protocol)
    method = extraction_field_create(
        review=protocol,
        actor=cast["owner"],
        label="Method",
        kind="choice",
        choices=["Survey", "Case study"],
    )
    tools = extraction_field_create(
        review=protocol,
        actor=cast["owner"],
        label="Tools",
        kind="multi_choice",
        choices=["MLflow", "TFX"],
    )
    extraction_extractors_assign(
        review=protocol,
        study=study,
        extractors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    for user, method_value, tools_value in (
        ("reviewer", "Survey", ["TFX", "MLflow"]),
        ("reviewer2", "Case study", ["MLflow", "TFX"]),
    ):
        extraction_value_save(
            review=protocol,
            study=study,
            field=method,
            extractor=cast[user],
            raw=method_value,
            seen_version=0,
        )
        extraction_value_save(
            review=protocol,
            study=study,
            field=tools,
            extractor=cast[user],
            raw=tools_value,
            seen_version=0,
        )
        extraction_complete_set(review=protocol, study=study, extractor=cast[user])
    sheet = extraction_study_sheet(review=protocol, study=study, user=cast["owner"], is_owner=True)
    cells = {c.field.key: c for c in sheet["row"].cells}
    assert cells["method"].differs and not cells["tools"].differs
    assert reconciled(study, tools) == ["MLflow", "TFX"]
    assert reconciled(study, method) == "missing" and sheet["row"].status == "differences"
    with pytest.raises(PermissionDenied):
        extraction_reconcile(
            review=protocol,
            study=study,
            field=method,
            actor=cast["reviewer"],
            raw="Survey",
            seen_version=0,
        )
    with pytest.raises(ValidationError, match="not one of the choices"):
        extraction_reconcile(
            review=protocol,
            study=study,
            field=method,
            actor=cast["owner"],
            raw="Essay",
            seen_version=0,
        )
    extraction_reconcile(
        review=protocol,
        study=study,
        field=method,
        actor=cast["owner"],
        raw="Case study",
        seen_version=0,
    )
    assert reconciled(study, method) == "Case study"
    assert (
        extraction_study_sheet(review=protocol, study=study, user=cast["owner"], is_owner=True)[
            "row"
        ].status
        == "reconciled"
    )
    assert AuditEvent.objects.filter(action="extraction.reconcile").count() == 1
    table = extraction_table(review=protocol)
    assert table["rows"][0]["display"] == ["Case study", "MLflow; TFX"]


def test_only_assigned_extractors_write(protocol, cast):
    study = included_study(protocol)
    field = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Notes", kind="long_text"
    )
    extraction_extractors_assign(
        review=protocol, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    for user in ("reviewer2", "owner", "viewer", "outsider"):
        with pytest.raises(PermissionDenied):
            extraction_value_save(
                review=protocol,
                study=study,
                field=field,
                extractor=cast[user],
                raw="x",
                seen_version=0,
            )
    with pytest.raises(ValidationError, match="only reviewers and owners"):
        extraction_extractors_assign(
            review=protocol, study=study, extractors=[cast["viewer"]], actor=cast["owner"]
        )
    assert not ExtractionValue.objects.exists()


def test_seed_theme_counts_from_contribution_flags(protocol, cast):
    """The paper reports 18 / 4 / 3 / 6 / 8 studies per theme but not which studies.

    The flags are entered here by a rule that yields those counts: study i (in Table 5's
    order) contributes to RQ1 when i < 18, to RQ2 when 18 <= i < 22, to RQ3 when 22 <= i < 25,
    to RQ4 when i < 6 (so some studies count for two themes) and to RQ5 when 22 <= i < 30.
    Every study is extracted by one of two reviewers (round-robin) and marked done.
    """
    studies = seed_studies(protocol)
    flags = {
        f.research_question.code: f
        for f in extraction_contribution_flags_create(review=protocol, actor=cast["owner"])
    }
    rules = {
        "RQ1": lambda i: i < 18,
        "RQ2": lambda i: 18 <= i < 22,
        "RQ3": lambda i: 22 <= i < 25,
        "RQ4": lambda i: i < 6,
        "RQ5": lambda i: 22 <= i < 30,
    }
    extraction_extractors_assign_bulk(
        review=protocol,
        extractors=[cast["reviewer"], cast["reviewer2"]],
        per_study=1,
        actor=cast["owner"],
    )
    for index, study in enumerate(studies):
        extractor = study.extraction_assignments.get().extractor
        for code, rule in rules.items():
            extraction_value_save(
                review=protocol,
                study=study,
                field=flags[code],
                extractor=extractor,
                raw="yes" if rule(index) else "no",
                seen_version=0,
            )
        extraction_complete_set(review=protocol, study=study, extractor=extractor)
    synthesis = extraction_synthesis(review=protocol)
    counts = {t["research_question"].theme: t["count"] for t in synthesis["themes"]}
    assert counts == THEMES
    # Each count clicks through to exactly its studies.
    rq2 = extraction_studies_filter(review=protocol, field=flags["RQ2"], raw="yes")
    assert list(rq2) == studies[18:22]
    # Table 5's citations: 6 studies from 2019, 18 from 2020, 6 from 2021.
    assert dict(synthesis["years"]) == {2019: 6, 2020: 18, 2021: 6}


def test_quality_threshold_takes_studies_out_of_extraction(protocol, cast):
    from screening.services.quality import quality_assessors_assign, quality_settings_update

    weak, strong = included_study(protocol, title="weak"), included_study(protocol, title="strong")
    for study, answer in ((weak, "n"), (strong, "y")):
        quality_assessors_assign(
            review=protocol, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
        )
        for criterion in protocol.quality_criteria.all():
            answer_as_seen(
                review=protocol,
                study=study,
                criterion=criterion,
                assessor=cast["reviewer"],
                answer=answer,
            )
        mark_done(protocol, study, cast["reviewer"])
    validated = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Validated in industry", kind="yes_no"
    )
    quality_settings_update(review=protocol, actor=cast["owner"], scale="yes_no", threshold="2")
    protocol.refresh_from_db()
    assigned = extraction_extractors_assign_bulk(
        review=protocol, extractors=[cast["reviewer"]], per_study=1, actor=cast["owner"]
    )
    assert assigned == 1 and not weak.extraction_assignments.exists()
    extraction_value_save(
        review=protocol,
        study=strong,
        field=validated,
        extractor=cast["reviewer"],
        raw="yes",
        seen_version=0,
    )
    extraction_complete_set(review=protocol, study=strong, extractor=cast["reviewer"])
    synthesis = extraction_synthesis(review=protocol)
    assert synthesis["included"] == 1 and synthesis["quality_excluded"] == 1
    assert synthesis["choice_fields"][0]["counts"] == [("Yes", "yes", 1), ("No", "no", 0)]
    assert [row["study"] for row in extraction_table(review=protocol)["rows"]] == [strong]


def test_deleting_a_question_or_the_review_keeps_working_with_flags(protocol, cast):
    flags = extraction_contribution_flags_create(review=protocol, actor=cast["owner"])
    protocol.research_questions.get(code="RQ5").delete()
    flags[4].refresh_from_db()
    assert flags[4].research_question is None
    assert len(extraction_synthesis(review=protocol)["themes"]) == 4
    protocol.delete()
    assert not ExtractionField.objects.exists()


# Stale writes: two tabs of the same person, one of them showing an older version.


def test_stale_tab_cannot_overwrite_a_newer_value(protocol, cast):
    study = included_study(protocol)
    field = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Sample size", kind="number"
    )
    extraction_extractors_assign(
        review=protocol, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    mine = {"review": protocol, "study": study, "field": field, "extractor": cast["reviewer"]}
    extraction_value_save(**mine, raw="12", seen_version=0)  # tab A
    with pytest.raises(StaleWrite) as refused:
        extraction_value_save(**mine, raw="40", seen_version=0)  # tab B saw no value
    assert refused.value.current == "12" and refused.value.current_version == 1
    assert refused.value.by == "reviewer" and refused.value.at is not None
    row = ExtractionValue.objects.get(study=study, field=field, extractor=cast["reviewer"])
    assert (row.value, row.version) == (12, 1)
    # The same value again is no conflict, and a form without a version never overwrites.
    assert extraction_value_save(**mine, raw="12", seen_version=0).version == 1
    with pytest.raises(StaleWrite):
        extraction_value_save(**mine, raw="40", seen_version=None)
    assert not AuditEvent.objects.filter(action="extraction_value.overwrite").exists()


def test_applying_a_stale_value_anyway_is_audited_with_the_replaced_version(protocol, cast):
    study = included_study(protocol)
    field = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Sample size", kind="number"
    )
    extraction_extractors_assign(
        review=protocol, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    mine = {"review": protocol, "study": study, "field": field, "extractor": cast["reviewer"]}
    extraction_value_save(**mine, raw="12", seen_version=0)
    saved = extraction_value_save(**mine, raw="40", seen_version=0, force=True)
    assert (saved.value, saved.version) == (40, 2)
    event = AuditEvent.objects.get(action="extraction_value.overwrite")
    assert event.actor == cast["reviewer"]
    assert event.before == {"value": 12, "version": 1}
    assert event.after == {"value": 40, "version": 2}


def test_stale_reconciliation_is_refused_with_who_decided(protocol, cast):
    study = included_study(protocol)
    field = extraction_field_create(
        review=protocol, actor=cast["owner"], label="Sample size", kind="number"
    )
    extraction_extractors_assign(
        review=protocol, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    extraction_value_save(
        review=protocol,
        study=study,
        field=field,
        extractor=cast["reviewer"],
        raw="12",
        seen_version=0,
    )
    extraction_complete_set(review=protocol, study=study, extractor=cast["reviewer"])
    derived = ExtractionValue.objects.get(study=study, field=field, extractor=None)
    assert (derived.value, derived.version) == (12, 1)
    owner = {"review": protocol, "study": study, "field": field, "actor": cast["owner"]}
    # The owner's page was opened before the extractor marked the study done.
    with pytest.raises(StaleWrite) as refused:
        extraction_reconcile(**owner, raw="13", seen_version=0)
    assert refused.value.current == "12" and refused.value.by == "the agreeing extractors"
    extraction_reconcile(**owner, raw="13", seen_version=1)
    with pytest.raises(StaleWrite) as refused:
        extraction_reconcile(**owner, raw="14", seen_version=1)
    assert refused.value.current == "13" and refused.value.by == "owner"
    assert reconciled(study, field) == 13
