"""In Chromium: extraction drafts save as you type, and survive leaving the page at once."""

import pytest
from django.urls import reverse

from screening.models import ExtractionValue
from screening.services.extraction import extraction_extractors_assign, extraction_field_create

from .quality_helpers import included_study, seed_protocol


@pytest.mark.browser
def test_drafts_save_as_you_type_and_on_leaving(transactional_db, review, cast, login_page):
    seed_protocol(review)
    study = included_study(review, title="A study of model registries")
    owner = cast["owner"]
    findings = extraction_field_create(
        review=review, actor=owner, label="Key findings", kind="long_text"
    )
    tools = extraction_field_create(
        review=review, actor=owner, label="Tools", kind="multi_choice", choices="MLflow\nTFX\nDVC"
    )
    size = extraction_field_create(review=review, actor=owner, label="Participants", kind="number")
    extraction_extractors_assign(
        review=review, study=study, extractors=[cast["reviewer"]], actor=owner
    )

    def value(field):
        row = ExtractionValue.objects.filter(field=field, extractor=cast["reviewer"]).first()
        return row.value if row else None

    page = login_page("reviewer")
    page.goto(reverse("screening:extraction_study", args=[review.slug, study.pk]))
    page.check("text=MLflow")
    page.wait_for_selector(f"#mine-status-{tools.pk}:has-text('Saved')")
    page.check("text=DVC")
    page.wait_for_function(
        "id => document.querySelector('#mine-status-' + id).textContent.includes('Saved')",
        arg=tools.pk,
    )
    page.wait_for_timeout(300)
    assert value(tools) == ["MLflow", "DVC"]
    page.fill(f"#mine-{size.pk}", "")
    page.type(f"#mine-{size.pk}", "twelve")
    page.wait_for_selector(f"#mine-status-{size.pk}:has-text('is not a number')")
    assert value(size) is None
    # Type and leave at once, before the autosave delay: the draft is sent on the way out.
    page.click(f"#mine-{findings.pk}")
    page.keyboard.type("Registries are rare")
    page.goto(reverse("screening:extraction_home", args=[review.slug]))
    page.wait_for_timeout(1000)
    assert value(findings) == "Registries are rare"
