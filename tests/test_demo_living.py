"""`load_demo` without --bare: the living demo review, built once through the real import,
dedup, screening, quality and extraction services. Every page a newcomer opens shows
something, read back from the database and the pages; a second run changes nothing."""

import io
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
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
    ScreeningClaim,
    Study,
)
from screening.selectors.dashboard import agreement_by_stage, table5_glance
from screening.selectors.extraction import extraction_overview
from screening.selectors.ranking import ranking_progress_get
from screening.selectors.reports import funnel_latest
from screening.selectors.screening import conflicts_pending

LIVING = "mlops-slr"


def _load() -> dict:
    out = io.StringIO()
    # One transaction around the build, as the test client's version of this test had: the
    # live server sees the demo once it is committed, and the build's thousands of decisions
    # are not each committed (and flushed to disk) on their own.
    with transaction.atomic():
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


def _number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def _check_stored_rows(review: Review) -> None:
    # Four libraries' exports, each in its own format, all imported by the real path.
    batches = review.batches.select_related("source")
    assert {b.status for b in batches} == {ImportBatch.Status.DONE}
    assert {(b.source.name, b.format) for b in batches} == {
        ("ACM Digital Library", "bibtex"),
        ("IEEE Xplore", "csv"),
        ("ScienceDirect", "ris"),
        ("Springer Link", "csv"),
    }
    records = Record.objects.filter(review=review).count()
    assert records == 1905  # Table 1's reported hits, imported
    assert review.studies.count() < records  # dedup merged duplicates...
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


def _owner_dashboard(page, review: Review, owner) -> None:
    """The owner lands on the dashboard; after a reload it shows the funnel, the open
    conflicts, kappa, the ranking chart with its stopping estimate and Table 5, each figure as
    the database has it."""
    page.goto(f"/r/{LIVING}/")
    page.wait_for_url(f"**{reverse('screening:dashboard', args=[LIVING])}")
    page.reload()

    def figure(name: str) -> int:
        return _number(page.locator(f'[data-figure="{name}"]').inner_text())

    funnel = funnel_latest(review=review).data
    assert figure("identified") == funnel["database_results"] == 1905
    assert figure("duplicates") == funnel["duplicates"] > 0
    assert figure("screened") == funnel["records_screened"] > 0
    assert figure("excluded") == funnel["records_excluded"] > 0
    assert figure("sought") == funnel["dbr_sought_reports"] > 0
    assert figure("included") == funnel["new_studies"] == 30
    assert figure("awaiting") > 0  # a review in progress
    conflicts = conflicts_pending(review=review).count()
    assert conflicts >= 1 and figure("open-conflicts") == conflicts
    title = agreement_by_stage(review=review)[0]
    assert title["subjects"] and title["fleiss"].kappa is not None
    kappa = page.locator('[data-glance-kappa="title"]').inner_text()
    assert f"κ {title['fleiss'].kappa:.3f}" in kappa
    assert (
        page.locator("#agreement-title [data-fleiss]")
        .inner_text()
        .startswith(f"{title['fleiss'].kappa:.3f}")
    )
    table5 = table5_glance(review=review)
    assert figure("table5-complete") == table5["complete"] == 30
    assert figure("table5-studies") == table5["studies"] == 30
    # The recall chart and the stopping estimate, loaded into the dashboard by htmx.
    chart = page.locator('#main [data-testid="recall-chart"]')
    chart.wait_for()
    entry = review.stages.get(is_entry=True)
    stopping = ranking_progress_get(review=review, stage=entry, user=owner).stopping
    assert stopping.recall_estimate is not None
    shown = float(page.locator('[data-testid="stop-recall"]').inner_text().split()[0])
    assert shown == pytest.approx(stopping.recall_estimate, abs=0.0011)
    # The funnel card leads to the full diagram.
    page.get_by_role("link", name="full PRISMA diagram").click()
    page.locator(".prisma svg").wait_for()


def _reviewer_landing(page, review: Review, reviewer) -> None:
    """A reviewer lands on their queue: a study of the stage with work left for them, the
    same after a reload (the stored claim); blind mode keeps the dashboard's outcomes away."""
    page.goto(f"/r/{LIVING}/")
    page.wait_for_url(f"**{reverse('screening:screening_home', args=[LIVING])}*/")
    panel = page.locator("#screen-panel[data-study]")
    study_id = int(panel.get_attribute("data-study"))
    page.reload()
    assert int(page.locator("#screen-panel").get_attribute("data-study")) == study_id
    claim = ScreeningClaim.objects.get(review=review, reviewer=reviewer)
    study = Study.objects.get(pk=study_id)
    assert claim.study_id == study_id and study.outcome == Study.Outcome.SCREENING
    assert page.url.rstrip("/").endswith(f"/{claim.stage.key}")
    assert not study.decisions.filter(reviewer=reviewer, stage=claim.stage).exists()
    assert page.locator("#study-title").inner_text().strip() == study.title.strip()
    assert review.blind_mode
    page.goto(reverse("screening:dashboard", args=[LIVING]))
    page.locator("[data-blind-hidden]").first.wait_for()
    assert page.locator("#dashboard-glance, [data-figure], #agreement-title").count() == 0
    assert page.locator("#stage-progress th", has_text="Conflicts").count() == 0


@pytest.fixture
def private_queue():
    """The build's committed imports enqueue dedup, funnel and ranking tasks; no worker runs
    here, so they go to a queue of their own that is emptied afterwards instead of piling up
    on the heavy and light queues."""
    from slrweb.celery import app

    name = f"slrweb-living-{uuid.uuid4().hex[:8]}"
    before = app.conf.task_default_queue
    app.conf.task_default_queue = name
    try:
        yield name
    finally:
        app.conf.task_default_queue = before
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(name)
            connection.default_channel.queue_delete(name)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_living_demo_fills_every_page_and_is_idempotent(
    client, browser, live_server, login_page, private_queue
):
    accounts = _load()
    review = Review.objects.get(slug=LIVING)
    before = _state(review)
    _check_stored_rows(review)
    users = {account["username"]: account for account in accounts["users"]}
    people = get_user_model().objects.in_bulk(list(users), field_name="username")

    owner = users["demo-owner"]
    _owner_dashboard(login_page(owner["username"], owner["password"]), review, people["demo-owner"])
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        reviewer = users["demo-reviewer1"]
        page.goto("/accounts/login/")
        page.fill("#id_username", reviewer["username"])
        page.fill("#id_password", reviewer["password"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        _reviewer_landing(page, review, people["demo-reviewer1"])
    finally:
        context.close()

    # The other pages a newcomer opens, as the owner.
    assert client.login(
        request=HttpRequest(), username=owner["username"], password=owner["password"]
    )
    pages = {
        name: client.get(reverse(f"screening:{name}", args=[LIVING])).content.decode()
        for name in ("reports_home", "conflict_list", "quality_table", "extraction_home")
    }
    assert f"{funnel_latest(review=review).data['database_results']:,}" in pages["reports_home"]
    conflicts = conflicts_pending(review=review).count()
    assert (
        f"{conflicts:,} studies where the reviewers' decisions disagree" in pages["conflict_list"]
    )
    assert "30 of 30 studies fully scored" in pages["quality_table"]
    assert "Adoption and Effects of Software Engineering Best Practices" in pages["quality_table"]
    counts = {
        key: n
        for key, _, n in extraction_overview(review=review, user=people["demo-owner"])["counts"]
    }
    assert counts["reconciled"] > 0
    assert (
        f'Reconciled <span class="badge text-bg-light">{counts["reconciled"]}</span>'
        in pages["extraction_home"]
    )

    # A second run leaves everything as it is and prints the same accounts.
    assert _load() == accounts
    assert _state(review) == before


@pytest.mark.django_db
def test_without_living_the_test_environment_gets_the_bare_demo():
    # tests/conftest.py sets SLRWEB_DEMO_BARE=1 so that every other test's load_demo is fast.
    call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
    review = Review.objects.get(slug="mlops-slr")
    assert not review.batches.exists() and not review.studies.exists()
