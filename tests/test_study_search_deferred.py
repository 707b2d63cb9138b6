"""Search documents (PostgreSQL): written by the database when a searched field changes only,
deferred by a large deduplication run and filled by the worker, never lost meanwhile."""

from contextlib import AbstractContextManager
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from screening.models import Study
from screening.selectors import study_list
from screening.services import study_search
from screening.services.dedup import review_deduplicate
from screening.services.locks import advisory_lock
from screening.services.study_search import search_documents_fill, search_sweep

from .dedup_helpers import APHASIA, STROKE, TRIAL, add_batch, paper
from .factories import review_with_cast
from .threads import held_in_another_thread
from .waiting import wait_until

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="search documents are PostgreSQL's"
)

STROKE_DOI = "10.1001/jama.296.17.2095"


def _documents(review) -> dict[int, str | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, search_document::text FROM screening_study WHERE review_id = %s",
            [review.pk],
        )
        return dict(cursor.fetchall())


def _three_papers(review) -> None:
    add_batch(
        review,
        "PubMed",
        [
            paper(TRIAL, abstract="Complement inhibition in children."),
            paper(STROKE, doi=STROKE_DOI, abstract="Thromboprophylaxis after surgery."),
            paper(APHASIA, authors=["Breitenstein, C."]),
        ],
    )


def _deferred_review(settings):
    """A review whose three new studies' documents its dedup run deferred."""
    settings.SEARCH_DEFER_FROM = 3
    review, cast = review_with_cast()
    _three_papers(review)
    review_deduplicate(review=review)
    return review, cast


@pytest.fixture
def deferred(db, settings):
    return _deferred_review(settings)


@pytest.fixture
def sent_tasks(monkeypatch) -> list[dict]:
    """The fills sent to the broker (their kwargs), instead of sending them."""
    sent: list[dict] = []
    monkeypatch.setattr(
        study_search, "task_enqueue", lambda name, *, kwargs: sent.append(kwargs) or True
    )
    return sent


def _search(client, review, text: str) -> str:
    url = reverse("screening:studies_list", kwargs={"slug": review.slug})
    return client.get(url, {"q": text}).content.decode()


def test_a_large_run_defers_the_documents_and_the_page_says_so_until_they_are_filled(
    deferred, client
):
    review, cast = deferred

    assert list(_documents(review).values()) == [None, None, None]
    client.force_login(cast["owner"])
    page = _search(client, review, "thromboprophylaxis")
    assert "3 studies of this review are not searchable yet" in page
    assert "No study matches." in page
    # Meanwhile the DOI still finds its study.
    assert STROKE in _search(client, review, STROKE_DOI)

    assert search_documents_fill(review_id=review.pk) == 3
    documents = _documents(review)
    assert all(documents.values())
    stroke = Study.objects.get(review=review, title=STROKE)
    assert "'thromboprophylaxi':" in str(documents[stroke.pk])
    client.force_login(cast["reviewer"])
    page = _search(client, review, "thromboprophylaxis")
    assert STROKE in page and TRIAL not in page
    assert "not searchable yet" not in page
    assert APHASIA in _search(client, review, "Breitenstein")


def test_a_small_run_writes_the_documents_with_the_studies(db, client, settings):
    settings.SEARCH_DEFER_FROM = 4
    review, cast = review_with_cast()
    _three_papers(review)
    review_deduplicate(review=review)

    assert all(_documents(review).values())
    client.force_login(cast["reviewer"])
    page = _search(client, review, "Breitenstein")
    assert APHASIA in page and "not searchable yet" not in page


def test_an_update_stems_the_document_again_only_when_a_searched_field_changes(db, settings):
    settings.SEARCH_DEFER_FROM = 4
    review, _cast = review_with_cast()
    _three_papers(review)
    review_deduplicate(review=review)
    study = Study.objects.get(review=review, title=STROKE)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE screening_study SET search_document = 'marker'::tsvector WHERE id = %s",
            [study.pk],
        )

    # A full save writes every column, the searched ones unchanged: the document stays.
    study.outcome = Study.Outcome.EXCLUDED
    study.save()
    assert _documents(review)[study.pk] == "'marker'"

    study.abstract = "Anticoagulation after hip replacement."
    study.save(update_fields=["abstract"])
    document = str(_documents(review)[study.pk])
    assert "'anticoagul':" in document and "marker" not in document
    study.refresh_from_db()
    assert study.outcome == Study.Outcome.EXCLUDED


def test_the_fill_skips_a_study_another_transaction_holds_and_takes_it_later(
    transactional_db, settings
):
    review, _cast = _deferred_review(settings)
    held = Study.objects.get(review=review, title=STROKE).pk
    db = connection.settings_dict
    other = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    try:
        # A decision's transaction holds the study's row lock.
        other.execute("SELECT id FROM screening_study WHERE id = %s FOR UPDATE", [held])
        assert search_documents_fill(review_id=review.pk) == 2
        assert _documents(review)[held] is None
        other.rollback()
    finally:
        other.close()
    assert search_documents_fill(review_id=review.pk) == 1
    assert all(_documents(review).values())


def test_one_fill_per_review_at_a_time(transactional_db, settings):
    review, _cast = _deferred_review(settings)

    def first_fill() -> AbstractContextManager[object]:
        return advisory_lock(study_search.ADVISORY_LOCK_SPACE, review.pk)

    with held_in_another_thread(first_fill):
        assert search_documents_fill(review_id=review.pk) == 0
        assert search_sweep() == 0  # nothing sent while a fill runs
    assert search_documents_fill(review_id=review.pk) == 3


def test_a_fill_that_reaches_its_share_sends_itself_again(deferred, sent_tasks):
    review, _cast = deferred
    sent = sent_tasks

    assert search_documents_fill(review_id=review.pk, limit=2) == 2
    first_two = sorted(pk for pk, document in _documents(review).items() if document)
    assert len(first_two) == 2
    # The next task goes on after the last study filled, not from the start again.
    assert sent == [{"review_id": review.pk, "after": first_two[-1]}]
    assert search_documents_fill(**sent[0], limit=2) == 1
    assert len(sent) == 1
    assert all(_documents(review).values())


def test_the_page_counts_the_studies_not_searchable_up_to_a_cap(deferred, client, monkeypatch):
    review, cast = deferred
    monkeypatch.setattr(study_list, "COUNT_CAP", 2)
    client.force_login(cast["viewer"])
    page = _search(client, review, "stroke")
    assert "More than 2 studies of this review are not searchable yet" in page


def test_the_sweep_sends_a_fill_only_for_documents_that_waited(deferred, settings, sent_tasks):
    settings.DEDUP_SWEEP_AFTER_SECONDS = 60
    review, _cast = deferred
    sent = sent_tasks

    assert search_sweep() == 0  # just deferred: the run's own fill is on its way
    Study.objects.filter(review=review).update(created_at=timezone.now() - timedelta(minutes=5))
    assert search_sweep() == 1
    assert sent == [{"review_id": review.pk, "after": 0}]


def test_the_worker_fills_the_documents_a_large_run_deferred(celery_worker, client, settings):
    review, cast = _deferred_review(settings)  # the run sends the fill as it commits

    wait_until(lambda: all(_documents(review).values()))
    client.force_login(cast["reviewer"])
    page = _search(client, review, "thromboprophylaxis")
    assert STROKE in page and "not searchable yet" not in page
