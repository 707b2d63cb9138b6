"""In Chromium: extraction drafts save as you type, each field its own value, and survive
leaving the page at once; what was typed is what reconciliation, the CSV and the synthesis show."""

import csv
import io

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from screening.models import AuditEvent, ExtractionValue
from screening.services.extraction import (
    extraction_contribution_flags_create,
    extraction_extractors_assign,
    extraction_field_create,
)

from .quality_helpers import included_study, seed_protocol


def stored(field, extractor):
    row = ExtractionValue.objects.filter(field=field, extractor=extractor).first()
    return row.value if row else None


def wait_for_value(page, field, extractor, expected):
    """Poll the database until it holds `expected`: a beacon has no response to wait for."""
    for _ in range(200):
        if stored(field, extractor) == expected:
            return
        page.wait_for_timeout(50)
    assert stored(field, extractor) == expected


@pytest.mark.browser
def test_every_field_keeps_its_own_typed_value_after_reload(
    transactional_db, review, cast, login_page
):
    seed_protocol(review)
    study = included_study(review, title="A study of feature stores")
    owner, extractor = cast["owner"], cast["reviewer"]
    flags = extraction_contribution_flags_create(review=review, actor=owner)
    method = extraction_field_create(
        review=review, actor=owner, label="Method", kind="choice", choices="Survey\nCase study"
    )
    tool = extraction_field_create(review=review, actor=owner, label="Main tool", kind="text")
    richness = extraction_field_create(
        review=review, actor=owner, label="Species richness", kind="number"
    )
    stacks = extraction_field_create(
        review=review, actor=owner, label="Stacks", kind="multi_choice", choices="MLflow\nTFX\nDVC"
    )
    replicated = extraction_field_create(
        review=review, actor=owner, label="Replicated", kind="yes_no"
    )
    extraction_extractors_assign(review=review, study=study, extractors=[extractor], actor=owner)
    rq1, rq2 = flags[0], flags[1]
    study_url = reverse("screening:extraction_study", args=[review.slug, study.pk])

    page = login_page("reviewer")
    page.goto(study_url)

    def confirmed(field, shown):
        expect(page.locator(f"#mine-status-{field.pk}")).to_contain_text(f"Saved: {shown}")

    page.check(f"#mine-{rq1.pk}-yes")
    confirmed(rq1, "Yes")
    page.check(f"#mine-{rq2.pk}-no")
    confirmed(rq2, "No")
    page.check(f"#mine-{method.pk} >> text=Case study")
    confirmed(method, "Case study")
    page.fill(f"#mine-{tool.pk}", "Feast")
    confirmed(tool, "Feast")
    page.fill(f"#mine-{richness.pk}", "12,5")
    confirmed(richness, "12.5")
    page.check(f"#mine-{stacks.pk} >> text=MLflow")
    confirmed(stacks, "MLflow")
    page.check(f"#mine-{stacks.pk} >> text=DVC")
    confirmed(stacks, "MLflow; DVC")
    page.check(f"#mine-{replicated.pk}-yes")
    confirmed(replicated, "Yes")

    expected = {
        rq1: True,
        rq2: False,
        method: "Case study",
        tool: "Feast",
        richness: 12.5,
        stacks: ["MLflow", "DVC"],
        replicated: True,
    }
    assert {f: stored(f, extractor) for f in expected} == expected
    for other in flags[2:]:
        assert stored(other, extractor) is None

    page.reload()
    expect(page.locator(f"#mine-{rq1.pk}-yes")).to_be_checked()
    expect(page.locator(f"#mine-{rq2.pk}-no")).to_be_checked()
    expect(page.locator(f"#mine-{method.pk} >> text=Case study")).to_be_checked()
    expect(page.locator(f"#mine-{tool.pk}")).to_have_value("Feast")
    expect(page.locator(f"#mine-{richness.pk}")).to_have_value("12.5")
    expect(page.locator(f"#mine-{stacks.pk} >> text=MLflow")).to_be_checked()
    expect(page.locator(f"#mine-{stacks.pk} >> text=TFX")).not_to_be_checked()
    expect(page.locator(f"#mine-{stacks.pk} >> text=DVC")).to_be_checked()
    expect(page.locator(f"#mine-{replicated.pk}-yes")).to_be_checked()

    page.click("[data-extraction-done]")
    expect(page.locator("h2#mine-heading")).to_contain_text("marked done")

    page.context.clear_cookies()
    login_page("owner")
    page.goto(study_url)
    reconciliation = page.locator("#extraction-reconcile")
    for field, shown in (
        (rq1, "Yes"),
        (rq2, "No"),
        (method, "Case study"),
        (tool, "Feast"),
        (richness, "12.5"),
        (stacks, "MLflow; DVC"),
        (replicated, "Yes"),
    ):
        expect(reconciliation.locator(f"#reconcile-{field.pk}")).to_contain_text(shown)
    csv_text = page.request.get(reverse("screening:extraction_csv", args=[review.slug])).text()
    header, row = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    by_column = dict(zip(header, row, strict=True))
    assert by_column["Method"] == "Case study"
    assert by_column["Main tool"] == "Feast"
    assert by_column["Species richness"] == "12.5"
    assert by_column["Stacks"] == "MLflow; DVC"
    assert by_column["Replicated"] == "Yes"
    assert by_column[rq1.label] == "Yes" and by_column[rq2.label] == "No"
    page.goto(reverse("screening:extraction_synthesis", args=[review.slug]))
    themes = page.locator("#themes-heading + table")
    expect(
        themes.locator("tr", has_text=rq1.research_question.code).locator("td").last
    ).to_have_text("1")
    expect(
        themes.locator("tr", has_text=rq2.research_question.code).locator("td").last
    ).to_have_text("0")


@pytest.mark.browser
def test_drafts_save_as_you_type_and_on_leaving(transactional_db, review, cast, login_page):
    seed_protocol(review)
    study = included_study(review, title="A study of model registries")
    owner, extractor = cast["owner"], cast["reviewer"]
    findings = extraction_field_create(
        review=review, actor=owner, label="Key findings", kind="long_text"
    )
    tools = extraction_field_create(
        review=review, actor=owner, label="Tools", kind="multi_choice", choices="MLflow\nTFX\nDVC"
    )
    size = extraction_field_create(review=review, actor=owner, label="Participants", kind="number")
    extraction_extractors_assign(review=review, study=study, extractors=[extractor], actor=owner)

    page = login_page("reviewer")
    page.goto(reverse("screening:extraction_study", args=[review.slug, study.pk]))
    page.check("text=MLflow")
    expect(page.locator(f"#mine-status-{tools.pk}")).to_contain_text("Saved: MLflow")
    page.check("text=DVC")
    expect(page.locator(f"#mine-status-{tools.pk}")).to_contain_text("Saved: MLflow; DVC")
    assert stored(tools, extractor) == ["MLflow", "DVC"]
    page.fill(f"#mine-{size.pk}", "twelve")
    expect(page.locator(f"#mine-status-{size.pk}")).to_contain_text("'twelve' is not a number")
    expect(page.locator(f"#mine-{size.pk}")).to_have_attribute("aria-invalid", "true")
    assert stored(size, extractor) is None
    # Type and leave at once, before the autosave delay: the draft is sent on the way out.
    page.click(f"#mine-{findings.pk}")
    page.keyboard.type("Registries are rare")
    page.goto(reverse("screening:extraction_home", args=[review.slug]))
    wait_for_value(page, findings, extractor, "Registries are rare")
    # The bad number cost nothing else: the other values are all still there.
    assert stored(tools, extractor) == ["MLflow", "DVC"]


def two_tabs_on_a_saved_number(review, cast, login_page, *, title):
    """The reviewer's two tabs on one study's "Sample size"; tab A has saved 12."""
    seed_protocol(review)
    study = included_study(review, title=title)
    owner, extractor = cast["owner"], cast["reviewer"]
    size = extraction_field_create(review=review, actor=owner, label="Sample size", kind="number")
    extraction_extractors_assign(review=review, study=study, extractors=[extractor], actor=owner)
    study_url = reverse("screening:extraction_study", args=[review.slug, study.pk])
    tab_a = login_page("reviewer")
    tab_a.goto(study_url)
    tab_b = tab_a.context.new_page()
    tab_b.goto(study_url)
    tab_a.fill(f"#mine-{size.pk}", "12")
    expect(tab_a.locator(f"#mine-status-{size.pk}")).to_contain_text("Saved: 12")
    return study, size, extractor, tab_a, tab_b


@pytest.mark.browser
def test_stale_second_tab_cannot_overwrite_a_value(transactional_db, review, cast, login_page):
    _, size, extractor, tab_a, tab_b = two_tabs_on_a_saved_number(
        review, cast, login_page, title="Two tabs on one study"
    )
    tab_b.fill(f"#mine-{size.pk}", "40")
    stale = tab_b.locator(f"#mine-status-{size.pk} [data-stale-write]")
    expect(stale).to_contain_text("Now: 12, by reviewer")
    assert stored(size, extractor) == 12
    tab_b.click("[data-stale-apply]")
    expect(tab_b.locator(f"#mine-status-{size.pk}")).to_contain_text("Saved: 40")
    row = ExtractionValue.objects.get(field=size, extractor=extractor)
    assert (row.value, row.version) == (40, 2)
    assert AuditEvent.objects.filter(action="extraction_value.overwrite").count() == 1
    # Tab B's form now carries the new version: its next edit saves without a conflict.
    tab_b.fill(f"#mine-{size.pk}", "41")
    expect(tab_b.locator(f"#mine-status-{size.pk}")).to_contain_text("Saved: 41")
    tab_a.reload()
    expect(tab_a.locator(f"#mine-{size.pk}")).to_have_value("41")


@pytest.mark.browser
def test_a_stale_answer_is_not_asked_again_when_the_field_loses_focus(
    transactional_db, review, cast, login_page
):
    """The 409 focuses "Apply mine anyway", so the field loses focus and its change event
    fires: the same value and version went out twice and the second 409 could land after the
    forced save, showing "Not saved" over "Saved: 40". The same payload is not sent again."""
    study, size, extractor, _, tab_b = two_tabs_on_a_saved_number(
        review, cast, login_page, title="Two tabs, one focus change"
    )
    save_url = reverse("screening:extraction_value", args=[review.slug, study.pk, size.pk])
    saves: list[str] = []
    tab_b.on(
        "request",
        lambda request: (
            saves.append(request.post_data or "")
            if request.method == "POST" and request.url.endswith(save_url)
            else None
        ),
    )
    tab_b.fill(f"#mine-{size.pk}", "40")
    expect(tab_b.locator(f"#mine-status-{size.pk} [data-stale-write]")).to_contain_text("Now: 12")
    expect(tab_b.locator("[data-stale-apply]")).to_be_focused()
    tab_b.click("[data-stale-apply]")
    expect(tab_b.locator(f"#mine-status-{size.pk}")).to_contain_text("Saved: 40")
    assert (ExtractionValue.objects.get(field=size, extractor=extractor).value) == 40
    unforced = [data for data in saves if "force=1" not in data]
    forced = [data for data in saves if "force=1" in data]
    assert (len(unforced), len(forced)) == (1, 1), saves
    tab_b.reload()
    expect(tab_b.locator(f"#mine-{size.pk}")).to_have_value("40")
    expect(tab_b.locator(f"#mine-status-{size.pk}")).to_contain_text("Saved: 40")
