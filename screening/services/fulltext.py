"""Full texts: private PDF uploads and "not retrievable" notes for the full-text stage."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction

from ..models import FullText, Membership, Review, ScreeningClaim, Stage, Study
from .audit import audit_event_record

PDF_MAGIC = b"%PDF-"
# Some writers put blank lines before the header: look this far for it.
PDF_HEAD_BYTES = 1024


def _check_member_writer(*, review: Review, user: User) -> None:
    if not Membership.objects.filter(
        review=review, user=user, role__in=[Membership.Role.OWNER, Membership.Role.REVIEWER]
    ).exists():
        raise PermissionDenied("Only the review's reviewers and owners manage full texts.")


def _lock_full_text_study(*, review: Review, study: Study) -> Study:
    if study.review_id != review.pk:
        raise ValidationError("This study belongs to another review.")
    locked = (
        Study.objects.select_for_update(of=("self",))
        .select_related("current_stage")
        .get(pk=study.pk)
    )
    at_full_text = (
        locked.current_stage is not None and locked.current_stage.kind == Stage.Kind.FULL_TEXT
    )
    if not at_full_text or locked.outcome not in (
        Study.Outcome.SCREENING,
        Study.Outcome.NOT_RETRIEVED,
    ):
        raise ValidationError("Only studies waiting at the full-text stage take a full text.")
    return locked


def fulltext_upload(
    *, review: Review, study: Study, user: User, file_name: str, upload: File[bytes]
) -> FullText:
    """Store a study's PDF privately; a study marked not retrievable returns to screening.

    `upload` is a file (an upload streamed to disk, or a `ContentFile`): it is checked from its
    first bytes and copied to storage in chunks, never read into memory whole.
    """
    _check_member_writer(review=review, user=user)
    limit = settings.FULLTEXT_MAX_BYTES
    size = upload.size or 0
    if not size:
        raise ValidationError("The file is empty.")
    if size > limit:
        raise ValidationError(
            f"The file is {size / 1_048_576:.1f} MB; the limit is {limit / 1_048_576:.0f} MB."
        )
    upload.seek(0)
    head = upload.read(PDF_HEAD_BYTES)
    upload.seek(0)
    if not head.lstrip(b"\r\n\t ")[:5].startswith(PDF_MAGIC):
        raise ValidationError("This is not a PDF file (it does not start with %PDF-).")
    original = (file_name or "full-text.pdf").replace("/", "_").replace("\\", "_")[-200:]
    path = f"fulltexts/{review.pk}/{study.pk}-{uuid.uuid4().hex}.pdf"
    with transaction.atomic():
        locked = _lock_full_text_study(review=review, study=study)
        stored = default_storage.save(path, upload)
        full_text = FullText.objects.filter(study=locked).first()
        before = None
        old_file = ""
        if full_text is not None:
            before = {"status": full_text.status, "file": full_text.original_name}
            old_file = full_text.file.name
        else:
            full_text = FullText(study=locked)
        full_text.status = FullText.Status.UPLOADED
        full_text.file.name = stored
        full_text.original_name = original
        full_text.reason = ""
        full_text.recorded_by = user
        full_text.save()
        if locked.outcome == Study.Outcome.NOT_RETRIEVED:
            locked.outcome = Study.Outcome.SCREENING
            locked.save(update_fields=["outcome", "updated_at"])
        audit_event_record(
            review=review,
            actor=user,
            action="fulltext.upload",
            obj=full_text,
            before=before,
            after={"study": locked.pk, "file": original, "bytes": size},
        )
        if old_file and old_file != stored:
            transaction.on_commit(lambda: default_storage.delete(old_file))
    return full_text


def fulltext_mark_not_retrievable(
    *, review: Review, study: Study, user: User, reason: str
) -> FullText:
    """Record that the full text could not be obtained: PRISMA's "reports not retrieved"."""
    _check_member_writer(review=review, user=user)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why the full text could not be retrieved.")
    with transaction.atomic():
        locked = _lock_full_text_study(review=review, study=study)
        if locked.decisions.filter(stage=locked.current_stage).exists():
            raise ValidationError(
                "Reviewers have already read this full text; resolve it in screening instead."
            )
        full_text, _ = FullText.objects.get_or_create(
            study=locked, defaults={"status": FullText.Status.NOT_RETRIEVABLE}
        )
        before = {"status": full_text.status, "outcome": locked.outcome}
        full_text.status = FullText.Status.NOT_RETRIEVABLE
        full_text.reason = reason
        full_text.recorded_by = user
        full_text.save()
        locked.outcome = Study.Outcome.NOT_RETRIEVED
        locked.save(update_fields=["outcome", "updated_at"])
        ScreeningClaim.objects.filter(study=locked).delete()
        audit_event_record(
            review=review,
            actor=user,
            action="fulltext.not_retrievable",
            obj=full_text,
            before=before,
            after={"study": locked.pk, "reason": reason},
        )
    study.refresh_from_db(fields=["outcome"])
    return full_text
