"""What an import stores, pinned: every real export in ../shared/data/INVENTORY.tsv goes through
batch_create and batch_run (the web upload's and the worker's code), and each stored Record's
columns (raw entry included) and each batch's outcome and report must equal what the importer
stored when this test was written (tests/import_stored_golden.json, one short sha256 per
record). A faster parser or insert must not change a byte of what is kept.

When a change to what is stored is intended, regenerate the file and review its diff:

    SLRWEB_WRITE_IMPORT_GOLDEN=1 .venv/bin/python -m pytest tests/test_imports_stored.py
"""

import hashlib
import json
import os

import pytest
from django.db import NotSupportedError, connection, transaction

from screening.models import ImportBatch, Record
from screening.services.imports import source_resolve
from screening.services.reviews import review_create

from .conftest import REPO_ROOT
from .imports_helpers import export_import, media_root_fixture  # noqa: F401 (a fixture)
from .test_parsers_inventory import ROWS, SHARED_DATA

GOLDEN = REPO_ROOT / "tests" / "import_stored_golden.json"
RECORD_COLUMNS = [
    field.attname
    for field in Record._meta.concrete_fields
    # The dedup writes study_id and dedup_features when it groups the record, not the import.
    if field.attname
    not in {"id", "review_id", "batch_id", "study_id", "created_at", "dedup_features"}
]
BATCH_COLUMNS = [
    "status",
    "format",
    "records_read",
    "with_title",
    "with_abstract",
    "skipped",
    "report",
    "error",
]


def digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stored(batch: ImportBatch) -> dict:
    outcome = ImportBatch.objects.filter(pk=batch.pk).values(*BATCH_COLUMNS).get()
    rows = Record.objects.filter(batch=batch).order_by("position").values(*RECORD_COLUMNS)
    return {"batch": digest(outcome), "records": [digest(row) for row in rows]}


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
@pytest.mark.skipif(not ROWS, reason="the shared real exports are not on this machine")
def test_every_real_export_stores_exactly_what_it_stored_before():
    found = {}
    for index, row in enumerate(ROWS):
        # One review per file: two exports with the same bytes are both imported.
        review = review_create(slug=f"pinned-{index}", title=row["path"][-200:])
        source = source_resolve(review=review, name="Library")
        batch = export_import(review, source, SHARED_DATA / row["path"])
        if isinstance(batch, str):
            found[row["path"]] = {"refused": batch[:60]}
            continue
        found[row["path"]] = stored(batch)
    if os.environ.get("SLRWEB_WRITE_IMPORT_GOLDEN"):
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(found) == sorted(expected)
    changed = {}
    for name, pinned in expected.items():
        if found[name] == pinned:
            continue
        positions = [
            position
            for position, (now, before) in enumerate(
                zip(found[name].get("records", []), pinned.get("records", []), strict=False),
                start=1,
            )
            if now != before
        ]
        changed[name] = {
            "batch_changed": found[name].get("batch") != pinned.get("batch"),
            "records": (len(found[name].get("records", [])), len(pinned.get("records", []))),
            "positions_changed": positions[:10],
        }
    assert not changed, changed


@pytest.mark.django_db
def test_long_record_values_are_compressed_with_lz4_where_the_server_has_it():
    """Compressing `raw` with pglz was a quarter of PostgreSQL's work during a large import
    (docs/benchmarks.md, "Import"); lz4 stores the same values for less CPU."""
    if connection.vendor != "postgresql":
        pytest.skip("column compression is a PostgreSQL setting")
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute("CREATE TEMP TABLE lz4_probe (value text COMPRESSION lz4)")
        except NotSupportedError:
            pytest.skip("this PostgreSQL server is built without lz4")
        cursor.execute(
            "SELECT attname, attcompression FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname IN ('raw', 'abstract') ORDER BY attname",
            [Record._meta.db_table],
        )
        assert cursor.fetchall() == [("abstract", "l"), ("raw", "l")]
