"""Flash messages belong to the response that caused them (issue 11, bug 12).

A message set while answering an htmx request is shown in that answer (out of band, in the
page's message area), and never again on a later page.
"""

import pytest
from django.urls import reverse

from screening.models import DuplicateCandidate, Record, Study
from screening.services.dedup import candidate_decide, review_deduplicate

from .dedup_helpers import STROKE, TRIAL, add_batch, paper

pytestmark = pytest.mark.django_db


def url(name, review, **kwargs):
    return reverse(f"screening:{name}", kwargs={"slug": review.slug, **kwargs})


@pytest.fixture
def merged_record(review, cast):
    """A record of a study that absorbed a duplicate (what "Split off" acts on)."""
    add_batch(review, "ACM", [paper(TRIAL, doi="10.1000/aaa1"), paper(STROKE)])
    add_batch(review, "IEEE", [paper(TRIAL, doi="10.1000/aaa2"), paper(STROKE)])
    review_deduplicate(review=review)
    pair = DuplicateCandidate.objects.get(review=review)
    candidate_decide(review=review, candidate=pair, user=cast["reviewer"], is_duplicate=True)
    return Record.objects.filter(review=review, title=STROKE).last()


def test_message_of_an_htmx_split_is_in_its_answer_and_never_on_a_later_page(
    review, merged_record, client_for, htmx_headers
):
    client = client_for("owner")
    studies = Study.objects.filter(review=review).count()
    response = client.post(url("dedup_split", review, record_id=merged_record.pk), **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert Study.objects.filter(review=review).count() == studies + 1
    assert '<div id="messages" hx-swap-oob="true"' in html
    assert f"Record {merged_record.pk} is now study" in html
    for later in (url("dashboard", review), url("dedup_merged", review)):
        assert "is now study" not in client.get(later).content.decode()


def test_message_of_a_plain_post_is_shown_on_the_page_it_redirects_to(
    review, merged_record, client_for
):
    client = client_for("owner")
    response = client.post(url("dedup_split", review, record_id=merged_record.pk), follow=True)
    html = response.content.decode()
    assert f"Record {merged_record.pk} is now study" in html
    assert html.count("is now study") == 1
    assert "is now study" not in client.get(url("dashboard", review)).content.decode()


def test_queued_message_is_shown_once_by_the_next_answer_even_an_htmx_fragment(
    review, merged_record, client_for
):
    client = client_for("owner")
    client.post(url("dedup_split", review, record_id=merged_record.pk))  # queued for the next page
    html = client.get(url("dedup_merged", review), HTTP_HX_REQUEST="true").content.decode()
    assert html.count("is now study") == 1
