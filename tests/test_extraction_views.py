"""Extraction views: fields, autosave, done, reconciliation, synthesis click-through, CSV."""

import csv
import io

import pytest
from django.urls import reverse

from screening.models import AuditEvent, ExtractionField, ExtractionValue
from screening.services.extraction import (
    extraction_complete_set,
    extraction_contribution_flags_create,
    extraction_extractors_assign,
    extraction_field_create,
    extraction_value_save,
)

from .quality_helpers import included_study, page_title, seed_protocol


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


@pytest.fixture
def setup(review, cast):
    seed_protocol(review)
    study = included_study(
        review, title="Ünïcode <b>study</b>", doi="10.1/y", authors=["Ölmez, A.", "Smith, B."]
    )
    flags = extraction_contribution_flags_create(review=review, actor=cast["owner"])
    tools = extraction_field_create(
        review=review,
        actor=cast["owner"],
        label="Tools",
        kind="multi_choice",
        choices=["MLflow", "Kubeflow", "TFX, the extended"],
        research_question=flags[3].research_question,
    )
    size = extraction_field_create(
        review=review, actor=cast["owner"], label="Sample size", kind="number"
    )
    extraction_extractors_assign(
        review=review,
        study=study,
        extractors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    return review, study, {"flags": flags, "tools": tools, "size": size}


@pytest.mark.parametrize(
    "name,args",
    [
        ("extraction_home", ()),
        ("extraction_fields", ()),
        ("extraction_synthesis", ()),
        ("extraction_studies", ()),
        ("extraction_csv", ()),
        ("extraction_study", ("study",)),
    ],
)
def test_read_views_access(setup, client, client_for, name, args):
    review, study, _ = setup
    target = url(name, review, *[study.pk for _ in args])
    assert client.get(target).status_code == 302
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("viewer").get(target).status_code == 200
    if name != "extraction_fields":
        assert client_for("viewer").post(target).status_code == 405


def test_home_page_and_fragment(setup, client_for, htmx_headers):
    review, _, _ = setup
    client = client_for("reviewer")
    body = client.get(url("extraction_home", review)).content.decode()
    assert "Your studies" in body and "<b>study</b>" not in body
    fragment = client.get(
        url("extraction_home", review) + "?status=in_progress",
        HTTP_HX_TARGET="extraction-studies",
        **htmx_headers,
    ).content.decode()
    assert "<html" not in fragment and "&lt;b&gt;study" in fragment


def test_field_create_view(setup, client_for, cast):
    review, _, _ = setup
    target = url("extraction_fields", review)
    assert client_for("reviewer").post(target, {"label": "X", "kind": "text"}).status_code == 403
    bad = client_for("owner").post(
        target, {"label": "Method", "kind": "choice", "choices": "Only one"}
    )
    assert bad.status_code == 422 and "at least two choices" in bad.content.decode()
    bad = client_for("owner").post(target, {"label": "", "kind": "nonsense"})
    assert bad.status_code == 422 and "This field is required" in bad.content.decode()
    ok = client_for("owner").post(
        target,
        {
            "label": "Method",
            "kind": "choice",
            "choices": "Survey\nCase study",
            "research_question": "",
        },
    )
    assert ok.status_code == 302
    assert ExtractionField.objects.get(review=review, key="method").choices == [
        "Survey",
        "Case study",
    ]
    # The one-click flags: nothing more to add, and a second click says so.
    response = client_for("owner").post(url("extraction_contributions", review), follow=True)
    assert "already has its flag" in response.content.decode()


def test_autosave_validation_and_access(setup, client, client_for, htmx_headers, cast):
    review, study, fields = setup
    size = fields["size"]
    target = url("extraction_value", review, study.pk, size.pk)
    assert client.post(target, {"value": "1"}).status_code == 302  # anonymous: to login
    response = client_for("reviewer").post(target, {"value": "12"}, **htmx_headers)
    assert response.status_code == 200 and "Saved" in response.content.decode()
    bad = client_for("reviewer").post(target, {"value": "a dozen"}, **htmx_headers)
    assert bad.status_code == 422 and "is not a number" in bad.content.decode()
    assert ExtractionValue.objects.get(field=size, extractor=cast["reviewer"]).value == 12
    assert client_for("outsider").post(target, {"value": "1"}).status_code == 404
    assert client_for("viewer").post(target, {"value": "1"}).status_code == 403
    assert client_for("owner").post(target, {"value": "1"}).status_code == 403  # not assigned
    assert client_for("reviewer").get(target).status_code == 405
    tools = url("extraction_value", review, study.pk, fields["tools"].pk)
    client_for("reviewer").post(tools, {"value": ["TFX, the extended", "MLflow"]}, **htmx_headers)
    assert ExtractionValue.objects.get(field=fields["tools"], extractor=cast["reviewer"]).value == [
        "MLflow",
        "TFX, the extended",
    ]


def test_done_and_reconcile_views(setup, client_for, htmx_headers, cast):
    review, study, fields = setup
    size = fields["size"]
    for user, value in (("reviewer", "12"), ("reviewer2", "14")):
        extraction_value_save(
            review=review, study=study, field=size, extractor=cast[user], raw=value, seen_version=0
        )
    done = url("extraction_done", review, study.pk)
    assert client_for("viewer").post(done).status_code == 403
    client_for("reviewer").post(done)
    client_for("reviewer2").post(done)
    page = client_for("owner").get(url("extraction_study", review, study.pk)).content.decode()
    assert "differ" in page and "Use this" in page
    target = url("extraction_reconcile", review, study.pk, size.pk)
    assert client_for("reviewer").post(target, {"value": "12"}).status_code == 403
    bad = client_for("owner").post(target, {"value": "n/a"}, **htmx_headers)
    assert bad.status_code == 422 and "is not a number" in bad.content.decode()
    ok = client_for("owner").post(target, {"value": "14"}, **htmx_headers)
    assert ok.status_code == 200 and "(owner)" in ok.content.decode()
    assert ExtractionValue.objects.get(field=size, extractor=None).value == 14


def test_synthesis_click_through_and_csv(setup, client_for, cast):
    review, study, fields = setup
    other = included_study(review, title="Second", year=2021)
    extraction_extractors_assign(
        review=review, study=other, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    rq1 = fields["flags"][0]
    for s, users in ((study, ("reviewer", "reviewer2")), (other, ("reviewer",))):
        for user in users:
            extraction_value_save(
                review=review,
                study=s,
                field=rq1,
                extractor=cast[user],
                raw="yes" if s == study else "no",
                seen_version=0,
            )
            extraction_value_save(
                review=review,
                study=s,
                field=fields["tools"],
                extractor=cast[user],
                raw=["MLflow", "TFX, the extended"],
                seen_version=0,
            )
            extraction_complete_set(review=review, study=s, extractor=cast[user])
    client = client_for("viewer")
    page = client.get(url("extraction_synthesis", review)).content.decode()
    assert f"?field={rq1.pk}&amp;value=yes" in page
    studies = client.get(
        url("extraction_studies", review), {"field": rq1.pk, "value": "yes"}
    ).content.decode()
    assert "Ünïcode" in studies and "Second" not in studies
    by_choice = client.get(
        url("extraction_studies", review), {"field": fields["tools"].pk, "value": "MLflow"}
    )
    assert "Ünïcode" in by_choice.content.decode() and "Second" in by_choice.content.decode()
    by_year = client.get(url("extraction_studies", review), {"year": 2021}).content.decode()
    assert "Second" in by_year and "Ünïcode" not in by_year
    bad = client.get(
        url("extraction_studies", review), {"field": fields["tools"].pk, "value": "Spark"}
    )
    assert bad.status_code == 400 and "not one of the choices" in bad.content.decode()
    bad = client.get(url("extraction_studies", review), {"field": fields["size"].pk, "value": "1"})
    assert bad.status_code == 400 and "Only choice and yes/no" in bad.content.decode()
    response = client.get(url("extraction_csv", review))
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    fields_in_order = [
        f.label
        for f in ExtractionField.objects.filter(review=review).order_by(
            "research_question__position", "position"
        )
    ]
    assert rows[0][:5] == ["Study ID", "Title", "Authors", "Year", "DOI"]
    assert len(rows[0]) == 5 + len(fields_in_order)
    assert "RQ4: Tools" in rows[0] and "Contributes to RQ1 (Machine Learning Lifecycle)" in rows[0]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Title"] == "Ünïcode <b>study</b>" and first["Authors"] == "Ölmez, A.; Smith, B."
    assert first["Contributes to RQ1 (Machine Learning Lifecycle)"] == "Yes"
    assert first["RQ4: Tools"] == "MLflow; TFX, the extended"
    assert first["Sample size"] == ""
    second = dict(zip(rows[0], rows[2], strict=True))
    assert second["Contributes to RQ1 (Machine Learning Lifecycle)"] == "No"


def test_field_delete_view(setup, client_for):
    review, _, fields = setup
    target = url("extraction_field_delete", review, fields["size"].pk)
    assert client_for("reviewer").post(target).status_code == 403
    assert client_for("owner").get(target).status_code == 405
    assert client_for("owner").post(target).status_code == 302
    assert not ExtractionField.objects.filter(pk=fields["size"].pk).exists()


def test_study_reconcile_fragment(setup, client_for, htmx_headers):
    review, study, _ = setup
    response = client_for("owner").get(
        url("extraction_study", review, study.pk),
        HTTP_HX_TARGET="extraction-reconcile",
        **htmx_headers,
    )
    text = response.content.decode()
    assert (
        response.status_code == 200 and "<html" not in text and 'id="extraction-reconcile"' in text
    )
    # Blind mode: a reviewer does not see the other extractor's values before both are done.
    blind = client_for("reviewer").get(url("extraction_study", review, study.pk)).content.decode()
    assert "stay hidden until everyone has marked the study done" in blind


def test_csv_cells_cannot_run_formulas(setup, client_for, cast):
    review, study, fields = setup
    study.title = '=HYPERLINK("http://evil.example","click")'
    study.save()
    extraction_extractors_assign(
        review=review, study=study, extractors=[cast["reviewer"]], actor=cast["owner"]
    )
    notes = extraction_field_create(review=review, actor=cast["owner"], label="Notes", kind="text")
    extraction_value_save(
        review=review,
        study=study,
        field=notes,
        extractor=cast["reviewer"],
        raw="+1 for MLOps",
        seen_version=0,
    )
    extraction_value_save(
        review=review,
        study=study,
        field=fields["size"],
        extractor=cast["reviewer"],
        raw="-3",
        seen_version=0,
    )
    extraction_complete_set(review=review, study=study, extractor=cast["reviewer"])
    for name in ("extraction_csv", "quality_table_csv"):
        response = client_for("viewer").get(url(name, review))
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        title = rows[0].index("Study" if name == "quality_table_csv" else "Title")
        assert rows[1][title] == "'" + study.title
    rows = list(
        csv.reader(
            io.StringIO(
                client_for("viewer").get(url("extraction_csv", review)).content.decode("utf-8-sig")
            )
        )
    )
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Notes"] == "'+1 for MLOps"
    assert first["Sample size"] == "-3"  # numbers stay numbers


def test_home_title_is_the_page_title_only(setup, client_for):
    review, _, _ = setup
    body = client_for("reviewer").get(url("extraction_home", review)).content.decode()
    assert page_title(body) == f"Extraction · {review.title} · slrweb"


def test_autosave_refuses_several_values_for_one_field_and_stores_nothing(
    setup, client_for, htmx_headers, cast
):
    """What the old page sent: every `value` input of the sheet to one field's address."""
    review, study, fields = setup
    size = fields["size"]
    target = url("extraction_value", review, study.pk, size.pk)
    response = client_for("reviewer").post(
        target, {"value": ["yes", "no", "12"], "version": "0"}, **htmx_headers
    )
    assert response.status_code == 400
    assert "takes one value but 3 were sent" in response.content.decode()
    assert not ExtractionValue.objects.filter(field=size).exists()


def test_autosave_answer_shows_the_stored_value_and_the_next_version(
    setup, client_for, htmx_headers, cast
):
    review, study, fields = setup
    size = fields["size"]
    target = url("extraction_value", review, study.pk, size.pk)
    response = client_for("reviewer").post(
        target, {"value": "12,5", "version": "0"}, **htmx_headers
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Saved: 12.5" in body
    assert f'id="mine-version-{size.pk}" value="1" hx-swap-oob="true"' in body
    row = ExtractionValue.objects.get(field=size, extractor=cast["reviewer"])
    assert (row.value, row.version) == (12.5, 1)
    # After a reload the field's form carries the stored value and its version.
    page = client_for("reviewer").get(url("extraction_study", review, study.pk)).content.decode()
    assert f'id="mine-{size.pk}" name="value" value="12.5"' in page
    assert f'id="mine-version-{size.pk}" value="1"' in page


def test_stale_tab_gets_409_with_the_current_value_and_can_apply_anyway(
    setup, client_for, htmx_headers, cast
):
    review, study, fields = setup
    size = fields["size"]
    target = url("extraction_value", review, study.pk, size.pk)
    client = client_for("reviewer")
    assert client.post(target, {"value": "12", "version": "0"}, **htmx_headers).status_code == 200
    stale = client.post(target, {"value": "40", "version": "0"}, **htmx_headers)
    body = stale.content.decode()
    assert stale.status_code == 409
    assert "Not saved" in body and "<strong data-stale-current>12</strong>, by reviewer" in body
    assert stale["HX-Retarget"] == f"#mine-status-{size.pk}"
    assert ExtractionValue.objects.get(field=size, extractor=cast["reviewer"]).value == 12
    # "Apply mine anyway" posts the echoed value with the current version, forced.
    forced = client.post(target, {"value": "40", "version": "1", "force": "1"}, **htmx_headers)
    assert forced.status_code == 200 and "Saved: 40" in forced.content.decode()
    row = ExtractionValue.objects.get(field=size, extractor=cast["reviewer"])
    assert (row.value, row.version) == (40, 2)
    assert AuditEvent.objects.filter(action="extraction_value.overwrite").count() == 1


def test_stale_reconciliation_gets_409(setup, client_for, htmx_headers, cast):
    review, study, fields = setup
    size = fields["size"]
    target = url("extraction_reconcile", review, study.pk, size.pk)
    client = client_for("owner")
    assert client.post(target, {"value": "12", "version": "0"}, **htmx_headers).status_code == 200
    stale = client.post(target, {"value": "14", "version": "0"}, **htmx_headers)
    assert stale.status_code == 409 and stale["HX-Retarget"] == f"#reconcile-stale-{size.pk}"
    assert ExtractionValue.objects.get(field=size, extractor=None).value == 12


def test_blind_owner_who_extracts_sees_no_other_values_until_all_done(
    setup, client_for, htmx_headers, cast
):
    review, study, fields = setup
    size = fields["size"]
    extraction_extractors_assign(
        review=review,
        study=study,
        extractors=[cast["owner"], cast["reviewer"]],
        actor=cast["owner"],
    )
    extraction_value_save(
        review=review,
        study=study,
        field=size,
        extractor=cast["reviewer"],
        raw="4711",
        seen_version=0,
    )
    client = client_for("owner")
    page = client.get(url("extraction_study", review, study.pk)).content.decode()
    assert "4711" not in page and "stay hidden" in page
    fragment = client.get(
        url("extraction_study", review, study.pk),
        HTTP_HX_TARGET="extraction-reconcile",
        **htmx_headers,
    ).content.decode()
    assert "4711" not in fragment
    # The reconcile answer (a fragment of its own) hides them too.
    answer = client.post(
        url("extraction_reconcile", review, study.pk, size.pk),
        {"value": "1", "version": "0"},
        **htmx_headers,
    ).content.decode()
    assert "4711" not in answer and "table-danger" not in answer
    extraction_complete_set(review=review, study=study, extractor=cast["owner"])
    extraction_complete_set(review=review, study=study, extractor=cast["reviewer"])
    page = client.get(url("extraction_study", review, study.pk)).content.decode()
    assert "4711" in page
