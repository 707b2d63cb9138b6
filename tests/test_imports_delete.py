"""Deleting an import that holds records: what goes, what stays, who may, a stale or second
delete refused, against the real database (services, then the pages)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from screening.models import AuditEvent, Decision, ImportBatch, Record, Study, StudyNote
from screening.selectors.imports import batch_delete_impact
from screening.services import dedup, imports, notes, screening
from screening.services.dedup import TASK_NAME as DEDUP_TASK
from screening.services.funnel import TASK_NAME as FUNNEL_TASK
from screening.services.stale import StaleWrite

from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    imported,
    media_root_fixture,
    sent_tasks_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_imports(review, cast, media_root, sent_tasks):
    """ACM: shared paper + two own papers; IEEE: the shared paper (its own title) + one own.
    Both reviewers excluded one ACM-only study, and it has a note; the shared study has a
    decision too."""
    acm = imported(
        review,
        cast["owner"],
        "ACM",
        [
            ("Continuous training in production", "10.5555/shared"),
            ("Feature stores at scale", "10.5555/acm-2"),
            ("Model registries compared", "10.5555/acm-3"),
        ],
    )
    ieee = imported(
        review,
        cast["owner"],
        "IEEE",
        [
            ("Continuous Training in Production Systems", "10.5555/shared"),
            ("Drift", "10.5555/ieee-2"),
        ],
    )
    dedup.review_deduplicate(review=review)
    title = review.stages.get(key="title")
    by_doi = {s.doi: s for s in review.studies.all()}
    for reviewer in (cast["reviewer"], cast["reviewer2"]):
        screening.decision_record(
            review=review,
            study=by_doi["10.5555/acm-2"],
            stage=title,
            reviewer=reviewer,
            verdict="exclude",
        )
    screening.decision_record(
        review=review,
        study=by_doi["10.5555/shared"],
        stage=title,
        reviewer=cast["reviewer"],
        verdict="include",
    )
    notes.note_add(
        review=review, study=by_doi["10.5555/acm-2"], author=cast["reviewer"], text="Off topic."
    )
    return acm, ieee, by_doi


def test_the_confirmation_figures_say_what_goes(two_imports):
    acm, _ieee, _ = two_imports
    impact = batch_delete_impact(batch=acm)
    assert (impact.records, impact.studies_removed, impact.studies_kept) == (3, 2, 1)
    assert (impact.decisions, impact.resolutions, impact.notes) == (2, 1, 1)
    assert imports.impact_summary(impact) == (
        "3 records, 2 studies that no other import holds, 2 decisions, 1 stage outcome, 1 note"
    )


def test_deleting_a_done_import_takes_its_own_studies_and_keeps_shared_ones(
    two_imports, review, cast, sent_tasks, django_capture_on_commit_callbacks
):
    acm, ieee, by_doi = two_imports
    impact = batch_delete_impact(batch=acm)
    with django_capture_on_commit_callbacks(execute=True):
        imports.batch_delete(batch=acm, user=cast["owner"], seen_version=impact.version)

    assert not ImportBatch.objects.filter(pk=acm.pk).exists()
    assert not Record.objects.filter(batch_id=acm.pk).exists()
    # The ACM-only studies went with their decisions and note; the shared one stayed with its
    # decision, now shown from the IEEE record.
    assert set(review.studies.values_list("doi", flat=True)) == {"10.5555/shared", "10.5555/ieee-2"}
    assert not Decision.objects.filter(study_id=by_doi["10.5555/acm-2"].pk).exists()
    assert not StudyNote.objects.filter(study__review=review).exists()
    shared = Study.objects.get(pk=by_doi["10.5555/shared"].pk)
    assert shared.decisions.count() == 1
    assert shared.title == "Continuous Training in Production Systems"
    assert list(shared.records.values_list("batch_id", flat=True)) == [ieee.pk]
    event = AuditEvent.objects.get(action="import.delete", object_id=str(acm.pk))
    assert event.actor == cast["owner"]
    assert event.before["removed"]["decisions"] == 2 and event.before["file"] == "ACM.ris"
    # Deduplication and the funnel are recomputed.
    assert {DEDUP_TASK, FUNNEL_TASK} <= set(sent_tasks.names())


def test_a_stale_confirmation_and_a_second_delete_are_refused(two_imports, review, cast):
    acm, _ieee, by_doi = two_imports
    seen = batch_delete_impact(batch=acm).version
    # Another reviewer decides on an ACM-only study after the confirmation was shown.
    screening.decision_record(
        review=review,
        study=by_doi["10.5555/acm-3"],
        stage=review.stages.get(key="title"),
        reviewer=cast["reviewer"],
        verdict="include",
    )
    with pytest.raises(StaleWrite, match="3 decisions"):
        imports.batch_delete(batch=acm, user=cast["owner"], seen_version=seen)
    assert Record.objects.filter(batch=acm).count() == 3
    # No confirmation at all is refused the same way.
    with pytest.raises(StaleWrite):
        imports.batch_delete(batch=acm, user=cast["owner"])
    fresh = batch_delete_impact(batch=acm).version
    imports.batch_delete(batch=acm, user=cast["owner"], seen_version=fresh)
    with pytest.raises(ValidationError, match="already deleted"):
        imports.batch_delete(batch=acm, user=cast["owner"], seen_version=fresh)


def test_only_an_owner_deletes_an_import_that_holds_records(two_imports, cast):
    acm, _ieee, _ = two_imports
    version = batch_delete_impact(batch=acm).version
    cast["reviewer"].memberships.update(can_import=True)
    with pytest.raises(PermissionDenied):
        imports.batch_delete(batch=acm, user=cast["reviewer"], seen_version=version)
    assert Record.objects.filter(batch=acm).count() == 3


def test_the_pages_confirm_then_delete(two_imports, review, client_for):
    acm, _ieee, _ = two_imports
    url = reverse("screening:import_delete", kwargs={"slug": review.slug, "batch_id": acm.pk})
    client = client_for("owner")
    detail_url = reverse("screening:import_detail", args=[review.slug, acm.pk])
    assert url in client.get(detail_url).content.decode()  # the owner's way there
    page = client.get(url).content.decode()
    assert '<td class="text-end" data-count="decisions">2</td>' in page
    assert '<td class="text-end" data-count="studies_removed">2</td>' in page
    version = batch_delete_impact(batch=acm).version
    assert f'name="version" value="{version}"' in page
    assert client.post(url).status_code == 409  # no confirmation: the figures are shown again
    response = client.post(url, {"version": version})
    assert response.status_code == 302
    listing = client.get(response["Location"]).content.decode()
    assert "The import of ACM.ris was deleted: 3 records, 2 studies" in listing
    assert detail_url not in listing and client.get(detail_url).status_code == 404
    assert client_for("reviewer").get(url).status_code == 404
