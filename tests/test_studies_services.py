"""Studies page reads and note/tag writes: search, filters, blind rules, private tags."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from screening.models import (
    AuditEvent,
    ImportBatch,
    Membership,
    Record,
    Source,
    StudyNote,
    StudyTag,
    Tag,
)
from screening.selectors import study_list
from screening.selectors.study_list import (
    MY_VERDICT_NONE,
    StudyFilters,
    notes_visible,
    studies_listed,
    studies_page,
    tags_visible,
)
from screening.services.backup import review_export, review_import
from screening.services.notes import (
    note_add,
    note_delete,
    note_edit,
    study_tag_remove,
    study_tags_apply,
    tag_create,
    tag_delete,
)
from screening.services.screening import conflict_resolve, decision_record
from screening.services.stale import StaleWrite

from .screening_helpers import make_studies, priority_set, stage

pytestmark = pytest.mark.django_db


def batch_in(review, *, source: str) -> ImportBatch:
    return ImportBatch.objects.create(
        review=review,
        source=Source.objects.get_or_create(review=review, name=source)[0],
        file="imports/x.ris",
        original_name=f"{source}.ris",
        sha256=source.ljust(64, "0"),
        status=ImportBatch.Status.DONE,
    )


def listed(review, user, **filters):
    return [s.pk for s in studies_listed(review=review, user=user, filters=StudyFilters(**filters))]


@pytest.fixture
def corpus(review):
    first, second, third = make_studies(review, 3)
    first.title = "Monitoring machine learning models in production"
    first.abstract = "We study drift detection for deployed models."
    first.authors = ["Sculley, D.", "Holt, Gary"]
    first.doi = "10.1145/3453478"
    first.year = 2019
    first.save()
    second.title = "Continuous delivery pipelines"
    second.abstract = "Deploying software many times a day."
    second.authors = ["Humble, Jez"]
    second.year = 2010
    second.save()
    third.title = "A survey of feature stores"
    third.abstract = "Feature stores monitor training data."
    third.authors = ["Orr, Laurel"]
    third.year = 2022
    third.save()
    return first, second, third


def test_search_matches_title_abstract_authors_and_doi(review, cast, corpus):
    first, second, third = corpus
    owner = cast["owner"]
    assert listed(review, owner, search="drift") == [first.pk]  # abstract
    assert listed(review, owner, search="Humble") == [second.pk]  # authors
    assert listed(review, owner, search="10.1145/3453478") == [first.pk]  # DOI
    assert listed(review, owner, search="https://doi.org/10.1145/3453478") == [first.pk]
    assert listed(review, owner, search="feature stores") == [third.pk]  # title
    assert listed(review, owner, search="nothing-like-this") == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search is PostgreSQL's")
def test_search_document_is_stored_and_follows_edits(review, cast, corpus):
    """The ranked vector is a stored column (a million studies are not re-parsed per search),
    kept by PostgreSQL (the triggers of migration 0023) in step with the study's fields."""
    first, _, _ = corpus

    def document() -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT search_document::text FROM screening_study WHERE id = %s", [first.pk]
            )
            return str(cursor.fetchone()[0])

    assert "'monitor':1A" in document()
    first.title = "Observability of deployed classifiers"
    first.save(update_fields=["title"])
    assert "'classifi'" in document() and "'monitor'" not in document()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search is PostgreSQL's")
def test_search_on_postgresql_is_stemmed_and_ranked(review, cast, corpus):
    first, _, third = corpus
    owner = cast["owner"]
    # "monitored" stems to "monitor": the title match (weight A) ranks above the abstract one.
    assert listed(review, owner, search="monitored") == [first.pk, third.pk]
    assert listed(review, owner, search="monitoring -drift") == [third.pk]


def test_a_large_result_is_counted_up_to_a_cap(review, cast, corpus, monkeypatch):
    """Counting 200,000 matches of a common word scans them all; past the cap the page says
    "more than" instead of an exact figure."""
    owner = cast["owner"]
    filters = StudyFilters()
    monkeypatch.setattr(study_list, "COUNT_CAP", 2)
    page = studies_page(studies_listed(review=review, user=owner, filters=filters), 1)
    assert (page.paginator.count, page.paginator.count_capped) == (2, True)
    monkeypatch.setattr(study_list, "COUNT_CAP", 3)
    page = studies_page(studies_listed(review=review, user=owner, filters=filters), 1)
    assert (page.paginator.count, page.paginator.count_capped) == (3, False)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search is PostgreSQL's")
def test_past_the_cap_matches_are_listed_in_import_order_and_the_page_says_so(
    review, cast, corpus, monkeypatch, client_for
):
    """Ranking scores every match (~2.5 s for a common word among a million studies): past the
    cap the page lists the matches in import order instead, and says so."""
    first, _, third = corpus
    first.abstract += " Feature stores too."
    first.save(update_fields=["abstract"])
    owner = cast["owner"]
    search = StudyFilters(search="stores")

    def page_ids() -> list[int]:
        listed = studies_listed(review=review, user=owner, filters=search)
        page = studies_page(listed, 1, by_relevance=True)
        return [study.pk for study in page.object_list]

    # The title match (weight A) ranks above the abstract one, against import order.
    assert page_ids() == [third.pk, first.pk]
    monkeypatch.setattr(study_list, "COUNT_CAP", 1)
    monkeypatch.setattr(study_list, "PAGE_SIZE", 1)
    assert page_ids() == [first.pk]
    answer = client_for("owner").get(
        reverse("screening:studies_list", args=[review.slug]), {"q": "stores"}
    )
    assert "More than 1 studies, listed in import order" in answer.content.decode()
    # An order the user chose is kept whatever the count.
    answer = client_for("owner").get(
        reverse("screening:studies_list", args=[review.slug]), {"q": "stores", "sort": "title"}
    )
    assert "listed in import order" not in answer.content.decode()


def test_filters_by_stage_status_year_source_and_tag(review, cast, corpus):
    first, second, third = corpus
    owner = cast["owner"]
    second.current_stage = stage(review, "abstract")
    second.save()
    third.outcome = "excluded"
    third.save()
    assert listed(review, owner, stage=stage(review, "abstract")) == [second.pk]
    assert listed(review, owner, status="excluded") == [third.pk]
    assert listed(review, owner, year=2019) == [first.pk]
    assert listed(review, owner, sort="year_desc") == [third.pk, first.pk, second.pk]
    batch = batch_in(review, source="IEEE")
    Record.objects.create(review=review, batch=batch, study=second, position=1, title="x")
    assert listed(review, owner, source_id=batch.source_id) == [second.pk]
    tag = tag_create(review=review, user=owner, name="seminal", colour="#ff0000", private=False)
    study_tags_apply(review=review, tag_id=tag.pk, study_ids=[first.pk, third.pk], user=owner)
    assert listed(review, owner, tag=tag) == [first.pk, third.pk]


def test_predicted_relevance_sort_uses_the_priority_in_the_studys_current_stage(
    review, cast, corpus
):
    first, second, third = corpus
    fourth = make_studies(review, 1)[0]
    priority_set(first, 0.2)
    priority_set(third, 0.9)
    # Ranked by the title stage's ranking, then routed on: unranked in its current stage.
    priority_set(second, 0.95)
    second.current_stage = stage(review, "abstract")
    second.save()
    assert listed(review, cast["owner"], sort="priority") == [
        third.pk,
        first.pk,
        second.pk,
        fourth.pk,
    ]


def test_my_verdict_filter_sees_only_the_callers_decisions(review, cast, corpus):
    first, second, _ = corpus
    title = stage(review, "title")
    decision_record(
        review=review, study=first, stage=title, reviewer=cast["reviewer"], verdict="include"
    )
    decision_record(
        review=review, study=second, stage=title, reviewer=cast["reviewer2"], verdict="include"
    )
    assert listed(review, cast["reviewer"], my_verdict="include") == [first.pk]
    # reviewer2's include on `second` never shows in the reviewer's filter, either way.
    assert second.pk not in listed(review, cast["reviewer"], my_verdict="include")
    assert second.pk in listed(review, cast["reviewer"], my_verdict=MY_VERDICT_NONE)
    assert first.pk not in listed(review, cast["reviewer"], my_verdict=MY_VERDICT_NONE)


def test_blind_note_hidden_from_other_reviewer_until_resolved(review, cast, corpus):
    first = corpus[0]
    title = stage(review, "title")
    assert review.blind_mode
    note = note_add(review=review, study=first, author=cast["reviewer"], text="Looks relevant")
    assert note.stage == title

    def sees(username):
        return list(notes_visible(review=review, user=cast[username]).filter(study=first))

    assert sees("reviewer") == [note]
    assert sees("reviewer2") == []
    assert sees("viewer") == []
    assert sees("owner") == []  # the owner adjudicates, but the decisions are not in yet
    decision_record(
        review=review, study=first, stage=title, reviewer=cast["reviewer"], verdict="include"
    )
    decision_record(
        review=review, study=first, stage=title, reviewer=cast["reviewer2"], verdict="exclude"
    )
    assert sees("owner") == [note]  # a conflict: the adjudicator reads everything
    assert sees("reviewer2") == []
    conflict_resolve(
        review=review,
        study=first,
        stage=title,
        adjudicator=cast["owner"],
        verdict="include",
        note="Relevant",
    )
    assert sees("reviewer2") == [note]
    assert sees("viewer") == [note]


def test_notes_all_visible_when_not_blind(review, cast, corpus):
    review.blind_mode = False
    review.save()
    note = note_add(review=review, study=corpus[0], author=cast["reviewer"], text="Seen by all")
    assert list(notes_visible(review=review, user=cast["reviewer2"])) == [note]


def test_note_edit_is_refused_when_stale_and_audited(review, cast, corpus):
    note = note_add(review=review, study=corpus[0], author=cast["reviewer"], text="First")
    note_edit(
        review=review,
        study=corpus[0],
        note_id=note.pk,
        user=cast["reviewer"],
        text="Second",
        seen_version=1,
    )
    with pytest.raises(StaleWrite):
        note_edit(
            review=review,
            study=corpus[0],
            note_id=note.pk,
            user=cast["reviewer"],
            text="Old tab",
            seen_version=1,
        )
    note.refresh_from_db()
    assert (note.text, note.version) == ("Second", 2)
    note_edit(
        review=review,
        study=corpus[0],
        note_id=note.pk,
        user=cast["reviewer"],
        text="Forced",
        seen_version=1,
        force=True,
    )
    note.refresh_from_db()
    assert (note.text, note.version) == ("Forced", 3)
    overwrite = AuditEvent.objects.get(action="note.overwrite")
    assert overwrite.before == {"study": corpus[0].pk, "text": "Second", "version": 2}
    assert list(
        AuditEvent.objects.filter(object_type="studynote")
        .values_list("action", flat=True)
        .order_by("id")
    ) == ["note.add", "note.edit", "note.overwrite"]


def test_only_the_author_edits_or_deletes_a_note(review, cast, corpus):
    note = note_add(review=review, study=corpus[0], author=cast["reviewer"], text="Mine")
    with pytest.raises(PermissionDenied):
        note_edit(
            review=review,
            study=corpus[0],
            note_id=note.pk,
            user=cast["owner"],
            text="x",
            seen_version=1,
        )
    with pytest.raises(PermissionDenied):
        note_delete(
            review=review, study=corpus[0], note_id=note.pk, user=cast["reviewer2"], seen_version=1
        )
    with pytest.raises(StaleWrite):
        note_delete(
            review=review, study=corpus[0], note_id=note.pk, user=cast["reviewer"], seen_version=0
        )
    assert StudyNote.objects.filter(pk=note.pk).exists()
    note_delete(
        review=review, study=corpus[0], note_id=note.pk, user=cast["reviewer"], seen_version=1
    )
    assert not StudyNote.objects.filter(pk=note.pk).exists()
    assert AuditEvent.objects.get(action="note.delete").before["text"] == "Mine"


def test_empty_note_is_refused(review, cast, corpus):
    with pytest.raises(ValidationError):
        note_add(review=review, study=corpus[0], author=cast["reviewer"], text="   ")
    assert not StudyNote.objects.exists()


def test_private_tags_are_invisible_to_others(review, cast, corpus):
    first = corpus[0]
    mine = tag_create(
        review=review, user=cast["reviewer"], name="to read", colour="#00ff00", private=True
    )
    shared = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    study_tags_apply(review=review, tag_id=mine.pk, study_ids=[first.pk], user=cast["reviewer"])
    assert set(tags_visible(review=review, user=cast["reviewer"])) == {mine, shared}
    assert list(tags_visible(review=review, user=cast["reviewer2"])) == [shared]
    # Another reviewer cannot use, remove or delete it: for them it does not exist.
    with pytest.raises(Tag.DoesNotExist):
        study_tags_apply(
            review=review, tag_id=mine.pk, study_ids=[first.pk], user=cast["reviewer2"]
        )
    with pytest.raises(Tag.DoesNotExist):
        study_tag_remove(review=review, tag_id=mine.pk, study=first, user=cast["owner"])
    with pytest.raises(Tag.DoesNotExist):
        tag_delete(review=review, tag_id=mine.pk, user=cast["owner"])
    assert StudyTag.objects.filter(tag=mine, study=first).exists()
    # Nor can they find studies by it.
    assert listed(review, cast["reviewer"], tag=mine) == [first.pk]


def test_review_tags_are_managed_by_owners(review, cast):
    with pytest.raises(PermissionDenied):
        tag_create(
            review=review, user=cast["reviewer"], name="seminal", colour="#ff0000", private=False
        )
    tag = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    with pytest.raises(ValidationError):
        tag_create(
            review=review, user=cast["owner"], name="seminal", colour="#00ff00", private=False
        )
    with pytest.raises(ValidationError):
        tag_create(review=review, user=cast["owner"], name="bad", colour="red", private=False)
    with pytest.raises(PermissionDenied):
        tag_delete(review=review, tag_id=tag.pk, user=cast["reviewer"])
    assert Tag.objects.filter(pk=tag.pk).exists()
    # The same name as someone's private tag is fine.
    tag_create(review=review, user=cast["reviewer"], name="seminal", colour="#00ff00", private=True)
    assert Tag.objects.filter(review=review, name="seminal").count() == 2
    assert Membership.objects.get(review=review, user=cast["reviewer"]).role == "reviewer"


def test_bulk_tagging_refuses_foreign_studies_and_writes_nothing(review, cast, corpus):
    tag = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    with pytest.raises(ValidationError):
        study_tags_apply(
            review=review, tag_id=tag.pk, study_ids=[corpus[0].pk, 999999], user=cast["owner"]
        )
    assert not StudyTag.objects.exists()
    assert (
        study_tags_apply(
            review=review, tag_id=tag.pk, study_ids=[s.pk for s in corpus], user=cast["owner"]
        )
        == 3
    )
    assert (
        study_tags_apply(review=review, tag_id=tag.pk, study_ids=[corpus[0].pk], user=cast["owner"])
        == 0
    )
    assert AuditEvent.objects.get(action="tag.apply").after["studies"] == [s.pk for s in corpus]


def test_backup_carries_notes_and_tags_with_their_authors(review, cast, corpus):
    first = corpus[0]
    note_add(review=review, study=first, author=cast["reviewer"], text="Check the replication")
    shared = tag_create(
        review=review, user=cast["owner"], name="seminal", colour="#ff0000", private=False
    )
    mine = tag_create(
        review=review, user=cast["reviewer"], name="to read", colour="#00ff00", private=True
    )
    study_tags_apply(review=review, tag_id=shared.pk, study_ids=[first.pk], user=cast["owner"])
    study_tags_apply(review=review, tag_id=mine.pk, study_ids=[first.pk], user=cast["reviewer"])
    restored = review_import(data=review_export(review=review), slug="copy")
    copied = restored.studies.get(title=first.title)
    note = StudyNote.objects.get(study=copied)
    assert (note.author, note.text, note.stage.review) == (
        cast["reviewer"],
        "Check the replication",
        restored,
    )
    assert {
        (t.tag.name, t.tag.owner, t.tag.colour) for t in StudyTag.objects.filter(study=copied)
    } == {
        ("seminal", None, "#ff0000"),
        ("to read", cast["reviewer"], "#00ff00"),
    }
