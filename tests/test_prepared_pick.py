"""The screening pick is prepared once per database connection, not planned on every pick
(`screening/selectors/prepared.py`), and serves the same studies whichever connection runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from screening.models import Decision, ScreeningClaim
from screening.selectors.prepared import PreparedStatement
from screening.services.screening import decision_record, study_claim_next

from .screening_helpers import make_studies, stage

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def _prepared(plans: str = "generic_plans + custom_plans") -> dict[str, int]:
    """This session's slrweb statements and how often each ran since it was prepared (or was
    planned so: `plans="custom_plans"`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT statement, {plans} FROM pg_prepared_statements WHERE name LIKE 'slrweb\\_%%'"
        )
        return {statement: runs for statement, runs in cursor.fetchall()}


@pytest.mark.parametrize(
    ("values", "expected"), [({"a": 7, "b": 1}, (8, 2, "50%")), ({"a": 9, "b": 5}, (14, 4, "50%"))]
)
def test_a_prepared_statement_numbers_its_named_placeholders_and_keeps_literal_percents(
    db, values, expected
):
    statement = PreparedStatement(
        "SELECT CAST(%(a)s AS integer) + CAST(%(b)s AS integer),"
        " CAST(%(a)s AS integer) %% 5, '50%%'"
    )
    for _ in range(2):  # prepared by the first run on PostgreSQL, executed by both
        with connection.cursor() as cursor:
            statement.execute(cursor, values)
            assert cursor.fetchone() == expected


@postgresql_only
def test_the_pick_is_prepared_once_and_executed_by_every_pick(review, cast):
    title = stage(review)
    title.queue_order = "prioritised"
    title.save(update_fields=["queue_order"])
    make_studies(review, 6, priority=0.5)
    make_studies(review, 4)
    reviewer = cast["reviewer"]
    before, custom_before = _prepared(), _prepared("custom_plans")
    decided = []
    for _ in range(8):
        study = study_claim_next(review=review, stage=title, reviewer=reviewer)
        assert study is not None and study.pk not in decided
        decision_record(
            review=review, study=study, stage=title, reviewer=reviewer, verdict="exclude"
        )
        decided.append(study.pk)
    # (Statements an earlier test prepared on this connection ran 0 times here.)
    runs = {sql: count - before.get(sql, 0) for sql, count in _prepared().items()}
    picks = [n for sql, n in runs.items() if n and "FROM live UNION ALL" in sql]
    claims = [n for sql, n in runs.items() if n and "INSERT INTO screening_screeningclaim" in sql]
    # One prepared pick (the first pass) ran once per pick, and the claim once per study.
    assert picks == [8]
    assert claims == [8]
    # Planned once, generically, from the first run: not re-planned for each of its first five
    # runs on the connection, as PostgreSQL's default plan cache mode would.
    custom = {sql: n - custom_before.get(sql, 0) for sql, n in _prepared("custom_plans").items()}
    assert sum(custom.values()) == 0
    stored = list(
        Decision.objects.filter(stage=title, reviewer=reviewer).values_list("study_id", flat=True)
    )
    assert sorted(stored) == sorted(decided)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_the_pick_again_and_serves_the_same_claim(review, cast):
    title = stage(review)
    make_studies(review, 3)
    reviewer = cast["reviewer"]
    first = study_claim_next(review=review, stage=title, reviewer=reviewer)
    assert first is not None
    connection.close()  # as after CONN_MAX_AGE: a new server session, nothing prepared on it
    assert _prepared() == {}
    again = study_claim_next(review=review, stage=title, reviewer=reviewer)
    assert again == first  # the live claim, as a reload shows it
    assert list(ScreeningClaim.objects.filter(reviewer=reviewer).values_list("study_id")) == [
        (first.pk,)
    ]
    assert any("FROM live UNION ALL" in sql for sql in _prepared())


def test_a_web_process_keeps_its_database_session_ten_minutes():
    """Each new session prepares the pick again and fills the server's catalogue caches again:
    50-110 ms in the request that opened it, 1.2 % of 20 reviewers' decisions at one minute."""
    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['CONN_MAX_AGE'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "DB_CONN_MAX_AGE"} | {
        "DJANGO_SETTINGS_MODULE": "slrweb.settings",
        # PostgreSQL's settings whatever the suite runs on (SQLite keeps no connection): read,
        # never connected to.
        "DATABASE_URL": "postgres://slrweb@db.invalid:5432/slrweb",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert int(done.stdout) == 600
