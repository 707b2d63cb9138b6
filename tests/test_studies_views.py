"""Studies page and study page views: page, fragment, anonymous, outsider, viewer, bad input."""

import pytest
from django.urls import reverse

from screening.models import AuditEvent, StudyNote, StudyTag, Tag
from screening.services.notes import note_add, tag_create
from screening.services.reviews import review_create

from .factories import UserFactory
from .screening_helpers import make_studies

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def studies(review):
    made = make_studies(review, 3)
    made[0].title = f"Drift {HOSTILE}"
    made[0].authors = [HOSTILE]
    made[0].save()
    return made


def list_url(review, **query):
    url = reverse("screening:studies_list", args=[review.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def study_url(review, study, name="study_page", *extra):
    return reverse(f"screening:{name}", args=[review.slug, study.pk, *extra])


def test_list_page_escapes_imported_text(client_for, review, studies):
    response = client_for("viewer").get(list_url(review))
    assert response.status_code == 200
    body = response.content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert body.count('data-study="') == 3


def test_list_fragment_for_htmx_is_only_the_results(client_for, review, studies, htmx_headers):
    response = client_for("reviewer").get(list_url(review, q="drift"), **htmx_headers)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="study-filters"' not in body
    assert body.count('data-study="') == 1


def test_anonymous_is_sent_to_login_and_outsider_gets_404(client, client_for, review, studies):
    assert client.get(list_url(review)).status_code == 302
    outsider = client_for("outsider")
    assert outsider.get(list_url(review)).status_code == 404
    assert outsider.get(study_url(review, studies[0])).status_code == 404
    assert (
        outsider.post(study_url(review, studies[0], "study_note_add"), {"text": "x"}).status_code
        == 404
    )


def test_viewer_cannot_write(client_for, review, cast, studies):
    viewer = client_for("viewer")
    tag = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    assert (
        viewer.post(study_url(review, studies[0], "study_note_add"), {"text": "x"}).status_code
        == 403
    )
    assert (
        viewer.post(study_url(review, studies[0], "study_tag_add"), {"tag": tag.pk}).status_code
        == 403
    )
    bulk = reverse("screening:studies_bulk_tag", args=[review.slug])
    assert viewer.post(bulk, {"tag": tag.pk, "study": [studies[0].pk]}).status_code == 403
    tags = reverse("screening:tags_manage", args=[review.slug])
    assert viewer.post(tags, {"name": "x", "colour": "#000000"}).status_code == 403
    assert not StudyNote.objects.exists() and not StudyTag.objects.exists()
    assert Tag.objects.count() == 1


def test_bulk_tagging_is_for_owners_only(client_for, review, cast, studies):
    tag = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    bulk = reverse("screening:studies_bulk_tag", args=[review.slug])
    payload = {"tag": tag.pk, "study": [studies[0].pk, studies[2].pk], "next": list_url(review)}
    assert client_for("reviewer").post(bulk, payload).status_code == 403
    response = client_for("owner").post(bulk, payload)
    assert response.status_code == 302 and response["Location"] == list_url(review)
    assert set(StudyTag.objects.values_list("study_id", flat=True)) == {
        studies[0].pk,
        studies[2].pk,
    }
    page = client_for("reviewer").get(list_url(review, tag=tag.pk)).content.decode()
    assert page.count('data-study="') == 2


def test_bulk_tagging_bad_input_writes_nothing(client_for, review, cast, studies):
    tag = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    bulk = reverse("screening:studies_bulk_tag", args=[review.slug])
    owner = client_for("owner")
    for payload in (
        {"tag": tag.pk},
        {"tag": "x", "study": [studies[0].pk]},
        {"tag": tag.pk, "study": ["1; drop"]},
    ):
        response = owner.post(bulk, payload, follow=True)
        assert "Select at least one study and a tag" in response.content.decode()
    response = owner.post(bulk, {"tag": tag.pk, "study": [studies[0].pk, 10**9]}, follow=True)
    assert "not in this review" in response.content.decode()
    response = owner.post(
        bulk, {"tag": tag.pk, "study": [studies[0].pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == list_url(review)
    assert StudyTag.objects.count() == 1


def test_bad_filters_answer_400_with_a_message(client_for, review, studies):
    response = client_for("reviewer").get(list_url(review, year="abc", mine="maybe"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "These filters cannot be applied" in body and "My verdict" in body


def test_another_reviewers_private_tag_is_not_a_filter(client_for, review, cast, studies):
    mine = tag_create(
        review=review, user=cast["reviewer"], name="to read", colour="#00ff00", private=True
    )
    response = client_for("reviewer2").get(list_url(review, tag=mine.pk))
    assert response.status_code == 400
    assert "to read" not in response.content.decode()


def test_note_added_on_the_study_page_is_stored_and_shown_after_reload(
    client_for, review, cast, studies
):
    reviewer = client_for("reviewer")
    response = reviewer.post(
        study_url(review, studies[0], "study_note_add"), {"text": HOSTILE}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and 'id="study-notes"' in response.content.decode()
    note = StudyNote.objects.get()
    assert (note.author, note.text, note.stage.key) == (cast["reviewer"], HOSTILE, "title")
    page = reviewer.get(study_url(review, studies[0])).content.decode()
    assert f'data-note="{note.pk}"' in page and HOSTILE not in page
    # Blind mode: reviewer2 sees neither the note nor its count.
    other = client_for("reviewer2")
    assert f'data-note="{note.pk}"' not in other.get(study_url(review, studies[0])).content.decode()
    assert AuditEvent.objects.filter(action="note.add", object_id=str(note.pk)).exists()


def test_empty_note_answers_422_and_writes_nothing(client_for, review, studies):
    response = client_for("reviewer").post(
        study_url(review, studies[0], "study_note_add"), {"text": "  "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()
    assert not StudyNote.objects.exists()


def test_stale_note_edit_answers_409_and_keeps_the_stored_text(client_for, review, cast, studies):
    note = note_add(review=review, study=studies[0], author=cast["reviewer"], text="First")
    reviewer = client_for("reviewer")
    url = study_url(review, studies[0], "study_note_edit", note.pk)
    assert reviewer.post(url, {"text": "Second", "version": 1}).status_code == 200
    response = reviewer.post(url, {"text": "From an old tab", "version": 1})
    assert response.status_code == 409
    assert "Second" in response.content.decode()
    note.refresh_from_db()
    assert (note.text, note.version) == ("Second", 2)
    # Someone else's note: refused, unchanged.
    assert client_for("reviewer2").post(url, {"text": "x", "version": 2}).status_code == 403
    note.refresh_from_db()
    assert note.text == "Second"


def test_note_delete_by_author(client_for, review, cast, studies):
    note = note_add(review=review, study=studies[0], author=cast["reviewer"], text="Gone soon")
    url = study_url(review, studies[0], "study_note_delete", note.pk)
    assert client_for("owner").post(url, {"version": 1}).status_code == 403
    assert client_for("reviewer").post(url, {"version": 1}).status_code == 200
    assert not StudyNote.objects.exists()
    assert client_for("reviewer").post(url, {"version": 1}).status_code == 404


def test_study_page_shows_records_provenance_and_tags(client_for, review, cast, studies):
    tag = tag_create(
        review=review, user=cast["reviewer"], name="mine only", colour="#00ff00", private=True
    )
    reviewer = client_for("reviewer")
    response = reviewer.post(
        study_url(review, studies[0], "study_tag_add"), {"tag": tag.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and 'id="study-tags"' in response.content.decode()
    assert StudyTag.objects.filter(study=studies[0], tag=tag, added_by=cast["reviewer"]).exists()
    assert "mine only" in reviewer.get(study_url(review, studies[0])).content.decode()
    other = client_for("reviewer2").get(study_url(review, studies[0])).content.decode()
    assert "mine only" not in other and "Records and provenance" in other
    assert (
        client_for("reviewer2")
        .post(study_url(review, studies[0], "study_tag_remove", tag.pk))
        .status_code
        == 404
    )
    assert (
        client_for("reviewer")
        .post(study_url(review, studies[0], "study_tag_add"), {"tag": "x"})
        .status_code
        == 422
    )
    assert StudyTag.objects.count() == 1


def test_study_of_another_review_is_404(client_for, review, studies):
    other = review_create(slug="other", title="Other", owner=UserFactory(username="someone"))
    foreign = make_studies(other, 1)[0]
    assert client_for("owner").get(study_url(review, foreign)).status_code == 404


def test_wrong_method_is_refused(client_for, review, studies):
    owner = client_for("owner")
    assert owner.post(list_url(review)).status_code == 405
    assert owner.get(study_url(review, studies[0], "study_note_add")).status_code == 405


def test_tags_page_creates_a_review_tag_and_reviewer_gets_a_private_one(client_for, review, cast):
    url = reverse("screening:tags_manage", args=[review.slug])
    assert (
        client_for("owner").post(url, {"name": "seminal", "colour": "#ff0000"}).status_code == 302
    )
    assert (
        client_for("reviewer").post(url, {"name": "later", "colour": "#00ff00"}).status_code == 302
    )
    assert Tag.objects.get(name="seminal").owner is None
    assert Tag.objects.get(name="later").owner == cast["reviewer"]
    response = client_for("owner").post(url, {"name": "seminal", "colour": "red"})
    assert response.status_code == 422
    assert Tag.objects.count() == 2
    assert "later" not in client_for("owner").get(url).content.decode()


def test_tag_delete_by_owner_or_private_owner_only(client_for, review, cast, studies):
    shared = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    mine = tag_create(
        review=review, user=cast["reviewer"], name="later", colour="#00ff00", private=True
    )

    def delete(tag):
        return reverse("screening:tag_delete", args=[review.slug, tag.pk])

    assert client_for("reviewer").post(delete(shared)).status_code == 403
    assert client_for("owner").post(delete(mine)).status_code == 404
    assert client_for("viewer").post(delete(shared)).status_code == 403
    assert Tag.objects.count() == 2
    assert client_for("reviewer").post(delete(mine)).status_code == 302
    assert client_for("owner").post(delete(shared)).status_code == 302
    assert not Tag.objects.exists()
    assert AuditEvent.objects.filter(action="tag.delete").count() == 2
