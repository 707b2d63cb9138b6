"""`load_demo` without --bare: the living demo review, built once through the real import,
dedup, screening, quality and extraction services. Every page a newcomer opens shows
something, read back from the database and the pages; a second run changes nothing."""

import io
import json

import pytest
from django.core.management import call_command
from django.http import HttpRequest
from django.urls import reverse

from screening.demo_data import included_studies
from screening.models import (
    AuditEvent,
    Decision,
    DuplicateCandidate,
    ExtractionValue,
    ImportBatch,
    QualityConsensus,
    RankingRun,
    Record,
    Review,
    Study,
)

pytestmark = pytest.mark.django_db


def _load() -> dict:
    out = io.StringIO()
    call_command("load_demo", "--living", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def _state(review: Review) -> dict:
    return {
        "batches": review.batches.count(),
        "records": Record.objects.filter(review=review).count(),
        "studies": review.studies.count(),
        "decisions": Decision.objects.filter(study__review=review).count(),
        "audit": AuditEvent.objects.filter(review=review).count(),
    }


def test_living_demo_fills_every_page_and_is_idempotent(client):
    accounts = _load()
    review = Review.objects.get(slug="mlops-slr")
    before = _state(review)

    # Four libraries' exports, each in its own format, all imported by the real path.
    batches = review.batches.select_related("source")
    assert {b.status for b in batches} == {ImportBatch.Status.DONE}
    assert {(b.source.name, b.format) for b in batches} == {
        ("ACM Digital Library", "bibtex"),
        ("IEEE Xplore", "csv"),
        ("ScienceDirect", "ris"),
        ("Springer Link", "csv"),
    }
    assert before["records"] == 1905  # Table 1's reported hits, imported
    assert before["studies"] < before["records"]  # dedup merged duplicates...
    assert DuplicateCandidate.objects.filter(
        review=review, status="pending"
    ).exists()  # ...some for a human
    # The seed's 30 included studies with their real metadata, included and assessed.
    dois = {s["doi"].lower() for s in included_studies()}
    included = review.studies.filter(outcome=Study.Outcome.INCLUDED)
    assert {s.doi.lower() for s in included} == dois
    serban = included.get(doi__iexact="10.1145/3382494.3410681")
    title = "Adoption and Effects of Software Engineering Best Practices in Machine Learning"
    assert serban.title.lower() == title.lower() and serban.year == 2020
    acm = serban.records.get(batch__source__name="ACM Digital Library")
    assert (acm.title, acm.doi, acm.authors[0]) == (title, "10.1145/3382494.3410681", "Serban, A.")
    assert QualityConsensus.objects.filter(study__review=review).count() == 30 * 5
    assert ExtractionValue.objects.filter(study__review=review).exists()
    assert RankingRun.objects.filter(review=review, status="done").exists()

    owner = accounts["users"][0]
    assert client.login(
        request=HttpRequest(), username=owner["username"], password=owner["password"]
    )
    pages = {
        name: client.get(reverse(f"screening:{name}", args=["mlops-slr"])).content.decode()
        for name in (
            "dashboard",
            "reports_home",
            "conflict_list",
            "ranking_progress",
            "quality_table",
            "extraction_home",
        )
    }
    # The dashboard: work per stage and the reviewers' agreement (kappa).
    assert "Progress per stage" in pages["dashboard"]
    assert 'id="agreement-title"' in pages["dashboard"]
    assert "Cohen" in pages["dashboard"] and "almost perfect" in pages["dashboard"]
    # The funnel: identified (Table 1) and a stored snapshot with screened records.
    snapshot = review.funnel_snapshots.order_by("-id").first()
    assert snapshot is not None and snapshot.data["records_screened"] > 0
    assert "1,905" in pages["reports_home"]
    # Open conflicts, with both reviewers' verdicts.
    assert "6 studies where the reviewers' decisions disagree" in pages["conflict_list"]
    # The recall chart and the stopping estimate.
    assert 'data-testid="recall-chart"' in pages["ranking_progress"]
    assert "Estimated recall" in pages["ranking_progress"]
    # Table 5, every included study scored as the paper did.
    assert "30 of 30 studies fully scored" in pages["quality_table"]
    assert "Adoption and Effects of Software Engineering Best Practices" in pages["quality_table"]
    # Extraction: reconciled values.
    assert 'Reconciled <span class="badge text-bg-light">10</span>' in pages["extraction_home"]

    # A second run leaves everything as it is and prints the same accounts.
    assert _load() == accounts
    assert _state(review) == before


def test_without_living_the_test_environment_gets_the_bare_demo():
    # tests/conftest.py sets SLRWEB_DEMO_BARE=1 so that every other test's load_demo is fast.
    call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
    review = Review.objects.get(slug="mlops-slr")
    assert not review.batches.exists() and not review.studies.exists()
