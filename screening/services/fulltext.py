"""Full texts: private PDF uploads and "not retrievable" notes for the full-text stage."""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction

from ..domain.pdf_match import Candidate, dois_in_pdf, match_pdf
from ..models import FullText, Membership, Review, ScreeningClaim, Stage, Study
from .audit import audit_event_record

PDF_MAGIC = b"%PDF-"
# Some writers put blank lines before the header: look this far for it.
PDF_HEAD_BYTES = 1024
# A zip of full texts: at most this many members are looked at.
ZIP_MAX_MEMBERS = 1000
_CHUNK = 1024 * 1024


def _starts_as_pdf(upload: IO[bytes]) -> bool:
    upload.seek(0)
    head = upload.read(PDF_HEAD_BYTES)
    upload.seek(0)
    return head.lstrip(b"\r\n\t ")[:5].startswith(PDF_MAGIC)


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


def _full_text_store(
    *, review: Review, study: Study, user: User, stored: str, original: str, size: int
) -> FullText:
    """Point the study's full text at the stored file (inside the caller's transaction)."""
    full_text = FullText.objects.filter(study=study).first()
    before = None
    old_file = ""
    if full_text is not None:
        before = {"status": full_text.status, "file": full_text.original_name}
        old_file = full_text.file.name
    else:
        full_text = FullText(study=study)
    full_text.status = FullText.Status.UPLOADED
    full_text.file.name = stored
    full_text.original_name = original
    full_text.reason = ""
    full_text.recorded_by = user
    full_text.save()
    if study.outcome == Study.Outcome.NOT_RETRIEVED:
        study.outcome = Study.Outcome.SCREENING
        study.save(update_fields=["outcome", "updated_at"])
    audit_event_record(
        review=review,
        actor=user,
        action="fulltext.upload",
        obj=full_text,
        before=before,
        after={"study": study.pk, "file": original, "bytes": size},
    )
    if old_file and old_file != stored:
        transaction.on_commit(lambda: default_storage.delete(old_file))
    return full_text


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
    if not _starts_as_pdf(upload):
        raise ValidationError("This is not a PDF file (it does not start with %PDF-).")
    original = (file_name or "full-text.pdf").replace("/", "_").replace("\\", "_")[-200:]
    path = f"fulltexts/{review.pk}/{study.pk}-{uuid.uuid4().hex}.pdf"
    stored = ""
    try:
        with transaction.atomic():
            locked = _lock_full_text_study(review=review, study=study)
            stored = default_storage.save(path, upload)
            full_text = _full_text_store(
                review=review, study=locked, user=user, stored=stored, original=original, size=size
            )
    except BaseException:
        # Nothing half-written: a file stored for a write that did not commit goes again.
        if stored:
            default_storage.delete(stored)
        raise
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


# ----- bulk upload: several PDFs, or zips of them, matched to studies ----------------------


@dataclass(frozen=True)
class BulkRow:
    """One file of a bulk upload and what became of it."""

    file: str
    status: str  # "attached" | "unmatched" | "refused"
    reason: str
    study_id: int | None = None
    study_title: str = ""


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> File[bytes] | None:
    """A member copied in chunks to an anonymous temporary file; None past the size limit."""
    spool = tempfile.TemporaryFile(suffix=".pdf", dir=settings.FILE_UPLOAD_TEMP_DIR)
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                spool.close()
                return None
            spool.write(chunk)
    spool.seek(0)
    pdf = File(spool, name=info.filename)
    pdf.size = size
    return pdf


def _zip_pdfs(name: str, upload: IO[bytes]) -> Iterator[tuple[str, File[bytes] | None, str]]:
    """The PDFs in a zip as (name, file or None, why refused)."""
    limit = settings.FULLTEXT_MAX_BYTES
    try:
        archive = zipfile.ZipFile(upload)
        members = [
            i
            for i in archive.infolist()
            if not i.is_dir() and not i.filename.startswith("__MACOSX/")
        ]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        yield name, None, f"This zip cannot be read: {error}."
        return
    if len(members) > ZIP_MAX_MEMBERS:
        yield name, None, f"The zip holds {len(members)} files; at most {ZIP_MAX_MEMBERS}."
        return
    for info in members:
        label = f"{name}: {info.filename}"
        if not info.filename.lower().endswith(".pdf"):
            yield label, None, "Not a PDF (only .pdf files in a zip are attached)."
            continue
        try:
            pdf = _zip_member(archive, info, limit) if info.file_size <= limit else None
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:
            yield label, None, f"This member cannot be unpacked: {error}."
            continue
        if pdf is None:
            yield label, None, f"Larger than the {limit // 1_048_576} MB limit for one PDF."
            continue
        yield label, pdf, ""


def _expand(
    files: Iterable[tuple[str, IO[bytes]]],
) -> Iterator[tuple[str, File[bytes] | None, str]]:
    for name, upload in files:
        upload.seek(0)
        if upload.read(4) == b"PK\x03\x04":
            yield from _zip_pdfs(name, upload)
        else:
            upload.seek(0)
            yield name, upload if isinstance(upload, File) else File(upload, name=name), ""


def _candidates(review: Review) -> list[Candidate]:
    studies = Study.objects.filter(
        review=review,
        current_stage__kind=Stage.Kind.FULL_TEXT,
        outcome__in=[Study.Outcome.SCREENING, Study.Outcome.NOT_RETRIEVED],
    ).values_list("pk", "doi", "title")
    return [
        Candidate(pk=pk, doi=(doi or "").lower(), title=title or "") for pk, doi, title in studies
    ]


def _bulk_one(
    *,
    review: Review,
    user: User,
    name: str,
    pdf: File[bytes],
    candidates: list[Candidate],
    taken: dict[int, str],
) -> BulkRow:
    if not _starts_as_pdf(pdf):
        return BulkRow(name, "refused", "Not a PDF file (it does not start with %PDF-).")
    match = match_pdf(file_name=name, dois_inside=dois_in_pdf(pdf), candidates=candidates)
    pdf.seek(0)
    if match.study is None:
        return BulkRow(name, "unmatched", match.how)
    study = match.study
    if study.pk in taken:
        why = f"study {study.pk} already took {taken[study.pk]} in this upload ({match.how})"
        return BulkRow(name, "unmatched", why, study.pk, study.title)
    try:
        fulltext_upload(
            review=review,
            study=Study.objects.get(pk=study.pk, review=review),
            user=user,
            file_name=name.rsplit(": ", 1)[-1],
            upload=pdf,
        )
    except ValidationError as error:
        return BulkRow(name, "refused", " ".join(error.messages), study.pk, study.title)
    taken[study.pk] = name
    return BulkRow(name, "attached", f"matched by {match.how}", study.pk, study.title)


def fulltext_bulk_upload(
    *, review: Review, user: User, files: Iterable[tuple[str, IO[bytes]]]
) -> list[BulkRow]:
    """Attach several PDFs (or zips of PDFs) to the studies waiting for their full text.

    Each PDF is matched by DOI (in its file name, then inside the PDF), then by file name (a
    study's number or its title). Each attachment is its own transaction: a PDF is attached
    whole or not at all, and the report says for every file what matched, or why not.
    """
    _check_member_writer(review=review, user=user)
    candidates = _candidates(review)
    taken: dict[int, str] = {}
    rows: list[BulkRow] = []
    for name, pdf, refused in _expand(files):
        if pdf is None:
            rows.append(BulkRow(name, "refused", refused))
            continue
        with pdf:
            rows.append(
                _bulk_one(
                    review=review, user=user, name=name, pdf=pdf, candidates=candidates, taken=taken
                )
            )
    return rows
