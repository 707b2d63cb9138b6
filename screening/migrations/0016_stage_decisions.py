"""Screening at a million studies: the panel's "Mine" and "Team" without reading the decisions.

"Mine" (the reviewer's decisions in the stage) and "Team" (the stage's decisions) were counted
on every panel, so after every decision: ~0.25 s for "Team" at 1,000,000 decisions (behind a
cache of a few seconds per process) and hundreds of ms for "Mine" with 500,000 decisions by one
reviewer (docs/benchmarks.md).

- `screening_stage_decisions`: the decisions per (stage, reviewer) kept as signed deltas by
  PostgreSQL statement triggers on the decisions, in the transaction of the change, like the
  counts of 0014 and 0015; `stage_decisions_compact` (the periodic sweep) folds them. "Mine" is
  the sum of the (stage, reviewer) rows, "Team" the sum of the stage's. Verdicts are not
  counted (blind mode).
- Insert adds the new rows per (stage, reviewer), delete removes the old ones, an update adds
  the new and removes the old (a changed verdict, or a merge carrying decisions to another
  study, cancels out and writes nothing). No join, no lock: each trigger only reads its
  transition table, so its plan does not depend on the size first planned.
- The index on (stage, reviewer, created_at, id) gives the reviewer's latest decision in the
  stage (Undo) in one index step, instead of reading all of them.
SQLite (the embedded default, small reviews) counts the decisions instead.
"""

from django.db import migrations, models

CREATE = """
CREATE TABLE screening_stage_decisions (
    id bigserial PRIMARY KEY, stage_id bigint NOT NULL, reviewer_id integer NOT NULL,
    delta bigint NOT NULL
);
CREATE INDEX screening_stage_decisions_stage
    ON screening_stage_decisions (stage_id, reviewer_id) INCLUDE (delta);
INSERT INTO screening_stage_decisions (stage_id, reviewer_id, delta)
    SELECT stage_id, reviewer_id, COUNT(*) FROM screening_decision GROUP BY stage_id, reviewer_id;

CREATE FUNCTION screening_stage_decisions_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_decisions (stage_id, reviewer_id, delta)
        SELECT stage_id, reviewer_id, COUNT(*) FROM decisions_new GROUP BY stage_id, reviewer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_decisions_insert AFTER INSERT ON screening_decision
    REFERENCING NEW TABLE AS decisions_new
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_decisions_insert();

CREATE FUNCTION screening_stage_decisions_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_decisions (stage_id, reviewer_id, delta)
        SELECT stage_id, reviewer_id, -COUNT(*) FROM decisions_old GROUP BY stage_id, reviewer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_decisions_delete AFTER DELETE ON screening_decision
    REFERENCING OLD TABLE AS decisions_old
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_decisions_delete();

-- Transition tables cannot go with a column list: it fires on every update of decisions (a
-- changed verdict: one row, whose old and new rows cancel out and write nothing).
CREATE FUNCTION screening_stage_decisions_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_decisions (stage_id, reviewer_id, delta)
        SELECT stage_id, reviewer_id, SUM(sign) FROM (
            SELECT stage_id, reviewer_id, 1 AS sign FROM decisions_new
            UNION ALL
            SELECT stage_id, reviewer_id, -1 AS sign FROM decisions_old
        ) moved
        GROUP BY stage_id, reviewer_id HAVING SUM(sign) <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_decisions_update AFTER UPDATE ON screening_decision
    REFERENCING OLD TABLE AS decisions_old NEW TABLE AS decisions_new
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_decisions_update();

-- No decisions, no counts (a test database's flush truncates them).
CREATE FUNCTION screening_stage_decisions_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM screening_stage_decisions;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_decisions_truncate AFTER TRUNCATE ON screening_decision
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_decisions_truncate();
"""

DROP = """
DROP TRIGGER screening_stage_decisions_truncate ON screening_decision;
DROP TRIGGER screening_stage_decisions_update ON screening_decision;
DROP TRIGGER screening_stage_decisions_delete ON screening_decision;
DROP TRIGGER screening_stage_decisions_insert ON screening_decision;
DROP FUNCTION screening_stage_decisions_truncate();
DROP FUNCTION screening_stage_decisions_update();
DROP FUNCTION screening_stage_decisions_delete();
DROP FUNCTION screening_stage_decisions_insert();
DROP TABLE screening_stage_decisions;
"""


def _run(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("screening", "0015_stage_progress")]

    operations = [
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                fields=["stage", "reviewer", "created_at", "id"], name="decision_stage_latest"
            ),
        ),
        migrations.RunPython(_run(CREATE), _run(DROP)),
    ]
