"""Writes of study notes and tags, each audited.

Permissions the views cannot express by role alone live here: only a note's author edits or
deletes it; the review's tags are managed by owners; a private tag is touched by its owner only.
"""

import re
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from ..models import Membership, Review, Study, StudyNote, StudyTag, Tag
from .audit import audit_event_record
from .stale import version_check

NOTE_MAX_LENGTH = 5000
TAG_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _is_owner(review: Review, user: User) -> bool:
    return Membership.objects.filter(review=review, user=user, role=Membership.Role.OWNER).exists()


def _note_text_clean(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationError("A note needs some text.")
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError(f"A note holds at most {NOTE_MAX_LENGTH} characters.")
    return text


def _note_state(note: StudyNote) -> dict[str, Any]:
    return {"study": note.study_id, "text": note.text, "version": note.version}


def note_add(*, review: Review, study: Study, author: User, text: str) -> StudyNote:
    """Add a note to a study's thread, tied to the stage the study waits at."""
    text = _note_text_clean(text)
    with transaction.atomic():
        note = StudyNote.objects.create(
            study=study, stage=study.current_stage, author=author, text=text
        )
        audit_event_record(
            review=review, actor=author, action="note.add", obj=note, after=_note_state(note)
        )
    return note


def _own_note_locked(*, study: Study, note_id: int, user: User) -> StudyNote:
    note = StudyNote.objects.select_for_update().filter(study=study, pk=note_id).first()
    if note is None:
        raise StudyNote.DoesNotExist("This note no longer exists.")
    if note.author_id != user.pk:
        raise PermissionDenied("Only a note's author can change it.")
    return note


def note_edit(
    *,
    review: Review,
    study: Study,
    note_id: int,
    user: User,
    text: str,
    seen_version: int | None,
    force: bool = False,
) -> StudyNote:
    """Change the text of one's own note; a tab that saw an older version is refused."""
    text = _note_text_clean(text)
    with transaction.atomic():
        note = _own_note_locked(study=study, note_id=note_id, user=user)
        version_check(
            stored_version=note.version,
            seen_version=seen_version,
            force=force,
            what="your note",
            current=f"“{note.text}”",
            by=user.get_username(),
            at=note.updated_at,
        )
        before = _note_state(note)
        forced = force and (seen_version or 0) != note.version
        note.text = text
        note.version += 1
        note.save(update_fields=["text", "version", "updated_at"])
        audit_event_record(
            review=review,
            actor=user,
            action="note.overwrite" if forced else "note.edit",
            obj=note,
            before=before,
            after=_note_state(note),
        )
    return note


def note_delete(
    *, review: Review, study: Study, note_id: int, user: User, seen_version: int | None
) -> None:
    """Delete one's own note, provided it is still the version the user saw."""
    with transaction.atomic():
        note = _own_note_locked(study=study, note_id=note_id, user=user)
        version_check(
            stored_version=note.version,
            seen_version=seen_version,
            force=False,
            what="your note",
            current=f"“{note.text}”",
            by=user.get_username(),
            at=note.updated_at,
        )
        audit_event_record(
            review=review, actor=user, action="note.delete", obj=note, before=_note_state(note)
        )
        note.delete()


def _tag_state(tag: Tag) -> dict[str, Any]:
    return {"name": tag.name, "colour": tag.colour, "private": tag.owner_id is not None}


def tag_create(*, review: Review, user: User, name: str, colour: str, private: bool) -> Tag:
    """Create a review tag (owners) or one of the user's private tags."""
    name = name.strip()
    if not name:
        raise ValidationError("A tag needs a name.")
    if not TAG_COLOUR.fullmatch(colour):
        raise ValidationError("A tag's colour is written #rrggbb.")
    if not private and not _is_owner(review, user):
        raise PermissionDenied("Only an owner defines the review's tags.")
    try:
        with transaction.atomic():
            tag = Tag.objects.create(
                review=review, owner=user if private else None, name=name, colour=colour
            )
            audit_event_record(
                review=review, actor=user, action="tag.create", obj=tag, after=_tag_state(tag)
            )
    except IntegrityError as error:
        raise ValidationError(f"A tag named “{name}” already exists.") from error
    return tag


def _tag_for_change(*, review: Review, tag_id: int, user: User) -> Tag:
    """A tag the user may apply, remove or delete; another reviewer's private tag does not
    exist for them."""
    tag = Tag.objects.filter(review=review, pk=tag_id).first()
    if tag is None or (tag.owner_id is not None and tag.owner_id != user.pk):
        raise Tag.DoesNotExist("No such tag.")
    return tag


def tag_delete(*, review: Review, tag_id: int, user: User) -> None:
    """Delete a tag and its applications (the review's: owners; a private one: its owner)."""
    with transaction.atomic():
        tag = _tag_for_change(review=review, tag_id=tag_id, user=user)
        if tag.owner_id is None and not _is_owner(review, user):
            raise PermissionDenied("Only an owner deletes the review's tags.")
        before = {
            **_tag_state(tag),
            "studies": list(tag.applied.values_list("study_id", flat=True)),
        }
        audit_event_record(review=review, actor=user, action="tag.delete", obj=tag, before=before)
        tag.delete()


def study_tags_apply(*, review: Review, tag_id: int, study_ids: list[int], user: User) -> int:
    """Apply a tag to studies of the review; returns how many were newly tagged."""
    with transaction.atomic():
        tag = _tag_for_change(review=review, tag_id=tag_id, user=user)
        studies = list(
            Study.objects.filter(review=review, pk__in=study_ids).values_list("pk", flat=True)
        )
        if len(studies) != len(set(study_ids)):
            raise ValidationError("Some of the selected studies are not in this review.")
        already = set(
            StudyTag.objects.filter(tag=tag, study_id__in=studies).values_list(
                "study_id", flat=True
            )
        )
        added = [pk for pk in studies if pk not in already]
        StudyTag.objects.bulk_create(
            [StudyTag(study_id=pk, tag=tag, added_by=user) for pk in added], ignore_conflicts=True
        )
        if added:
            audit_event_record(
                review=review,
                actor=user,
                action="tag.apply",
                obj=tag,
                after={"tag": tag.name, "studies": added},
            )
    return len(added)


def study_tag_remove(*, review: Review, tag_id: int, study: Study, user: User) -> None:
    """Take a tag off a study (nothing to do if it is not there)."""
    with transaction.atomic():
        tag = _tag_for_change(review=review, tag_id=tag_id, user=user)
        deleted, _ = StudyTag.objects.filter(tag=tag, study=study).delete()
        if deleted:
            audit_event_record(
                review=review,
                actor=user,
                action="tag.remove",
                obj=tag,
                before={"tag": tag.name, "studies": [study.pk]},
            )
