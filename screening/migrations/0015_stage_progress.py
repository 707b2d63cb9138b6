"""Screening at a million studies: "left for you" without reading the stage's decisions.

Left for reviewer R in stage S = waiting(S) - full(S) - mine_open(S, R), where full(S) counts
the studies waiting in S with at least S.reviewers_required decisions there, and mine_open(S, R)
those R decided there that are not full. Counted by grouping the stage's decisions, it took
1.4 s per decision with 500,000 decisions in the stage (docs/benchmarks.md).

- `screening_stage_progress`: full(S) (rows with `reviewer_id` NULL) and mine_open(S, R) kept as
  signed deltas by PostgreSQL triggers, in the transaction of the change, like the waiting
  counts of 0014; `stage_progress_compact` (the periodic sweep) folds them. A study counts only
  while it waits in the stage (outcome "screening"), and only as "full", never by its verdicts
  (blind mode).
- Triggers on the decisions (statement level: insert, delete, and an update of a decision's
  study, stage or reviewer, e.g. a merge carrying decisions to the surviving study) recount the
  studies they touch before and after the statement; triggers on the studies (a move between
  stages or an outcome change, row level so the ranking's priority writes do not fire them; a
  delete) recount the study's decisions in its old and new stage. Each locks the studies it
  counts (FOR NO KEY UPDATE, so two transactions deciding on one study count one after the
  other) and their stages (FOR KEY SHARE, which waits for a change of reviewers_required:
  `stage_update` locks the stage FOR UPDATE and recounts it).
- A study is inserted before its decisions (Django's order, the restore's table order), so an
  inserted study has no decisions to count.
- `screening_stage_progress_recount(stages)` adds to each stage's rows what makes them equal to
  a recount from the decisions, in one statement (so a compaction running meanwhile cannot make
  it count twice): it fills the counts here, and `stage_update` runs it when reviewers_required
  changes. SQLite (the embedded default, small reviews) groups the decisions instead.
"""

from django.db import migrations

SCREENING = "screening"


def _shifts(rows: str) -> str:
    """The deltas of `rows` (sign, study_id, stage_id, reviewer_id, required), one row per
    decision of a study waiting in its stage, as (stage_id, reviewer_id, delta): a study whose
    decisions with one sign reach `required` counts once as full (reviewer NULL), otherwise once
    for each of its reviewers."""
    return f"""
        SELECT stage_id, reviewer, SUM(sign) AS delta FROM (
            SELECT sign, stage_id, CASE WHEN n >= required THEN NULL ELSE reviewer_id END
                AS reviewer
            FROM (
                SELECT r.sign, r.stage_id, r.reviewer_id, r.required,
                    COUNT(*) OVER same AS n, ROW_NUMBER() OVER same AS k
                FROM ({rows}) r
                WINDOW same AS (PARTITION BY r.sign, r.study_id, r.stage_id)
            ) counted
            WHERE n < required OR k = 1
        ) shifted
        GROUP BY stage_id, reviewer HAVING SUM(sign) <> 0"""


def _insert(rows: str) -> str:
    return f"INSERT INTO screening_stage_progress (stage_id, reviewer_id, delta) {_shifts(rows)};"


def _waiting(decisions: str, sign: str) -> str:
    """The `decisions` (a relation) whose study waits in their stage, each with `sign` and the
    stage's required decisions."""
    return f"""
        SELECT {sign} AS sign, d.study_id, d.stage_id, d.reviewer_id,
            g.reviewers_required AS required
        FROM {decisions} d
        JOIN screening_study s ON s.id = d.study_id AND s.current_stage_id = d.stage_id
            AND s.outcome = '{SCREENING}'
        JOIN screening_stage g ON g.id = d.stage_id"""


# A trigger's statements are planned once per session, for the size of the first statement's
# transition table. Nested loops over index lookups keep every later call linear in the rows it
# touches, whatever size was planned first (a hash join planned for a bulk insert would read the
# whole decisions or studies table on each later single decision).
INDEXED = "SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off"


def _decision_function(name: str, old: str, new: str) -> str:
    """A statement trigger's function on the decisions: `old` and `new` are the rows the
    statement removed and added (relations of decisions; empty for insert / delete). The
    touched studies' decisions before the statement are those now, less `new`, plus `old`
    (summed per decision key: an update that moved nothing cancels out)."""
    touched = f"SELECT study_id, stage_id FROM {old} o UNION SELECT study_id, stage_id FROM {new} n"
    now = _waiting(
        f"(SELECT d.* FROM ({touched}) t JOIN screening_decision d"
        " ON d.study_id = t.study_id AND d.stage_id = t.stage_id)",
        "1",
    )
    before = f"""
        SELECT -1 AS sign, study_id, stage_id, reviewer_id, required
        FROM ({now} UNION ALL {_waiting(new, "-1")} UNION ALL {_waiting(old, "1")}) weighed
        GROUP BY study_id, stage_id, reviewer_id, required HAVING SUM(sign) > 0"""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {INDEXED} AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {old} o) AND NOT EXISTS (SELECT 1 FROM {new} n) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM screening_study WHERE id IN (SELECT study_id FROM ({touched}) t)
        ORDER BY id FOR NO KEY UPDATE;
    PERFORM 1 FROM screening_stage WHERE id IN (SELECT stage_id FROM ({touched}) t)
        ORDER BY id FOR KEY SHARE;
    {_insert(f"{now} UNION ALL {before}")}
    RETURN NULL;
END $$;"""


NO_DECISIONS = "(SELECT * FROM screening_decision WHERE false)"


def _study_rows(study: str, sign: str) -> str:
    return f"""
        SELECT {sign} AS sign, d.study_id, d.stage_id, d.reviewer_id,
            g.reviewers_required AS required
        FROM screening_decision d JOIN screening_stage g ON g.id = d.stage_id
        WHERE {study}.outcome = '{SCREENING}' AND d.study_id = {study}.id
            AND d.stage_id = {study}.current_stage_id"""


def _recount_rows() -> str:
    """Every decision of a study waiting at its stage, in the stages `stage_ids`."""
    return f"""
        SELECT 1 AS sign, d.study_id, d.stage_id, d.reviewer_id,
            g.reviewers_required AS required
        FROM screening_decision d
        JOIN screening_study s ON s.id = d.study_id AND s.current_stage_id = d.stage_id
            AND s.outcome = '{SCREENING}'
        JOIN screening_stage g ON g.id = d.stage_id
        WHERE d.stage_id = ANY(stage_ids)"""


CREATE = f"""
CREATE TABLE screening_stage_progress (
    id bigserial PRIMARY KEY, stage_id bigint NOT NULL, reviewer_id integer, delta bigint NOT NULL
);
CREATE INDEX screening_stage_progress_stage
    ON screening_stage_progress (stage_id, reviewer_id) INCLUDE (delta);

CREATE FUNCTION screening_stage_progress_recount(stage_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO screening_stage_progress (stage_id, reviewer_id, delta)
        SELECT stage_id, reviewer, SUM(delta) FROM (
            SELECT stage_id, reviewer_id AS reviewer, -delta AS delta
            FROM screening_stage_progress WHERE stage_id = ANY(stage_ids)
            UNION ALL
            {_shifts(_recount_rows())}
        ) corrected
        GROUP BY stage_id, reviewer HAVING SUM(delta) <> 0;
END $$;
SELECT screening_stage_progress_recount(ARRAY(SELECT id FROM screening_stage));

{_decision_function("screening_stage_progress_insert", NO_DECISIONS, "progress_new")}
CREATE TRIGGER screening_stage_progress_insert AFTER INSERT ON screening_decision
    REFERENCING NEW TABLE AS progress_new
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_insert();

{_decision_function("screening_stage_progress_delete", "progress_old", NO_DECISIONS)}
CREATE TRIGGER screening_stage_progress_delete AFTER DELETE ON screening_decision
    REFERENCING OLD TABLE AS progress_old
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_delete();

-- Transition tables cannot go with a column list: it fires on every update of decisions (a
-- changed verdict: one row, whose old and new rows cancel out).
{_decision_function("screening_stage_progress_update", "progress_old", "progress_new")}
CREATE TRIGGER screening_stage_progress_update AFTER UPDATE ON screening_decision
    REFERENCING OLD TABLE AS progress_old NEW TABLE AS progress_new
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_update();

-- No decisions, no progress (a test database's flush truncates them).
CREATE FUNCTION screening_stage_progress_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM screening_stage_progress;
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_progress_truncate AFTER TRUNCATE ON screening_decision
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_truncate();
CREATE TRIGGER screening_stage_progress_truncate AFTER TRUNCATE ON screening_study
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_truncate();

-- Row level, only when a study's stage or outcome changes (as 0014's waiting count).
CREATE FUNCTION screening_stage_progress_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.outcome <> '{SCREENING}' OR OLD.current_stage_id IS NULL)
            AND (NEW.outcome <> '{SCREENING}' OR NEW.current_stage_id IS NULL) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM screening_stage WHERE id IN (OLD.current_stage_id, NEW.current_stage_id)
        ORDER BY id FOR KEY SHARE;
    {_insert(f"{_study_rows('OLD', '-1')} UNION ALL {_study_rows('NEW', '1')}")}
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_progress_move
    AFTER UPDATE OF current_stage_id, outcome ON screening_study FOR EACH ROW
    WHEN ((OLD.current_stage_id, OLD.outcome) IS DISTINCT FROM (NEW.current_stage_id, NEW.outcome))
    EXECUTE FUNCTION screening_stage_progress_move();

-- A study deleted before its decisions (the foreign keys are checked at commit) takes its
-- counts with it; deleted after them, it has none left.
CREATE FUNCTION screening_stage_progress_study_delete() RETURNS trigger LANGUAGE plpgsql
{INDEXED} AS $$
BEGIN
    PERFORM 1 FROM screening_stage WHERE id IN (SELECT current_stage_id FROM progress_gone)
        ORDER BY id FOR KEY SHARE;
    {
    _insert(
        "SELECT -1 AS sign, d.study_id, d.stage_id, d.reviewer_id,"
        " g.reviewers_required AS required"
        " FROM progress_gone o JOIN screening_decision d ON d.study_id = o.id"
        " AND d.stage_id = o.current_stage_id JOIN screening_stage g ON g.id = d.stage_id"
        f" WHERE o.outcome = '{SCREENING}'"
    )
}
    RETURN NULL;
END $$;
CREATE TRIGGER screening_stage_progress_study_delete AFTER DELETE ON screening_study
    REFERENCING OLD TABLE AS progress_gone
    FOR EACH STATEMENT EXECUTE FUNCTION screening_stage_progress_study_delete();
"""

DROP = """
DROP TRIGGER screening_stage_progress_study_delete ON screening_study;
DROP TRIGGER screening_stage_progress_move ON screening_study;
DROP TRIGGER screening_stage_progress_truncate ON screening_study;
DROP TRIGGER screening_stage_progress_truncate ON screening_decision;
DROP TRIGGER screening_stage_progress_update ON screening_decision;
DROP TRIGGER screening_stage_progress_delete ON screening_decision;
DROP TRIGGER screening_stage_progress_insert ON screening_decision;
DROP FUNCTION screening_stage_progress_study_delete();
DROP FUNCTION screening_stage_progress_move();
DROP FUNCTION screening_stage_progress_truncate();
DROP FUNCTION screening_stage_progress_update();
DROP FUNCTION screening_stage_progress_delete();
DROP FUNCTION screening_stage_progress_insert();
DROP FUNCTION screening_stage_progress_recount(bigint[]);
DROP TABLE screening_stage_progress;
"""


def _run(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("screening", "0014_stage_waiting")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
