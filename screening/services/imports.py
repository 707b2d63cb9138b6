"""Importing export files: validate and store (batch_create), then parse and insert all or
nothing (batch_run, what the Celery task and `manage.py import_records` call).

Atomicity and progress: the records of a batch are inserted in ONE transaction (bulk inserts in
chunks), so a parse error, a database error or a killed worker leaves no partial records.
Progress must nevertheless be visible while that transaction is open, so it is written through
a second, autocommit database connection that only touches the batch row's status/progress
columns (the inserts hold a FOR KEY SHARE lock on that row, which a non-key UPDATE does not
wait for). A PostgreSQL advisory lock, taken inside the import transaction, makes a task that
runs twice (Celery redelivery after a worker was killed) import the file once: the second run
either waits for nothing (the lock died with the killed worker's connection) or sees "done".
On SQLite (embedded) there is no second writer: the batch is marked running before the import
transaction, and the worker keeps a heartbeat file fresh instead (HeartbeatFile).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..domain import parsers
from ..domain.parsers import EntryProblem, ParsedRecord, ParseError, UnknownColumns
from ..models import FullText, ImportBatch, Membership, Record, Review, SearchRun, Source, Study
from ..selectors.imports import (
    RUN_CREATED_BY_IMPORT,
    DeleteImpact,
    batch_delete_impact,
    batch_studies_orphaned,
)
from .audit import audit_event_record

# Dedup's own pieces: a study's display fields from its records, and its per-review turn (a
# delete must not remove records a running deduplication is grouping).
from .dedup import RECORD_FIELDS, _display_fields, dedup_schedule
from .dedup import _one_run_at_a_time as _dedup_turn
from .funnel import funnel_schedule
from .queue import task_enqueue
from .stale import version_check

if TYPE_CHECKING:
    from psycopg import Copy

logger = logging.getLogger(__name__)

IMPORT_CHUNK = 2000
PROGRESS_EVERY_SECONDS = 0.5
MAX_LISTED_PROBLEMS = 200
IMPORT_TASK = "screening.batch_import"
# The upload forms' format choice: detection, or one of the formats the parsers read.
FORMAT_CHOICES: list[tuple[str, str]] = [("", "Detect from the content"), *parsers.FORMATS.items()]
_BATCH_TABLE = ImportBatch._meta.db_table
# Advisory lock namespace (first key) for "this batch is being imported".
_LOCK_NAMESPACE = 0x51A1

_HASH_CHUNK = 1 << 20
# Record columns filled from the parsed entry as they are (the parsers cut each to its limit).
_TEXT_COLUMNS = (
    "title",
    "abstract",
    "venue",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "url",
    "publication_type",
    "language",
    "source_record_id",
)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
_EXTENSIONS = {
    "ris": ".ris",
    "bibtex": ".bib",
    "csv": ".csv",
    "tsv": ".tsv",
    "xlsx": ".xlsx",
    "medline": ".nbib",
    "wos": ".txt",
    "endnote_xml": ".xml",
    "endnote_tagged": ".txt",
    "proquest": ".txt",
}
MAPPABLE_FIELDS = (
    ("title", "Title"),
    ("abstract", "Abstract"),
    ("authors", "Authors"),
    ("year", "Year"),
    ("venue", "Journal / venue"),
    ("volume", "Volume"),
    ("issue", "Issue"),
    ("pages", "Pages"),
    ("doi", "DOI"),
    ("pmid", "PubMed ID"),
    ("url", "URL"),
    ("keywords", "Keywords"),
    ("publication_type", "Publication type"),
    ("language", "Language"),
    ("source_record_id", "Record ID in the source"),
)


# --- validation and storage -------------------------------------------------------------


def file_name_check(file_name: str) -> str:
    """The name to show for an upload, or ValidationError if it tries path tricks."""
    name = unicodedata.normalize("NFC", file_name or "").strip()
    if not name:
        raise ValidationError("The file has no name.")
    if (
        "/" in name
        or "\\" in name
        or name in {".", ".."}
        or name.startswith(".")
        or ".." in name
        or _UNSAFE_NAME.search(name)
        or ":" in name
    ):
        raise ValidationError(
            f"The file name {name[:80]!r} contains path or control characters; rename the "
            "file (letters, digits, spaces, '-', '_' and one extension) and upload it again."
        )
    if len(name) > 200:
        raise ValidationError("The file name is longer than 200 characters; shorten it.")
    return name


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def _stream(data: bytes | BinaryIO) -> BinaryIO:
    """A seekable binary stream over an upload (a file on disk) or bytes (tests, scripts)."""
    return io.BytesIO(data) if isinstance(data, bytes | bytearray) else data


@runtime_checkable
class _HashedUpload(Protocol):
    """An upload that the streaming upload handler hashed while writing it to disk."""

    sha256: str
    size: int


def _digest_and_size(stream: BinaryIO) -> tuple[str, int]:
    """sha256 and size of the stream, read in chunks; an upload that the streaming upload
    handler already hashed while writing it to disk is not read again."""
    if isinstance(stream, _HashedUpload) and stream.sha256:
        return stream.sha256, stream.size
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def file_check(*, stream: BinaryIO, size: int, file_name: str, format: str | None = None) -> str:
    """The export's format key, or ValidationError saying why the file cannot be imported.

    Reads only the head of the file (and, for a workbook, its ZIP directory).
    """
    limit = settings.IMPORT_MAX_BYTES
    if size > limit:
        raise ValidationError(
            f"{file_name} is {_human_size(size)}; the import limit is {_human_size(limit)}."
        )
    stream.seek(0)
    head = stream.read(parsers.HEAD_BYTES)
    stream.seek(0)
    if not head or (size <= len(head) and head.isspace()):
        raise ValidationError(f"{file_name} is empty.")
    kind = parsers.binary_kind(head)
    if kind:
        raise ValidationError(
            f"{file_name} is {kind}, not a bibliographic export. Export the search results "
            "as RIS, BibTeX, CSV/TSV/XLSX, MEDLINE (.nbib), Web of Science plain text or "
            "EndNote XML."
        )
    if format:
        if format not in parsers.FORMATS:
            raise ValidationError(
                f"Unknown format {format!r}; choose one of {list(parsers.FORMATS)}."
            )
        fmt: str | None = format
    else:
        fmt = parsers.detect_format(head, file_name)
    if fmt is None:
        raise ValidationError(
            f"{file_name} is not in a format slrweb recognises. Supported: "
            + ", ".join(parsers.FORMATS.values())
            + "."
        )
    try:
        parsers.check_container(
            stream, fmt, max_unpacked_bytes=settings.IMPORT_XLSX_MAX_UNPACKED_BYTES
        )
    except ParseError as error:
        raise ValidationError(f"{file_name} was refused: {error}.") from error
    return fmt


def source_resolve(*, review: Review, name: str, actor: User | None = None) -> Source:
    """The review's source of that name (case-insensitive), created if it does not exist."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("Name the source (digital library) the file was exported from.")
    if len(name) > 120:
        raise ValidationError("A source name has at most 120 characters.")
    existing = review.sources.filter(name__iexact=name).first()
    if existing:
        return existing
    with transaction.atomic():
        position = review.sources.count()
        source, created = Source.objects.get_or_create(
            review=review, name=name, defaults={"position": position}
        )
        if created:
            audit_event_record(
                review=review, actor=actor, action="source.create", obj=source, after={"name": name}
            )
    return source


def batch_create(
    *,
    review: Review,
    source: Source,
    uploaded_by: User | None,
    file_name: str,
    data: bytes | BinaryIO,
    search_run: SearchRun | None = None,
    format: str | None = None,
    enqueue: bool = True,
) -> ImportBatch:
    """Validate and store one export file; the import runs in a worker after commit.

    `data` is the file's bytes or a seekable binary file (an upload the streaming handler
    wrote to disk); it is stored in chunks, never read whole. Raises ValidationError
    (nothing saved) for an empty, binary, hostile, oversized, unsupported or oddly named
    file, a source or search run of another review, or a file already imported.
    """
    name = file_name_check(file_name)
    if source.review_id != review.id:
        raise ValidationError("That source belongs to another review.")
    if search_run is not None and (
        search_run.review_id != review.id or search_run.source_id != source.id
    ):
        raise ValidationError("The search run must be one of this review's runs in that source.")
    stream = _stream(data)
    digest, size = _digest_and_size(stream)
    fmt = file_check(stream=stream, size=size, file_name=name, format=format)
    duplicate = ImportBatch.objects.filter(review=review, sha256=digest).first()
    if duplicate is not None:
        raise ValidationError(_duplicate_message(duplicate))
    batch = ImportBatch(
        review=review,
        source=source,
        search_run=search_run,
        uploaded_by=uploaded_by,
        original_name=name,
        size_bytes=size,
        sha256=digest,
        format=fmt,
    )
    _batch_store(batch=batch, stream=stream, enqueue=enqueue)
    if enqueue:
        batch.refresh_from_db(fields=["queued_at"])
    return batch


def _batch_store(*, batch: ImportBatch, stream: BinaryIO, enqueue: bool) -> None:
    """Save the batch row and its file together (audited), or neither."""
    try:
        with transaction.atomic():
            # Stored under a generated name (the user's name is only displayed), copied in
            # chunks by the storage.
            stream.seek(0)
            batch.file.save(
                f"{batch.sha256[:20]}{_EXTENSIONS[batch.format]}", File(stream), save=False
            )
            batch.save()
            audit_event_record(
                review=batch.review,
                actor=batch.uploaded_by,
                action="import.upload",
                obj=batch,
                after={
                    "file": batch.original_name,
                    "source": batch.source.name,
                    "format": batch.format,
                    "sha256": batch.sha256,
                    "bytes": batch.size_bytes,
                    "search_run": batch.search_run_id,
                },
            )
            if enqueue:
                batch_id = batch.pk
                transaction.on_commit(lambda: batch_enqueue(batch_id=batch_id))
    except IntegrityError as error:
        # Two uploads of the same file raced past the check above: drop our stored copy.
        if batch.file:
            batch.file.delete(save=False)
        duplicate = ImportBatch.objects.filter(review=batch.review, sha256=batch.sha256).first()
        if duplicate is None:
            raise
        raise ValidationError(_duplicate_message(duplicate)) from error
    except DatabaseError:
        # Nothing half-written: the file stored for a row that was not saved goes too.
        if batch.file:
            batch.file.delete(save=False)
        raise


def _duplicate_message(batch: ImportBatch) -> str:
    when = timezone.localtime(batch.created_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"This file was already uploaded to this review on {when} as "
        f"{batch.original_name!r} (import #{batch.pk}, {batch.get_status_display().lower()}); "
        "the same file is never imported twice."
        + (" Retry that import instead." if batch.status == ImportBatch.Status.FAILED else "")
    )


def batch_enqueue(*, batch_id: int) -> bool:
    """Hand the import to the broker and note when; False if the broker is unreachable (the
    batch stays pending with no `queued_at`, and the periodic sweep sends it later)."""
    if not task_enqueue(IMPORT_TASK, kwargs={"batch_id": batch_id}):
        return False
    ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.PENDING).update(
        queued_at=timezone.now()
    )
    return True


# --- running an import --------------------------------------------------------------------


class _ProgressChannel:
    """Writes status and progress of one batch on its own autocommit connection.

    On SQLite (the embedded mode) a second writer would wait for the import transaction, so
    progress there is only written when the import ends.
    """

    def __init__(self, batch_id: int):
        self.batch_id = batch_id
        self.connection = None
        self.last = 0.0
        if connection.vendor == "postgresql":
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        if self.connection is None:
            return 0
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def claim_before_transaction(self) -> None:
        """SQLite: mark the batch running on the main connection, before the import
        transaction takes the only write lock (nothing can write the row during the import)."""
        if self.connection is not None:
            return
        now = timezone.now()
        ImportBatch.objects.filter(pk=self.batch_id).exclude(status=ImportBatch.Status.DONE).update(
            status=ImportBatch.Status.RUNNING,
            progress=0,
            error="",
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )

    def claim(self) -> None:
        now = timezone.now()
        self.execute(
            "UPDATE " + _BATCH_TABLE + " SET status = %s, progress = 0, error = '', "
            "started_at = %s, heartbeat_at = %s, attempts = attempts + 1 "
            "WHERE id = %s AND status <> %s",
            [ImportBatch.Status.RUNNING, now, now, self.batch_id, ImportBatch.Status.DONE],
        )

    def progress(self, percent: int, records: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        self.execute(
            "UPDATE " + _BATCH_TABLE + " SET progress = %s, records_read = %s, heartbeat_at = %s "
            "WHERE id = %s AND status = %s",
            [
                min(99, max(0, percent)),
                records,
                timezone.now(),
                self.batch_id,
                ImportBatch.Status.RUNNING,
            ],
        )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def heartbeat_path(batch_id: int) -> Path:
    """The heartbeat file of a batch being imported (see HeartbeatFile)."""
    return Path(settings.IMPORT_HEARTBEAT_DIR) / str(batch_id)


class HeartbeatFile:
    """While an import runs, a daemon thread of the worker touches `heartbeat_path(batch)`
    every few seconds; the file is removed when the import ends and goes stale when the
    worker process dies. The sweep reads its age where the database cannot carry a heartbeat
    (SQLite: the import transaction holds the only write lock)."""

    def __init__(self, batch_id: int) -> None:
        self.path = heartbeat_path(batch_id)
        self.every = max(0.2, settings.IMPORT_HEARTBEAT_FILE_GRACE_SECONDS / 6)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._thread = threading.Thread(
            target=self._beat, name=f"import-heartbeat-{self.path.name}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                self.path.touch()
            except OSError:
                logger.warning("import heartbeat %s could not be written", self.path)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self.path.unlink(missing_ok=True)


@contextmanager
def _heartbeat_file(batch_id: int) -> Iterator[None]:
    if not settings.IMPORT_HEARTBEAT_FILES:
        yield
        return
    beat = HeartbeatFile(batch_id)
    beat.start()
    try:
        yield
    finally:
        beat.stop()


def heartbeat_file_stale(batch_id: int) -> bool:
    """True if the batch's heartbeat file is missing or older than the grace period."""
    try:
        touched = heartbeat_path(batch_id).stat().st_mtime
    except FileNotFoundError:
        return True
    grace: float = settings.IMPORT_HEARTBEAT_FILE_GRACE_SECONDS
    return time.time() - touched > grace


@dataclass
class _Tally:
    records: int = 0
    with_title: int = 0
    with_abstract: int = 0
    with_doi: int = 0
    skipped: int = 0
    warnings_count: int = 0

    def __post_init__(self) -> None:
        self.skipped_list: list[dict[str, Any]] = []
        self.entry_warnings: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def problem(self, problem: EntryProblem) -> None:
        if problem.severity == "skipped":
            self.skipped += 1
            if len(self.skipped_list) < MAX_LISTED_PROBLEMS:
                self.skipped_list.append({"line": problem.line, "reason": problem.reason})
        elif problem.severity == "warning":
            self.warnings_count += 1
            if len(self.entry_warnings) < MAX_LISTED_PROBLEMS:
                self.entry_warnings.append({"line": problem.line, "reason": problem.reason})
        else:
            self.notes.append(problem.reason)

    def warnings(self) -> list[str]:
        out = []
        if self.records == 0:
            out.append("The file holds no records.")
        if self.records:
            no_title = self.records - self.with_title
            no_abstract = self.records - self.with_abstract
            if no_title:
                out.append(f"{no_title} record{_s(no_title)} {_have(no_title)} no title")
            if no_abstract:
                out.append(
                    f"{no_abstract} record{_s(no_abstract)} {_have(no_abstract)} no abstract"
                )
        if self.skipped:
            out.append(f"{self.skipped} entr{'y was' if self.skipped == 1 else 'ies were'} skipped")
        for item in self.entry_warnings[:20]:
            out.append(f"line {item['line']}: {item['reason']}")
        if self.warnings_count > 20:
            out.append(f"{self.warnings_count - 20} more entry warnings (see the report)")
        return out

    def report(self, fmt: str) -> dict[str, Any]:
        return {
            "format": fmt,
            "format_label": parsers.FORMATS.get(fmt, fmt),
            "records": self.records,
            "with_title": self.with_title,
            "with_abstract": self.with_abstract,
            "with_doi": self.with_doi,
            "skipped": self.skipped,
            "skipped_entries": self.skipped_list,
            "entry_warnings": self.entry_warnings,
            "warnings": self.warnings(),
            "notes": self.notes,
        }


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _text(value: str) -> str:
    # PostgreSQL text refuses NUL characters; exports of broken tools contain some.
    return value.replace("\x00", "") if "\x00" in value else value


def _row(batch: ImportBatch, position: int, item: ParsedRecord) -> dict[str, Any]:
    """The Record column values of one parsed entry (already cut to the column sizes)."""
    row = {
        "review_id": batch.review_id,
        "batch_id": batch.pk,
        "position": position,
        "authors": item.authors,
        "year": item.year if item.year and 0 < item.year < 32768 else None,
        "keywords": item.keywords,
        "raw": item.raw,
    }
    for name in _TEXT_COLUMNS:
        row[name] = _text(getattr(item, name))
    return row


def _advisory_lock(batch_id: int) -> bool:
    """Inside the import transaction: True if no other worker is importing this batch."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, batch_id])
        return bool(cursor.fetchone()[0])


def _import(batch: ImportBatch, channel: _ProgressChannel) -> _Tally:
    with batch.file.open("rb") as stored:
        # The underlying buffered file: the text layer needs read1(), progress needs tell().
        handle = getattr(stored.file, "file", stored.file)
        entries = parsers.iter_entries(
            handle,
            batch.format,
            column_map=batch.column_map or None,
            max_unpacked_bytes=settings.IMPORT_XLSX_MAX_UNPACKED_BYTES,
            max_rows=settings.IMPORT_MAX_ROWS,
        )
        # Close the parser before the file, even when an insert fails half-way.
        with closing(entries):
            return _consume(batch, channel, handle, entries)


def _consume(
    batch: ImportBatch,
    channel: _ProgressChannel,
    handle: IO[bytes],
    entries: Iterable[ParsedRecord | EntryProblem],
) -> _Tally:
    tally = _Tally()
    size = max(1, batch.size_bytes)
    with _RecordSink() as sink:
        for item in entries:
            if isinstance(item, EntryProblem):
                tally.problem(item)
                continue
            if item.is_empty:
                tally.problem(
                    EntryProblem(item.line, "entry has no title, abstract, authors or identifier")
                )
                continue
            tally.records += 1
            tally.with_title += bool(item.title)
            tally.with_abstract += bool(item.abstract)
            tally.with_doi += bool(item.doi)
            sink.add(_row(batch, tally.records, item))
            if tally.records % IMPORT_CHUNK == 0:
                sink.flush()
                channel.progress(int(handle.tell() * 100 / size), tally.records)
    return tally


_COPY_COLUMNS = (
    "review_id",
    "batch_id",
    "position",
    "title",
    "abstract",
    "authors",
    "year",
    "venue",
    "volume",
    "issue",
    "pages",
    "doi",
    "pmid",
    "url",
    "keywords",
    "publication_type",
    "language",
    "source_record_id",
    "raw",
    "created_at",
)
_JSON_COLUMNS = {"authors", "keywords", "raw"}


# One encoder for every value (json.dumps would build one per call); no spaces after the
# separators: jsonb stores the same value either way, and PostgreSQL parses fewer bytes.
_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(value: object) -> str:
    dumped = _JSON_ENCODE(value)
    # PostgreSQL text and jsonb refuse NUL characters; exports of broken tools contain some.
    return dumped.replace("\\u0000", "") if "\\u0000" in dumped else dumped


class _RecordSink:
    """Writes the rows of one import inside its transaction.

    On PostgreSQL one COPY stays open for the whole file: the server stores rows while Python
    parses the next ones (on two cores that overlap is most of the speed), and model instances
    and INSERT statements are skipped. Elsewhere (SQLite, the embedded mode) rows go in
    chunks through bulk_create.
    """

    def __init__(self) -> None:
        self.now = timezone.now()
        self.copy_context: AbstractContextManager[Copy] | None = None
        self.copy: Copy | None = None
        self.pending: list[dict[str, Any]] = []

    def __enter__(self) -> _RecordSink:
        if connection.vendor == "postgresql":
            self.cursor = connection.cursor()
            columns = ", ".join(_COPY_COLUMNS)
            self.copy_context = self.cursor.cursor.copy(
                f"COPY {Record._meta.db_table} ({columns}) FROM STDIN"
            )
            self.copy = self.copy_context.__enter__()
        return self

    def add(self, row: dict[str, Any]) -> None:
        row["created_at"] = self.now
        if self.copy is None:
            self.pending.append(row)
            return
        self.copy.write_row(
            [
                _json(row[column]) if column in _JSON_COLUMNS else row[column]
                for column in _COPY_COLUMNS
            ]
        )

    def flush(self) -> None:
        if self.pending:
            Record.objects.bulk_create([Record(**row) for row in self.pending])
            self.pending = []
            if settings.DEBUG:
                # DEBUG keeps the text of every query; a chunk's insert is megabytes.
                connection.queries_log.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self.copy_context is not None:
            try:
                # On an exception psycopg aborts the COPY; the transaction is rolled back.
                return self.copy_context.__exit__(exc_type, exc, traceback)
            finally:
                self.cursor.close()
        if exc_type is None:
            self.flush()
        return False


def batch_run(*, batch_id: int) -> ImportBatch | None:
    """Parse the stored file and insert its records, all or nothing. Idempotent.

    Returns the batch (done or failed), or None if it no longer exists. A ParseError marks
    the batch failed and returns; a database error marks it failed and is raised again so
    the task retries (the retry starts from scratch: nothing of the failed run was kept).
    """
    batch = ImportBatch.objects.select_related("review", "source").filter(pk=batch_id).first()
    if batch is None or batch.status == ImportBatch.Status.DONE:
        return batch
    channel = _ProgressChannel(batch.pk)
    with _heartbeat_file(batch.pk):
        channel.claim_before_transaction()
        return _run_in_transaction(batch, channel)


def _run_in_transaction(batch: ImportBatch, channel: _ProgressChannel) -> ImportBatch:
    try:
        try:
            with transaction.atomic():
                return _run_locked(batch, channel)
        except _AlreadyDone:
            return ImportBatch.objects.get(pk=batch.pk)
        except UnknownColumns as error:
            reason = (
                f"The column mapping does not fit this file: {error}."
                if batch.column_map
                else "The columns of this table match no known export: map them to fields, "
                "then run the import again."
            )
            return _fail(
                batch,
                channel,
                reason,
                report={"needs_mapping": True, "columns": error.columns, "format": batch.format},
            )
        except ParseError as error:
            return _fail(batch, channel, f"The file could not be read: {error}.")
        except (OSError, UnicodeError) as error:
            return _fail(batch, channel, f"The stored file could not be read: {error}.")
        except DatabaseError as error:
            _fail(batch, channel, f"Database error, nothing was imported: {error}".strip())
            raise
    finally:
        channel.close()


def _run_locked(batch: ImportBatch, channel: _ProgressChannel) -> ImportBatch:
    """Inside the import transaction: take the batch's lock, import, mark it done."""
    if not _advisory_lock(batch.pk):
        # Another worker holds this batch; its run decides the outcome.
        return ImportBatch.objects.get(pk=batch.pk)
    current = ImportBatch.objects.get(pk=batch.pk)
    if current.status == ImportBatch.Status.DONE:
        return current
    channel.claim()
    tally = _import(batch, channel)
    if tally.records == 0:
        skipped = f" ({tally.skipped} entries skipped)" if tally.skipped else ""
        raise ParseError(f"no records were found in it as {parsers.FORMATS[batch.format]}{skipped}")
    finished = timezone.now()
    updated = (
        ImportBatch.objects.filter(pk=batch.pk)
        .exclude(status=ImportBatch.Status.DONE)
        .update(
            status=ImportBatch.Status.DONE,
            progress=100,
            records_read=tally.records,
            with_title=tally.with_title,
            with_abstract=tally.with_abstract,
            skipped=tally.skipped,
            report=tally.report(batch.format),
            error="",
            # The claim stamped started_at through the progress connection (committed,
            # so visible here); `current` was read before it and must not overwrite it.
            started_at=Coalesce(F("started_at"), Value(finished)),
            finished_at=finished,
        )
    )
    if updated != 1:
        # Another run finished it between our check and now: undo ours.
        raise _AlreadyDone()
    audit_event_record(
        review=batch.review,
        actor=None,
        action="import.done",
        obj=batch,
        after={
            "file": batch.original_name,
            "records": tally.records,
            "with_title": tally.with_title,
            "with_abstract": tally.with_abstract,
            "skipped": tally.skipped,
        },
    )
    dedup_schedule(review_id=batch.review_id)
    funnel_schedule(review_id=batch.review_id)
    return ImportBatch.objects.get(pk=batch.pk)


class _AlreadyDone(Exception):
    pass


def _fail(
    batch: ImportBatch,
    channel: _ProgressChannel,
    reason: str,
    report: dict[str, Any] | None = None,
) -> ImportBatch:
    """Mark the batch failed (its records were rolled back) and audit why."""
    fields = {
        "status": ImportBatch.Status.FAILED,
        "progress": 0,
        "records_read": 0,
        "with_title": 0,
        "with_abstract": 0,
        "skipped": 0,
        "error": reason[:2000],
        "report": report or {"format": batch.format},
        "finished_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            ImportBatch.objects.filter(pk=batch.pk).exclude(status=ImportBatch.Status.DONE).update(
                **fields
            )
            audit_event_record(
                review=batch.review,
                actor=None,
                action="import.failed",
                obj=batch,
                after={"file": batch.original_name, "error": reason[:500]},
            )
    except DatabaseError:
        # The main connection is unusable (it was the failure): use the progress connection.
        logger.warning("import %s: recording the failure through the progress connection", batch.pk)
        channel.execute(
            "UPDATE " + _BATCH_TABLE + " SET status = %s, progress = 0, error = %s, "
            "finished_at = %s WHERE id = %s AND status <> %s",
            [
                ImportBatch.Status.FAILED,
                reason[:2000],
                timezone.now(),
                batch.pk,
                ImportBatch.Status.DONE,
            ],
        )
    return ImportBatch.objects.filter(pk=batch.pk).first() or batch


# --- retries and the column mapping step -----------------------------------------------------


def batch_retry(*, batch: ImportBatch, user: User) -> ImportBatch:
    """Queue a failed import again (after a worker crash or a database failure)."""
    with transaction.atomic():
        updated = ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.FAILED).update(
            status=ImportBatch.Status.PENDING, progress=0, error="", queued_at=None
        )
        if not updated:
            raise ValidationError("Only a failed import can be retried.")
        audit_event_record(
            review=batch.review, actor=user, action="import.retry", obj=batch, after={}
        )
        batch_id = batch.pk
        transaction.on_commit(lambda: batch_enqueue(batch_id=batch_id))
    batch.refresh_from_db()
    return batch


def batch_mapping_set(*, batch: ImportBatch, mapping: dict[str, str], user: User) -> ImportBatch:
    """Store a person's column mapping on a table import and queue it again."""
    columns = set((batch.report or {}).get("columns") or [])
    if batch.format not in {"csv", "tsv", "xlsx"}:
        raise ValidationError("Only tables (CSV, TSV, XLSX) have columns to map.")
    if batch.status not in {ImportBatch.Status.FAILED, ImportBatch.Status.PENDING}:
        raise ValidationError("This import is not waiting for a column mapping.")
    cleaned = {field: column for field, column in mapping.items() if column}
    allowed = {name for name, _label in MAPPABLE_FIELDS}
    unknown_fields = set(cleaned) - allowed
    if unknown_fields:
        raise ValidationError(f"Unknown fields: {sorted(unknown_fields)}.")
    if not cleaned.get("title"):
        raise ValidationError("Choose the column that holds the titles.")
    if columns:
        missing = sorted(set(cleaned.values()) - columns)
        if missing:
            raise ValidationError(f"These columns are not in the file: {missing}.")
    with transaction.atomic():
        ImportBatch.objects.filter(pk=batch.pk).update(
            column_map=cleaned,
            status=ImportBatch.Status.PENDING,
            progress=0,
            error="",
            queued_at=None,
        )
        audit_event_record(
            review=batch.review,
            actor=user,
            action="import.map_columns",
            obj=batch,
            before=batch.column_map or None,
            after=cleaned,
        )
        batch_id = batch.pk
        transaction.on_commit(lambda: batch_enqueue(batch_id=batch_id))
    batch.refresh_from_db()
    return batch


RUNNING_REFUSAL = (
    "This import is running: wait until it is done (if its worker died, it is marked failed "
    "within a minute)."
)


def batch_delete(
    *, batch: ImportBatch, user: User, seen_version: int | None = None, force: bool = False
) -> DeleteImpact:
    """Delete an import and its stored file, audited; the same file can then be uploaded again.

    A failed or waiting import holds no records: whoever may import can delete it (a task sent
    for it before finds nothing and ends). A finished one only an owner deletes, after the
    confirmation that showed `batch_delete_impact` (`seen_version` is its `version`; figures
    that changed since raise StaleWrite unless `force`): its records go, and the studies left
    with no record go with their decisions, notes, assessments and full texts; a study it
    shares with other imports stays, with its display fields taken from the records left.
    Dedup and the funnel are refreshed after. Returns what went.
    """
    with _dedup_turn(batch.review_id), transaction.atomic():
        locked = (
            ImportBatch.objects.select_for_update()
            .select_related("review", "source")
            .filter(pk=batch.pk)
            .first()
        )
        if locked is None:
            raise ValidationError("This import was already deleted (by someone else?).")
        if locked.status == ImportBatch.Status.RUNNING or not _advisory_lock(locked.pk):
            raise ValidationError(RUNNING_REFUSAL)
        impact = batch_delete_impact(batch=locked)
        if locked.status == ImportBatch.Status.DONE:
            _finished_delete_check(batch=locked, user=user)
            version_check(
                stored_version=impact.version,
                seen_version=seen_version,
                force=force,
                what="What deleting this import removes",
                current=impact_summary(impact),
            )
        _batch_remove(batch=locked, user=user, impact=impact)
    return impact


def _finished_delete_check(*, batch: ImportBatch, user: User) -> None:
    if not batch.review.memberships.filter(user=user, role=Membership.Role.OWNER).exists():
        raise PermissionDenied(
            "Only the review's owners delete an import that holds records: it takes the "
            "decisions on its studies with it."
        )


def impact_summary(impact: DeleteImpact) -> str:
    """The figures in words, e.g. "1,905 records, 1,655 studies, 600 decisions"."""
    parts = [
        (impact.records, "record"),
        (impact.studies_removed, "study that no other import holds"),
        (impact.decisions, "decision"),
        (impact.resolutions, "stage outcome"),
        (impact.notes, "note"),
        (impact.tags, "tag"),
        (impact.full_texts, "full text"),
        (impact.quality_answers, "quality answer"),
        (impact.extraction_values, "extraction value"),
    ]
    words = [f"{n:,} {_plural(n, label)}" for n, label in parts if n]
    return ", ".join(words) or "nothing but the file"


def _plural(n: int, label: str) -> str:
    if n == 1:
        return label
    head, _, tail = label.partition(" ")
    head = head[:-1] + "ies" if head.endswith("y") else head + "s"
    return f"{head} {tail}".strip()


def _batch_remove(*, batch: ImportBatch, user: User, impact: DeleteImpact) -> None:
    orphaned = list(batch_studies_orphaned(batch=batch).values_list("pk", flat=True))
    kept = list(
        Study.objects.filter(records__batch=batch)
        .exclude(pk__in=orphaned)
        .distinct()
        .values_list("pk", flat=True)
    )
    pdfs = [
        name
        for name in FullText.objects.filter(study__in=orphaned).values_list("file", flat=True)
        if name
    ]
    audit_event_record(
        review=batch.review,
        actor=user,
        action="import.delete",
        obj=batch,
        before={
            "file": batch.original_name,
            "status": batch.status,
            "sha256": batch.sha256,
            "error": batch.error[:500],
            "removed": asdict(impact),
            "studies_removed": orphaned[:1000],
        },
    )
    Study.objects.filter(pk__in=orphaned).delete()
    stored = batch.file.name
    batch.delete()  # its records and their duplicate candidates with it
    for study_id in kept:
        rows = list(Record.objects.filter(study_id=study_id).values(*RECORD_FIELDS))
        Study.objects.filter(pk=study_id).update(**_display_fields(rows), updated_at=timezone.now())
    if impact.records:
        dedup_schedule(review_id=batch.review_id)
        funnel_schedule(review_id=batch.review_id)
    names = [name for name in (stored, *pdfs) if name]

    def files_delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(files_delete)


# --- the periodic sweep: lost workers and unsent tasks ----------------------------------------


WORKER_LOST_MESSAGE = (
    "The worker importing this file stopped (killed, restarted or cut off from the database)"
    "{at}; nothing of the file was kept. Retry the import, or delete it."
)


def batches_sweep() -> dict[str, int]:
    """Re-send imports whose task never reached the broker (or was lost with it), and fail
    the imports whose worker died, so that every batch can finish or be undone.

    A running import on PostgreSQL holds an advisory lock for its whole transaction: a batch
    marked running whose lock is free and whose last heartbeat is older than the grace
    period has no worker left. On SQLite the worker cannot write a heartbeat while its import
    transaction is open, so its heartbeat file decides (settings.IMPORT_HEARTBEAT_FILES).
    """
    now = timezone.now()
    requeue_before = now - timedelta(seconds=settings.IMPORT_REQUEUE_SECONDS)
    unsent = (
        ImportBatch.objects.filter(status=ImportBatch.Status.PENDING)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=requeue_before))
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    requeued = 0
    for batch_id in unsent:
        if not batch_enqueue(batch_id=batch_id):
            break  # the broker is still down: the next sweep tries again
        requeued += 1
    failed = sum(_fail_if_worker_lost(batch_id) for batch_id in _batches_silent(now))
    return {"requeued": requeued, "failed": failed}


def _batches_silent(now: datetime) -> list[int]:
    """Running batches whose worker shows no sign of life: a stale or missing heartbeat
    file (IMPORT_HEARTBEAT_FILES, the SQLite default), else a database heartbeat older than
    the grace period."""
    running = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING)
    if settings.IMPORT_HEARTBEAT_FILES:
        ids = running.values_list("pk", flat=True)
        return [batch_id for batch_id in ids if heartbeat_file_stale(batch_id)]
    silent_since = now - timedelta(seconds=settings.IMPORT_HEARTBEAT_GRACE_SECONDS)
    silent = running.filter(
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    )
    return list(silent.values_list("pk", flat=True))


def _fail_if_worker_lost(batch_id: int) -> bool:
    try:
        failed = _fail_lost_batch(batch_id)
    except OperationalError:
        if connection.vendor == "postgresql":
            raise
        # SQLite: a live import still holds the write lock; the next sweep looks again.
        logger.warning("import %s: the sweep could not take the database lock", batch_id)
        return False
    if failed and settings.IMPORT_HEARTBEAT_FILES:
        heartbeat_path(batch_id).unlink(missing_ok=True)
    return failed


def _fail_lost_batch(batch_id: int) -> bool:
    with transaction.atomic():
        if not _advisory_lock(batch_id):
            return False  # a worker is importing it right now
        batch = (
            ImportBatch.objects.select_for_update()
            .select_related("review")
            .filter(pk=batch_id, status=ImportBatch.Status.RUNNING)
            .first()
        )
        if batch is None:
            return False
        if settings.IMPORT_HEARTBEAT_FILES and not heartbeat_file_stale(batch_id):
            return False  # a new run of it started since the sweep looked
        # SQLite writes no progress during the import: no "at 0 %" there.
        at = f" at {batch.progress} %" if batch.progress else ""
        reason = WORKER_LOST_MESSAGE.format(at=at)
        ImportBatch.objects.filter(pk=batch_id).update(
            status=ImportBatch.Status.FAILED,
            error=reason,
            progress=0,
            records_read=0,
            finished_at=timezone.now(),
        )
        audit_event_record(
            review=batch.review,
            actor=None,
            action="import.worker_lost",
            obj=batch,
            after={"file": batch.original_name, "progress": batch.progress},
        )
    return True


def batch_result(
    batch: ImportBatch, *, status: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """A batch's outcome in the JSON shape of `manage.py import_records` (DESIGN.md)."""
    report = batch.report or {}
    return {
        "file": batch.original_name,
        "batch": batch.pk,
        "status": status or batch.status,
        "format": batch.format,
        "records": batch.records_read if batch.status == ImportBatch.Status.DONE else 0,
        "with_title": batch.with_title,
        "with_abstract": batch.with_abstract,
        "skipped": batch.skipped,
        "warnings": report.get("warnings", []),
        "error": error if error is not None else (batch.error or None),
    }


def search_run_resolve(
    *, review: Review, source: Source, text: str, actor: User | None = None
) -> SearchRun:
    """The latest run of that search string in that source, created if there is none.

    A run created here has no reported hit count yet (0, with a note saying so); Table 1
    reconciliation shows it as "not recorded" until someone enters the library's figure.
    """
    text = (text or "").strip()
    if not text:
        raise ValidationError("The search string is empty.")
    with transaction.atomic():
        string = review.search_strings.filter(text=text).first()
        if string is None:
            string = review.search_strings.create(text=text, position=review.search_strings.count())
            audit_event_record(
                review=review,
                actor=actor,
                action="search_string.create",
                obj=string,
                after={"text": text},
            )
        run = (
            SearchRun.objects.filter(review=review, search_string=string, source=source)
            .order_by("-run_on", "-id")
            .first()
        )
        if run is None:
            run = SearchRun.objects.create(
                review=review,
                search_string=string,
                source=source,
                hits_reported=0,
                note=RUN_CREATED_BY_IMPORT,
            )
            audit_event_record(
                review=review,
                actor=actor,
                action="search_run.create",
                obj=run,
                after={"search_string": text, "source": source.name, "hits_reported": None},
            )
    return run
