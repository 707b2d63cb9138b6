"""In Chromium: an assessor answers all five criteria by keyboard; the owner sees the total."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from screening.models import AuditEvent, QualityAnswer, QualityConsensus
from screening.services.quality import quality_assessors_assign

from .quality_helpers import included_study, seed_protocol


@pytest.mark.browser
def test_assessor_answers_by_keyboard_and_owner_sees_total(
    transactional_db, review, cast, login_page
):
    seed_protocol(review)
    study = included_study(review, title="Operationalizing ML: an interview study")
    quality_assessors_assign(
        review=review, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    criteria = list(review.quality_criteria.all())
    page = login_page("reviewer")
    page.goto(reverse("screening:quality_study", args=[review.slug, study.pk]))
    assert "y Yes" in page.inner_text("#qc-keys").replace("\n", " ")
    # Yes, No, Yes, Yes, No: each key answers the current criterion and moves to the next.
    for criterion, key in zip(criteria, "ynyyn", strict=True):
        page.keyboard.press(key)
        page.wait_for_selector(f"#qc-row-{criterion.pk} [aria-pressed=true][data-qc-key={key}]")
    # The last criterion stays current; k and j move between criteria; e opens the
    # justification, whose text is saved as you type.
    page.keyboard.press("k")
    # A move pressed while the last answer is still saving is applied once it has settled.
    page.wait_for_function(f"document.activeElement.id === 'qc-row-{criteria[3].pk}'")
    page.keyboard.press("j")
    page.wait_for_function(f"document.activeElement.id === 'qc-row-{criteria[4].pk}'")
    page.keyboard.press("e")
    page.keyboard.type("no validation section")
    page.wait_for_selector(f"#qc-saved-{criteria[-1].pk}:has-text('with justification')")
    # Nothing is final (nor totalled) until the assessor marks the study done.
    assert page.inner_text("#quality-total").strip() == "pending"
    page.click("[data-qc-done]")
    expect(page.locator("#sheet-heading")).to_contain_text("revealed")
    assert page.inner_text("#quality-total").split()[0] == "3"
    answers = dict(
        QualityAnswer.objects.filter(study=study).values_list("criterion__code", "answer")
    )
    assert answers == {"QC1": 1, "QC2": 0, "QC3": 1, "QC4": 1, "QC5": 0}
    assert QualityAnswer.objects.get(criterion=criteria[-1]).justification == (
        "no validation section"
    )
    assert QualityConsensus.objects.filter(study=study).count() == 5

    page.context.clear_cookies()
    login_page("owner")
    page.goto(reverse("screening:quality_table", args=[review.slug]))
    row = page.locator("tbody tr", has_text="Operationalizing ML")
    assert row.locator("td").last.inner_text().strip() == "3"
    page.goto(reverse("screening:quality_study", args=[review.slug, study.pk]))
    assert page.inner_text("#quality-total").split()[:3] == ["3", "/", "5"]


@pytest.mark.browser
def test_stale_second_tab_cannot_overwrite_an_answer(transactional_db, review, cast, login_page):
    seed_protocol(review)
    study = included_study(review, title="Two tabs on one study")
    quality_assessors_assign(
        review=review, study=study, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    qc1 = review.quality_criteria.get(code="QC1")
    sheet_url = reverse("screening:quality_study", args=[review.slug, study.pk])
    tab_a = login_page("reviewer")
    tab_a.goto(sheet_url)
    tab_b = tab_a.context.new_page()
    tab_b.goto(sheet_url)
    tab_a.click(f"#qc-row-{qc1.pk} [data-qc-key=y]")
    expect(tab_a.locator(f"#qc-saved-{qc1.pk}")).to_contain_text("Saved: Yes")
    # Tab B still shows QC1 unanswered: its No is refused, with what is stored now.
    tab_b.click(f"#qc-row-{qc1.pk} [data-qc-key=n]")
    stale = tab_b.locator(f"#qc-stale-{qc1.pk} [data-stale-write]")
    expect(stale).to_contain_text("Now: Yes, by reviewer")
    stored = QualityAnswer.objects.get(study=study, criterion=qc1)
    assert (stored.answer, stored.version) == (1, 1)
    # One key applies tab B's answer anyway: the focused "Apply mine anyway" button.
    expect(tab_b.locator("[data-stale-apply]")).to_be_focused()
    tab_b.keyboard.press("Enter")
    expect(tab_b.locator(f"#qc-saved-{qc1.pk}")).to_contain_text("Saved: No")
    stored.refresh_from_db()
    assert (stored.answer, stored.version) == (0, 2)
    assert AuditEvent.objects.filter(action="quality_answer.overwrite").count() == 1
    tab_a.reload()
    expect(tab_a.locator(f"#qc-row-{qc1.pk} [data-qc-key=n]")).to_have_attribute(
        "aria-pressed", "true"
    )
