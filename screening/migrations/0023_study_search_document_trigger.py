from django.db import migrations

# The search document of 0013 was a stored generated column, computed as each study is
# written. A deduplication run paid for the documents of its new studies while it wrote them
# (290 of the 526 µs a new study cost, over 250 s of the server's CPU in a million-record
# run). The column becomes a plain one, set by triggers:
#
# - on INSERT, unless the transaction deferred it (`slrweb.search_deferred`, set by a large
#   deduplication run: `screening.services.study_search`); a deferred document stays NULL
#   until the worker fills it, in short transactions, from the partial index below;
# - on UPDATE, only when the title, DOI, authors or abstract changed (the generated column was
#   computed again whenever an UPDATE set one of them, even to the same value, as a full
#   `save()` does).
#
# One SQL function holds the document's definition (title and DOI weight A, authors B, abstract
# C), for the triggers and the worker's fill alike. PostgreSQL only: the embedded SQLite default
# has no tsvector and searches with LIKE.
FORWARD = """
ALTER TABLE screening_study ALTER COLUMN search_document DROP EXPRESSION;

CREATE FUNCTION screening_study_search_document(title text, doi text, authors jsonb, abstract text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, COALESCE(doi, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, COALESCE(authors::text, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, COALESCE(abstract, '')), 'C')
$$;

CREATE FUNCTION screening_study_search_document_set() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND current_setting('slrweb.search_deferred', true) = 'on' THEN
        NEW.search_document := NULL;
    ELSE
        NEW.search_document := screening_study_search_document(
            NEW.title, NEW.doi, NEW.authors, NEW.abstract);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER study_search_document_insert BEFORE INSERT ON screening_study
    FOR EACH ROW EXECUTE FUNCTION screening_study_search_document_set();

CREATE TRIGGER study_search_document_update
    BEFORE UPDATE OF title, doi, authors, abstract ON screening_study
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.doi IS DISTINCT FROM NEW.doi
          OR OLD.authors IS DISTINCT FROM NEW.authors OR OLD.abstract IS DISTINCT FROM NEW.abstract)
    EXECUTE FUNCTION screening_study_search_document_set();

CREATE INDEX study_search_pending ON screening_study (review_id, id)
    WHERE search_document IS NULL;
"""

# Back to 0013's generated column (PostgreSQL 15 cannot give a plain column an expression).
BACKWARD = """
DROP INDEX IF EXISTS study_search_pending;
DROP TRIGGER IF EXISTS study_search_document_update ON screening_study;
DROP TRIGGER IF EXISTS study_search_document_insert ON screening_study;
DROP FUNCTION IF EXISTS screening_study_search_document_set();
DROP FUNCTION IF EXISTS screening_study_search_document(text, text, jsonb, text);
ALTER TABLE screening_study DROP COLUMN IF EXISTS search_document;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        generated = import_module("screening.migrations.0013_study_search_document")
        schema_editor.execute(BACKWARD)
        schema_editor.execute(generated.COLUMN)
        schema_editor.execute(generated.INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0022_record_dedup_features"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
