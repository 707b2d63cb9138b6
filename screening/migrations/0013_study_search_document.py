from django.db import migrations

# The studies page's full-text search (screening.selectors.study_list.studies_search) reads a
# stored, generated tsvector column with a GIN index on it. 0009 indexed the expression only:
# PostgreSQL then found the matches from the index but recomputed every match's vector (the
# whole abstract) to rank it, ~0.3 ms a study, 1 s for a common word in 20,000 studies. The
# stored column is computed once per write. Raw SQL: the model does not declare the column (the
# embedded SQLite default has no tsvector), so Django never writes it and PostgreSQL keeps it.
COLUMN = """
ALTER TABLE screening_study ADD COLUMN IF NOT EXISTS search_document tsvector
GENERATED ALWAYS AS (
    ((setweight(to_tsvector('english'::regconfig, COALESCE("title", '')), 'A')
    || setweight(to_tsvector('english'::regconfig, COALESCE("doi", '')), 'A'))
    || setweight(to_tsvector('english'::regconfig, COALESCE(("authors")::text, '')), 'B'))
    || setweight(to_tsvector('english'::regconfig, COALESCE("abstract", '')), 'C')
) STORED
"""
INDEX = (
    "CREATE INDEX IF NOT EXISTS study_search_document_gin "
    "ON screening_study USING gin (search_document)"
)
EXPRESSION_INDEX = """
CREATE INDEX IF NOT EXISTS study_search_gin ON screening_study USING gin ((
    ((setweight(to_tsvector('english'::regconfig, COALESCE("title", '')), 'A')
    || setweight(to_tsvector('english'::regconfig, COALESCE("doi", '')), 'A'))
    || setweight(to_tsvector('english'::regconfig, COALESCE(("authors")::text, '')), 'B'))
    || setweight(to_tsvector('english'::regconfig, COALESCE("abstract", '')), 'C')
))
"""


def search_document_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(COLUMN)
        schema_editor.execute(INDEX)
        schema_editor.execute("DROP INDEX IF EXISTS study_search_gin")


def search_document_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(EXPRESSION_INDEX)
        schema_editor.execute("DROP INDEX IF EXISTS study_search_document_gin")
        schema_editor.execute("ALTER TABLE screening_study DROP COLUMN IF EXISTS search_document")


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0012_record_lz4"),
    ]

    operations = [
        migrations.RunPython(search_document_create, search_document_drop),
    ]
