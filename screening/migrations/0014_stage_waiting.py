"""Screening at a million studies: counts that do not grow with the stage.

Every decision reads "left for you" (the stage's waiting studies minus those full or decided
by the reviewer) and the ranking's due check (decisions since the last run). Counted from the
studies and decisions, both read the whole stage: tens of milliseconds per decision at
1,000,000 studies (docs/benchmarks.md, "Screening at one million studies").

- `screening_stage_waiting`: the number of studies waiting in each stage (outcome
  "screening"), kept by PostgreSQL triggers on the studies as signed deltas (one row per
  insert or delete statement, one per study that moves), so no write waits for another on a
  shared counter row; their sum is the exact count. `stage_waiting_compact` (run by the
  periodic sweep) folds them into one row per stage. SQLite (the embedded default, small
  reviews) counts the studies instead.
- An index on decisions (stage, updated_at) for the due check.
"""

from django.db import migrations, models

SCREENING = "screening"

CREATE = f"""
CREATE TABLE screening_stage_waiting (
    id bigserial PRIMARY KEY, stage_id bigint NOT NULL, delta bigint NOT NULL
);
CREATE INDEX screening_stage_waiting_stage ON screening_stage_waiting (stage_id) INCLUDE (delta);
INSERT INTO screening_stage_waiting (stage_id, delta)
    SELECT current_stage_id, COUNT(*) FROM screening_study
    WHERE outcome = '{SCREENING}' AND current_stage_id IS NOT NULL GROUP BY current_stage_id;

CREATE FUNCTION screening_stage_waiting_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_waiting (stage_id, delta)
        SELECT current_stage_id, COUNT(*) FROM stage_waiting_new
        WHERE outcome = '{SCREENING}' AND current_stage_id IS NOT NULL GROUP BY current_stage_id;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_waiting_insert AFTER INSERT ON screening_study
    REFERENCING NEW TABLE AS stage_waiting_new
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_waiting_insert();

CREATE FUNCTION screening_stage_waiting_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_waiting (stage_id, delta)
        SELECT current_stage_id, -COUNT(*) FROM stage_waiting_old
        WHERE outcome = '{SCREENING}' AND current_stage_id IS NOT NULL GROUP BY current_stage_id;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_waiting_delete AFTER DELETE ON screening_study
    REFERENCING OLD TABLE AS stage_waiting_old
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_waiting_delete();

-- Emptied with the studies (a test database's flush truncates them).
CREATE FUNCTION screening_stage_waiting_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM screening_stage_waiting;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_waiting_truncate AFTER TRUNCATE ON screening_study
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_waiting_truncate();

-- Row level, and only when a study's stage or outcome changes: the ranking's priority writes
-- (every study of the stage) do not fire it.
CREATE FUNCTION screening_stage_waiting_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.outcome = '{SCREENING}' AND OLD.current_stage_id IS NOT NULL THEN
        INSERT INTO screening_stage_waiting (stage_id, delta) VALUES (OLD.current_stage_id, -1);
    END IF;
    IF NEW.outcome = '{SCREENING}' AND NEW.current_stage_id IS NOT NULL THEN
        INSERT INTO screening_stage_waiting (stage_id, delta) VALUES (NEW.current_stage_id, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_waiting_update
    AFTER UPDATE OF current_stage_id, outcome ON screening_study FOR EACH ROW
    WHEN ((OLD.current_stage_id, OLD.outcome) IS DISTINCT FROM (NEW.current_stage_id, NEW.outcome))
    EXECUTE FUNCTION screening_stage_waiting_update();
"""

DROP = """
DROP TRIGGER screening_stage_waiting_truncate ON screening_study;
DROP TRIGGER screening_stage_waiting_update ON screening_study;
DROP TRIGGER screening_stage_waiting_delete ON screening_study;
DROP TRIGGER screening_stage_waiting_insert ON screening_study;
DROP FUNCTION screening_stage_waiting_truncate();
DROP FUNCTION screening_stage_waiting_update();
DROP FUNCTION screening_stage_waiting_delete();
DROP FUNCTION screening_stage_waiting_insert();
DROP TABLE screening_stage_waiting;
"""


def _run(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("screening", "0013_study_search_document")]

    operations = [
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(fields=["stage", "updated_at"], name="decision_stage_updated"),
        ),
        migrations.RunPython(_run(CREATE), _run(DROP)),
    ]
