"""The app's tables carry no index that another index already provides.

Every insert into a table, and every update that is not HOT, writes to each of its indexes. A
foreign key gets its own index by default, though a composite index or unique constraint that
starts with the same column serves the same lookups: at a million records the record table
had seven indexes where five serve, on every imported row and every record a dedup run
assigns to its study (docs/benchmarks.md, "Dedup at one million records").
"""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue"),
]

# Each B-tree index of the app's tables, whole (no WHERE): its table, name, columns in order.
INDEXES_SQL = """
SELECT t.relname, i.relname, ARRAY(
    SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n
), x.indisunique
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_am am ON am.oid = i.relam
WHERE t.relname LIKE 'screening\\_%%' AND am.amname = 'btree' AND x.indpred IS NULL
"""


def test_no_index_of_the_app_repeats_the_leading_columns_of_another():
    with connection.cursor() as cursor:
        cursor.execute(INDEXES_SQL)
        indexes = cursor.fetchall()
    assert len(indexes) > 40  # the query sees the app's tables
    # Django's own many-to-many tables keep theirs (an explicit through model each otherwise).
    through_tables = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.auto_created
    }
    indexes = [index for index in indexes if index[0] not in through_tables]
    redundant = sorted(
        f"{table}.{name} {columns} (served by {other_name} {other})"
        for table, name, columns, unique in indexes
        if not unique
        for other_table, other_name, other, _ in indexes
        if other_table == table
        and other_name != name
        and len(other) > len(columns)
        and other[: len(columns)] == columns
    )
    assert redundant == []
