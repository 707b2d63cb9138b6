"""Import service on PostgreSQL: storage, refusal of bad input, all-or-nothing imports,
progress seen from outside the import transaction, retries, idempotence, the CLI contract."""

import io
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.models import RestrictedError

from screening.models import AuditEvent, ImportBatch, Record, SearchRun, SearchString, Source
from screening.selectors.imports import import_reconciliation
from screening.services import imports as service
from screening.services.imports import (
    batch_create,
    batch_mapping_set,
    batch_retry,
    batch_run,
    source_resolve,
)

from .conftest import SHARED_DATA
from .factories import review_with_cast
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    SCOPUS_RIS,
    SCOPUS_RIS_RECORDS,
    media_root_fixture,
    sent_tasks_fixture,
)

pytestmark = pytest.mark.usefixtures("media_root", "sent_tasks")


def create(review, data=None, name="scopus.ris", **kwargs):
    source = kwargs.pop("source", None) or source_resolve(review=review, name="Scopus")
    return batch_create(
        review=review,
        source=source,
        uploaded_by=review.created_by,
        file_name=name,
        data=SCOPUS_RIS.read_bytes() if data is None else data,
        **kwargs,
    )


def outside(sql: str, params=()):
    """Run a query on a separate connection: what other sessions see right now."""
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        other.close()


def test_create_stores_privately_and_enqueues_on_commit(
    review, media_root, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = create(review, name="My Scopus export.ris")
    assert batch.status == ImportBatch.Status.PENDING
    assert (batch.format, batch.size_bytes) == ("ris", SCOPUS_RIS.stat().st_size)
    stored = media_root / batch.file.name
    assert stored.read_bytes() == SCOPUS_RIS.read_bytes()
    # Stored under a generated name, never the user's.
    assert "Scopus" not in batch.file.name and batch.file.name.startswith("imports/")
    assert batch.original_name == "My Scopus export.ris"
    assert sent_tasks.calls == [("screening.batch_import", {"batch_id": batch.pk})]
    assert AuditEvent.objects.filter(action="import.upload", object_id=str(batch.pk)).exists()


def test_run_imports_every_record_with_report_and_enqueues_dedup(
    review, sent_tasks, django_capture_on_commit_callbacks
):
    batch = create(review)
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.DONE
    assert (batch.records_read, batch.with_title, batch.with_abstract, batch.skipped) == (
        SCOPUS_RIS_RECORDS,
        92,
        89,
        0,
    )
    assert batch.progress == 100
    assert "3 records have no abstract" in batch.report["warnings"]
    records = Record.objects.filter(batch=batch)
    assert records.count() == SCOPUS_RIS_RECORDS
    assert list(records.values_list("position", flat=True)) == list(range(1, 93))
    assert not records.filter(study__isnull=False).exists()
    first = records.first()
    assert first.title and first.raw["TY"] and first.review_id == review.id
    assert ("screening.review_deduplicate", {"review_id": review.id}) in sent_tasks.calls
    assert AuditEvent.objects.filter(action="import.done", object_id=str(batch.pk)).exists()


def test_same_file_twice_is_refused_with_a_clear_message(review):
    create(review)
    with pytest.raises(ValidationError, match="already uploaded to this review"):
        create(review, name="renamed.ris")
    assert ImportBatch.objects.count() == 1


def test_same_file_in_another_review_is_accepted(review, db):
    other, _ = review_with_cast(slug="other-review")
    create(review)
    create(other)
    assert ImportBatch.objects.count() == 2


@pytest.mark.parametrize(
    "data,name,message",
    [
        (b"", "empty.ris", "is empty"),
        (b"  \n\r\n ", "blank.ris", "is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "picture.png", "PNG image"),
        (b"%PDF-1.4\n" + bytes(100), "paper.ris", "PDF document"),
        (bytes(range(256)) * 4, "blob.ris", "binary file"),
        (b"Dear colleague,\nplease find my results attached.\n", "letter.txt", "not in a format"),
        (b"PK\x03\x04" + b"\x00" * 40, "cut.xlsx", "damaged or truncated Excel"),
        (b"TY  - JOUR\nER  - \n", "../../etc/passwd.ris", "path or control characters"),
        (b"TY  - JOUR\nER  - \n", "dir/file.ris", "path or control characters"),
        (b"TY  - JOUR\nER  - \n", "..\\windows.ris", "path or control characters"),
        (b"TY  - JOUR\nER  - \n", ".hidden.ris", "path or control characters"),
        (b"TY  - JOUR\nER  - \n", "nul\x00byte.ris", "path or control characters"),
    ],
)
def test_bad_input_is_refused_and_nothing_saved(review, media_root, data, name, message):
    with pytest.raises(ValidationError, match=message):
        create(review, data=data, name=name)
    assert ImportBatch.objects.count() == 0
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_file_over_the_size_limit_is_refused(review, settings):
    settings.IMPORT_MAX_BYTES = 1000
    with pytest.raises(ValidationError, match="the import limit is 1000 bytes"):
        create(review)
    assert ImportBatch.objects.count() == 0


def test_source_and_search_run_must_belong_to_the_review(review, db):
    other, _ = review_with_cast(slug="other-review")
    foreign = Source.objects.create(review=other, name="Scopus")
    with pytest.raises(ValidationError, match="another review"):
        create(review, source=foreign)
    source = source_resolve(review=review, name="Scopus")
    string = SearchString.objects.create(review=review, text="mlops")
    ieee = source_resolve(review=review, name="IEEE")
    run = SearchRun.objects.create(
        review=review, search_string=string, source=ieee, hits_reported=90
    )
    with pytest.raises(ValidationError, match="search run"):
        create(review, source=source, search_run=run)
    assert ImportBatch.objects.count() == 0


@pytest.mark.parametrize(
    "data,name,message",
    [
        (
            SCOPUS_RIS.read_bytes()[:-3000],
            "cut.ris",
            "ends inside the record .* looks truncated",
        ),
        (
            (
                SHARED_DATA / "dedup/bib-dedupe-benchmark/respiratory/Respiratory_endnote.xml"
            ).read_bytes()[:50_000],
            "cut.xml",
            "malformed or truncated",
        ),
        (b"@article{a, title={One}}\n@article{b, title={Two", "cut.bib", "truncated"),
    ],
)
def test_truncated_file_fails_with_reason_and_no_records(review, data, name, message):
    batch = batch_run(batch_id=create(review, data=data, name=name).pk)
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.error.startswith("The file could not be read")
    assert re.search(message, batch.error)
    assert Record.objects.count() == 0
    assert AuditEvent.objects.filter(action="import.failed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_database_failure_mid_batch_leaves_nothing_and_retry_completes(monkeypatch):
    """Real transactions: 24 records are sent (COPY), the 25th fails; nothing may remain."""
    review, _ = review_with_cast()
    batch = create(review)
    monkeypatch.setattr(service, "IMPORT_CHUNK", 10)
    monkeypatch.setattr(service, "PROGRESS_EVERY_SECONDS", 0)
    real_add = service._RecordSink.add
    seen_from_outside = []

    def failing_add(sink, row):
        if row["position"] == 25:
            # Before failing: what another session sees while the import transaction is open.
            seen_from_outside.append(
                outside(
                    "SELECT status, progress, records_read, "
                    "(SELECT count(*) FROM screening_record WHERE batch_id = %s) "
                    "FROM screening_importbatch WHERE id = %s",
                    [batch.pk, batch.pk],
                )[0]
            )
            raise OperationalError("connection lost while inserting")
        return real_add(sink, row)

    monkeypatch.setattr(service._RecordSink, "add", failing_add)
    with pytest.raises(OperationalError):
        batch_run(batch_id=batch.pk)
    status, progress, records_read, visible_records = seen_from_outside[0]
    assert status == "running" and progress > 0 and records_read == 20
    assert visible_records == 0, "records of an unfinished import must not be visible"
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert "Database error, nothing was imported" in batch.error
    assert Record.objects.count() == 0

    monkeypatch.setattr(service._RecordSink, "add", real_add)
    batch_retry(batch=batch, user=review.created_by)
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.DONE
    assert Record.objects.filter(batch=batch).count() == SCOPUS_RIS_RECORDS
    assert batch.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_run_twice_or_concurrently_imports_once():
    review, _ = review_with_cast()
    batch = create(review)
    holder = connections.create_connection(DEFAULT_DB_ALIAS)
    holder.set_autocommit(False)
    try:
        with holder.cursor() as cursor:
            # Another worker is importing this batch right now.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [service._LOCK_NAMESPACE, batch.pk]
            )
        assert batch_run(batch_id=batch.pk).status == ImportBatch.Status.PENDING
        assert Record.objects.count() == 0
    finally:
        holder.rollback()
        holder.close()
    assert batch_run(batch_id=batch.pk).status == ImportBatch.Status.DONE
    assert batch_run(batch_id=batch.pk).status == ImportBatch.Status.DONE
    assert Record.objects.count() == SCOPUS_RIS_RECORDS
    assert ImportBatch.objects.get(pk=batch.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_batch_left_running_by_a_killed_worker_is_completed_by_the_redelivered_task():
    review, _ = review_with_cast()
    batch = create(review)
    # A killed worker leaves the claim ("running", some progress) but its transaction, its
    # records and its advisory lock died with its connection.
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", progress=40, attempts=1)
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.DONE
    assert Record.objects.count() == SCOPUS_RIS_RECORDS
    assert batch.attempts == 2


def test_unknown_columns_wait_for_a_mapping_then_import(review, sent_tasks):
    data = b"Heading,Summary,Writers\nA study,Some text,Doe J.; Roe R.\nAnother,,Poe E.\n"
    batch = batch_run(batch_id=create(review, data=data, name="custom.csv").pk)
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.report["needs_mapping"] is True
    assert batch.report["columns"] == ["Heading", "Summary", "Writers"]
    with pytest.raises(ValidationError, match="titles"):
        batch_mapping_set(batch=batch, mapping={"abstract": "Summary"}, user=None)
    with pytest.raises(ValidationError, match="not in the file"):
        batch_mapping_set(batch=batch, mapping={"title": "Nope"}, user=None)
    batch = batch_mapping_set(
        batch=batch,
        mapping={"title": "Heading", "abstract": "Summary", "authors": "Writers"},
        user=review.created_by,
    )
    assert batch.status == ImportBatch.Status.PENDING
    assert batch.column_map["title"] == "Heading"
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.DONE
    assert list(Record.objects.values_list("title", "authors")) == [
        ("A study", ["Doe J.", "Roe R."]),
        ("Another", ["Poe E."]),
    ]
    assert batch.report["warnings"] == ["1 record has no abstract"]


@pytest.mark.parametrize(
    "data,name,fmt",
    [
        (b"Title,Authors\n,\n,\n", "header-only.csv", None),
        (SCOPUS_RIS.read_bytes(), "scopus.ris", "bibtex"),
    ],
)
def test_file_without_records_fails_with_a_clear_message(review, data, name, fmt):
    batch = batch_run(batch_id=create(review, data=data, name=name, format=fmt).pk)
    assert batch.status == ImportBatch.Status.FAILED
    assert "no records were found in it" in batch.error
    assert Record.objects.count() == 0


def test_only_failed_batches_can_be_retried(review):
    batch = batch_run(batch_id=create(review).pk)
    with pytest.raises(ValidationError, match="Only a failed import"):
        batch_retry(batch=batch, user=None)


def test_reconciliation_highlights_differences(review):
    string = SearchString.objects.create(review=review, text="mlops")
    scopus = source_resolve(review=review, name="Scopus")
    ieee = source_resolve(review=review, name="IEEE")
    run = SearchRun.objects.create(
        review=review, search_string=string, source=scopus, hits_reported=100
    )
    SearchRun.objects.create(review=review, search_string=string, source=ieee, hits_reported=0)
    batch_run(batch_id=create(review, source=scopus, search_run=run).pk)
    table = import_reconciliation(review=review)
    (scopus_row, ieee_row) = table["runs"]
    assert (scopus_row["hits"], scopus_row["imported"]) == (100, 92)
    assert scopus_row["difference"] == {"value": -8, "state": "fewer"}
    assert ieee_row["difference"] == {"value": 0, "state": "match"}
    assert table["total_imported"] == 92 and table["total_hits"] == 100


# --- manage.py import_records -----------------------------------------------------------------


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    error = None
    try:
        call_command("import_records", *args, stdout=out, stderr=err)
    except CommandError as exc:
        error = exc
    return json.loads(out.getvalue()), error


def test_import_records_prints_the_json_contract(review):
    bib = SHARED_DATA / "exports/buhos/encoding_iso_8859_1.bib"
    result, error = run_command(
        "--review",
        review.slug,
        "--source",
        "IEEE Xplore",
        "--search-string",
        "mlops AND pipeline",
        str(SCOPUS_RIS),
        str(bib),
    )
    assert error is None
    assert result["review"] == review.slug and result["records"] == 93
    assert set(result) == {"review", "records", "files"}
    first = result["files"][0]
    assert set(first) == {
        "file",
        "batch",
        "status",
        "format",
        "records",
        "with_title",
        "with_abstract",
        "skipped",
        "warnings",
        "error",
    }
    assert (first["file"], first["status"], first["format"], first["records"]) == (
        "scopus.ris",
        "done",
        "ris",
        92,
    )
    assert first["error"] is None and first["warnings"] == ["3 records have no abstract"]
    assert result["files"][1]["format"] == "bibtex"
    source = Source.objects.get(review=review, name="IEEE Xplore")
    assert ImportBatch.objects.filter(source=source, search_run__isnull=False).count() == 2


def test_import_records_fails_when_a_file_fails(review, tmp_path):
    broken = tmp_path / "broken.bib"
    broken.write_bytes(b"@article{a, title={One}}\n@article{b, title={Two")
    empty = tmp_path / "empty.ris"
    empty.write_bytes(b"")
    result, error = run_command(
        "--review", review.slug, "--source", "Scopus", str(SCOPUS_RIS), str(broken), str(empty)
    )
    assert error is not None and "2 of 3 files were not imported" in str(error)
    statuses = [(f["file"], f["status"]) for f in result["files"]]
    assert statuses == [("scopus.ris", "done"), ("broken.bib", "failed"), ("empty.ris", "refused")]
    assert result["files"][2]["batch"] is None and "is empty" in result["files"][2]["error"]
    assert result["records"] == 92


def test_import_records_unknown_review_is_an_error(db):
    with pytest.raises(CommandError, match="No review"):
        call_command("import_records", "--review", "nope", "--source", "X", str(SCOPUS_RIS))


def test_deleting_the_review_takes_its_imports_but_a_source_with_imports_stays(review):
    batch = batch_run(batch_id=create(review).pk)
    with pytest.raises(RestrictedError):
        batch.source.delete()
    assert Record.objects.filter(batch=batch).exists()
    review.delete()
    assert not ImportBatch.objects.exists() and not Record.objects.exists()
