"""Compress the long values of imported records with lz4 instead of pglz (PostgreSQL 14+).

PostgreSQL compresses a record's `raw` entry (and a long abstract) when the row passes 2 KB;
with its default method (pglz) that compression was a quarter of the server's work during an
import of 100,000 records (docs/benchmarks.md, "Import"). lz4 compresses and decompresses
several times faster for a similar size. Only new values are written with it; what is stored
and read back is unchanged. A server built without lz4 keeps pglz; SQLite has no such thing.
"""

from django.db import migrations

COLUMNS = ("raw", "abstract")


def _set_compression(method: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = apps.get_model("screening", "Record")._meta.db_table
        for column in COLUMNS:
            # A server without lz4 support raises feature_not_supported: it keeps pglz.
            schema_editor.execute(
                "DO $$ BEGIN "
                f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}; "
                "EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("screening", "0011_invitation_username")]

    operations = [migrations.RunPython(_set_compression("lz4"), _set_compression("default"))]
