"""Deduplication views: queue, decide, undo, merged list, unmerge, split; access, methods,
bad input, escaping of hostile imported text."""

import pytest
from django.urls import reverse

from screening.models import DuplicateCandidate, Record, Study, StudyMerge
from screening.services.dedup import candidate_decide, review_deduplicate

from .dedup_helpers import STROKE, TRIAL, add_batch, paper

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script> Eculizumab in atypical haemolytic uraemic syndrome trial'


def url(name, review, **kwargs):
    return reverse(f"screening:{name}", kwargs={"slug": review.slug, **kwargs})


@pytest.fixture
def pair(review):
    add_batch(review, "ACM", [paper(HOSTILE, doi="10.1000/aaa1"), paper(STROKE)])
    add_batch(review, "IEEE", [paper(HOSTILE, doi="10.1000/aaa2"), paper(STROKE)])
    review_deduplicate(review=review)
    return DuplicateCandidate.objects.get(review=review)


def test_queue_page_shows_the_pair_escaped_with_keys_and_overlap(review, pair, client_for):
    response = client_for("viewer").get(url("dedup_queue", review))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html
    assert "<mark>10.1000/aaa1</mark>" in html  # the differing DOI is highlighted
    assert 'id="source-overlap"' in html and "Records per source" in html
    # Viewers see the pair but no decision buttons.
    assert 'data-shortcut="d"' not in html
    html = client_for("reviewer").get(url("dedup_queue", review)).content.decode()
    assert "Duplicate <kbd>D</kbd>" in html and "Not a duplicate <kbd>N</kbd>" in html
    assert "Skip <kbd>S</kbd>" in html and "Undo <kbd>U</kbd>" in html


def test_overlap_matrix_counts_shared_studies(review, pair, client_for):
    response = client_for("owner").get(url("dedup_queue", review))
    overview = response.context["overview"]
    assert [s["name"] for s in overview.sources] == ["ACM", "IEEE"]
    assert [s["records"] for s in overview.sources] == [2, 2]
    assert overview.matrix[0]["cells"] == [None, 1]  # the stroke trial is in both


def test_queue_fragment_and_skip(review, pair, client_for, htmx_headers):
    client = client_for("reviewer")
    response = client.get(url("dedup_queue", review), **htmx_headers)
    assert response.status_code == 200
    assert b'id="dedup-pair"' in response.content and b"<html" not in response.content
    response = client.get(url("dedup_queue", review), {"skip": str(pair.pk)}, **htmx_headers)
    assert b"No pair left to decide" in response.content
    response = client.get(url("dedup_queue", review), {"skip": "1;drop"}, **htmx_headers)
    assert response.status_code == 400 and b"malformed" in response.content


def test_decide_duplicate_by_htmx_swaps_in_the_next_pair(review, pair, client_for, htmx_headers):
    response = client_for("reviewer").post(
        url("dedup_decide", review),
        {"candidate": pair.pk, "verdict": "duplicate"},
        **htmx_headers,
    )
    assert response.status_code == 200
    assert b"No pair left to decide" in response.content
    pair.refresh_from_db()
    assert pair.status == DuplicateCandidate.Status.DUPLICATE
    assert StudyMerge.objects.filter(review=review).count() == 1


def test_decide_without_htmx_redirects(review, pair, client_for):
    response = client_for("reviewer").post(
        url("dedup_decide", review), {"candidate": pair.pk, "verdict": "not_duplicate"}
    )
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.status == DuplicateCandidate.Status.NOT_DUPLICATE


def test_decide_bad_input_saves_nothing(review, pair, client_for, htmx_headers):
    client = client_for("reviewer")
    response = client.post(
        url("dedup_decide", review), {"candidate": pair.pk, "verdict": "maybe"}, **htmx_headers
    )
    assert response.status_code == 400
    assert b"Choose Duplicate or Not duplicate" in response.content
    response = client.post(
        url("dedup_decide", review), {"candidate": 999999, "verdict": "duplicate"}
    )
    assert response.status_code == 404
    pair.refresh_from_db()
    assert pair.status == DuplicateCandidate.Status.PENDING


def test_decide_conflicting_second_verdict_is_refused(review, pair, client_for, htmx_headers):
    client = client_for("reviewer")
    client.post(url("dedup_decide", review), {"candidate": pair.pk, "verdict": "duplicate"})
    response = client.post(
        url("dedup_decide", review),
        {"candidate": pair.pk, "verdict": "not_duplicate"},
        **htmx_headers,
    )
    assert response.status_code == 409 and b"already been decided" in response.content


def test_undo_restores_the_pair(review, pair, client_for, htmx_headers):
    client = client_for("reviewer")
    client.post(url("dedup_decide", review), {"candidate": pair.pk, "verdict": "duplicate"})
    response = client.post(url("dedup_undo", review), **htmx_headers)
    assert response.status_code == 200
    assert response.context["candidate"].pk == pair.pk
    assert Study.objects.filter(review=review).count() == 3
    response = client.post(url("dedup_undo", review), **htmx_headers)
    assert b"no decision to undo" in response.content


def test_merged_page_unmerge_and_split(review, pair, cast, client_for, htmx_headers):
    candidate_decide(review=review, candidate=pair, user=cast["reviewer"], is_duplicate=True)
    merge = StudyMerge.objects.get(review=review)
    client = client_for("owner")
    response = client.get(url("dedup_merged", review))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unmerge" in html and "Split off" in html and "&lt;script&gt;" in html
    assert client.get(url("dedup_merged", review), **htmx_headers).content.startswith(
        b'<div id="dedup-merged">'
    )
    response = client.post(url("dedup_unmerge", review, merge_id=merge.pk), **htmx_headers)
    assert response.status_code == 200
    assert Study.objects.filter(review=review).count() == 3
    response = client.post(url("dedup_unmerge", review, merge_id=merge.pk))
    assert response.status_code == 302  # refused with a message, nothing changed
    stroke = Record.objects.filter(review=review, title=STROKE).last()
    response = client.post(url("dedup_split", review, record_id=stroke.pk))
    assert response.status_code == 302
    assert Study.objects.filter(review=review).count() == 4


@pytest.mark.parametrize(
    "name,kwargs,method",
    [
        ("dedup_queue", {}, "get"),
        ("dedup_merged", {}, "get"),
        ("dedup_decide", {}, "post"),
        ("dedup_undo", {}, "post"),
        ("dedup_status", {}, "get"),
        ("dedup_run", {}, "post"),
        ("dedup_unmerge", {"merge_id": 1}, "post"),
        ("dedup_split", {"record_id": 1}, "post"),
    ],
)
def test_access_rules(review, client, client_for, name, kwargs, method):
    target = url(name, review, **kwargs)
    response = getattr(client, method)(target)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert getattr(client_for("outsider"), method)(target).status_code == 404
    wrong = "post" if method == "get" else "get"
    assert getattr(client_for("owner"), wrong)(target).status_code == 405
    if method == "post":
        assert client_for("viewer").post(target).status_code == 403


def test_no_pairs_and_no_records(review, client_for):
    html = client_for("owner").get(url("dedup_queue", review)).content.decode()
    assert "No pair left to decide" in html and "No records imported yet" in html


def test_status_polls_while_records_wait_and_stops_when_grouped(review, client_for, htmx_headers):
    add_batch(review, "ACM", [paper(TRIAL)])
    client = client_for("viewer")
    html = client.get(url("dedup_queue", review)).content.decode()
    assert "1 imported record waiting for deduplication" in html
    response = client.get(url("dedup_status", review), **htmx_headers)
    assert b'hx-trigger="every 2s"' in response.content
    assert b"Run deduplication now" not in response.content  # viewers cannot run it
    review_deduplicate(review=review)
    response = client.get(url("dedup_status", review), **htmx_headers)
    assert b"every 2s" not in response.content and b"Reload the queue" in response.content


def test_run_enqueues_the_deduplication(review, client_for, htmx_headers):
    from unittest import mock

    add_batch(review, "ACM", [paper(TRIAL)])
    client = client_for("reviewer")
    assert b"Run deduplication now" in client.get(url("dedup_status", review)).content
    with mock.patch("screening.services.queue.current_app.send_task") as send:
        response = client.post(url("dedup_run", review), **htmx_headers)
    assert response.status_code == 200 and b"every 2s" in response.content
    send.assert_called_once_with(
        "screening.review_deduplicate",
        kwargs={"review_id": review.pk},
        countdown=None,
        retry=False,
        ignore_result=True,
    )


def test_merged_page_marks_records_that_joined_a_screened_study(review, cast, client_for):
    from screening.models import Decision, Stage

    add_batch(review, "ACM", [paper(TRIAL, doi="10.1000/t1")])
    review_deduplicate(review=review)
    study = Study.objects.get(review=review)
    Decision.objects.create(
        review=review,
        study=study,
        stage=Stage.objects.get(review=review, key="title"),
        reviewer=cast["reviewer"],
        verdict="include",
    )
    add_batch(review, "IEEE", [paper(TRIAL, doi="10.1000/T1")])
    review_deduplicate(review=review)
    html = client_for("viewer").get(url("dedup_merged", review)).content.decode()
    assert html.count("joined after screening began") == 1


@pytest.fixture
def thirty_merged(review):
    """30 studies of two records each (one per library), numbered titles."""
    titles = [
        f"Registry cohort {n:02d} of eculizumab in atypical uraemic syndrome" for n in range(30)
    ]
    add_batch(review, "ACM", [paper(t, doi=f"10.1000/c{n}") for n, t in enumerate(titles)])
    add_batch(review, "IEEE", [paper(t, doi=f"10.1000/c{n}") for n, t in enumerate(titles)])
    review_deduplicate(review=review)
    return titles


def test_merged_page_pages_and_searches(review, thirty_merged, client_for, htmx_headers):
    client = client_for("viewer")
    first = client.get(url("dedup_merged", review)).content.decode()
    assert "30 studies with several records" in first
    assert first.count("<article") == 25 and "Page 1 of 2" in first
    second = client.get(url("dedup_merged", review) + "?page=2", **htmx_headers)
    assert second.content.decode().count("<article") == 5
    found = client.get(url("dedup_merged", review) + "?q=cohort+07").content.decode()
    assert found.count("<article") == 1 and "cohort 07" in found
    record = Record.objects.filter(review=review, title=thirty_merged[12]).first()
    by_record = client.get(url("dedup_merged", review) + f"?q={record.pk}").content.decode()
    assert by_record.count("<article") == 1 and f"Study {record.study_id}:" in by_record
    assert client.get(url("dedup_merged", review) + "?page=0").status_code == 400


def test_a_number_finds_only_that_study_or_record(review, thirty_merged, client_for):
    """A number is a study's or a record's, even where another study's DOI holds its digits
    (this made the merged-studies search flaky: record numbers vary from run to run)."""
    record = Record.objects.filter(review=review, title=thirty_merged[12]).first()
    other = Record.objects.filter(review=review, title=thirty_merged[3])
    other.update(doi=f"10.1000/x{record.pk}")
    page = client_for("viewer").get(url("dedup_merged", review) + f"?q={record.pk}")
    html = page.content.decode()
    assert html.count("<article") == 1 and f"Study {record.study_id}:" in html
    assert f"Study {other.first().study_id}:" not in html


def test_split_answers_with_the_page_the_reviewer_was_on(
    review, thirty_merged, client_for, htmx_headers
):
    record = Record.objects.filter(review=review, title=thirty_merged[27]).last()
    old_study = record.study_id
    response = client_for("owner").post(
        url("dedup_split", review, record_id=record.pk), {"page": "2"}, **htmx_headers
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<div id="dedup-merged">') and "is now study" in html
    assert "29 studies with several records" in html and "Page 2 of 2" in html
    # Stored: the record has its own study, and another user sees the list without it.
    record.refresh_from_db()
    assert record.study_id != old_study
    assert Record.objects.filter(study_id=old_study).count() == 1
    after = client_for("viewer").get(url("dedup_merged", review) + f"?q={record.pk}")
    assert "No merged study matches" in after.content.decode()


def test_split_with_a_malformed_page_still_splits_and_shows_the_first_page(
    review, thirty_merged, client_for, htmx_headers
):
    record = Record.objects.filter(review=review, title=thirty_merged[3]).last()
    response = client_for("owner").post(
        url("dedup_split", review, record_id=record.pk), {"page": "x"}, **htmx_headers
    )
    assert response.status_code == 200 and "Page 1 of 2" in response.content.decode()
    record.refresh_from_db()
    assert Record.objects.filter(study_id=record.study_id).count() == 1
