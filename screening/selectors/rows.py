"""Model instances read by SQL text instead of the ORM's compiler, for the hottest requests.

Building a statement through the ORM's compiler costs the web process ~0.3-0.9 ms of CPU; the
same read sent as SQL text ~0.1 ms. Every screening decision makes several such reads (the
membership and review, the stage, its reasons, the studies it locks and shows), so they come
through here (docs/benchmarks.md, "HTTP latency"). Elsewhere the ORM stays the way to read.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.db.models.expressions import Col

_M = TypeVar("_M", bound=Model)


@functools.cache
def model_columns(model: type[Model], alias: str = "") -> str:
    """Every column of `model` (quoted, prefixed by `alias.` if given), in the order
    `model_rows` reads them."""
    prefix = f"{alias}." if alias else ""
    quote = connection.ops.quote_name
    return ", ".join(f"{prefix}{quote(f.column)}" for f in model._meta.concrete_fields)


@functools.cache
def _model_fields(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[int, Col]]]:
    """`model`'s attribute names, and the columns (index, expression) whose values a converter
    changes on this database (JSON fields; on SQLite also dates, booleans, decimals)."""
    fields = model._meta.concrete_fields
    columns = [(i, f.get_col(model._meta.db_table)) for i, f in enumerate(fields)]
    converted = [
        (i, column)
        for i, column in columns
        if connection.ops.get_db_converters(column) or column.get_db_converters(connection)
    ]
    return [f.attname for f in fields], converted


def model_rows(model: type[_M], sql: str, params: Any) -> list[tuple[_M, tuple[Any, ...]]]:
    """The instances of `model` a statement reads, each with the row's further columns.

    `sql` selects `model_columns(model, ...)` first. The values pass through the fields' and
    the database's converters, as the ORM's own reads do. Every screening decision reads the
    review, the stage, its reasons and the studies it locks and shows: built by the ORM's
    compiler each such read cost the web process ~0.5 ms of CPU, as SQL read here ~0.1 ms
    (docs/benchmarks.md, "HTTP latency").
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return model_instances(model, cursor.fetchall())


def model_instances(
    model: type[_M], rows: list[tuple[Any, ...]]
) -> list[tuple[_M, tuple[Any, ...]]]:
    """`model_rows` for rows already fetched (a statement that writes and reads in one round
    trip, say): each row starts with `model_columns(model, ...)`."""
    db = connections[DEFAULT_DB_ALIAS]
    attnames, converted = _model_fields(model, db.vendor)
    converters = [
        (i, column, db.ops.get_db_converters(column) + column.get_db_converters(db))
        for i, column in converted
    ]
    width = len(attnames)
    read = []
    for row in rows:
        values = list(row[:width])
        for i, column, fns in converters:
            for convert in fns:
                values[i] = convert(values[i], column, db)
        read.append((model.from_db(db.alias, attnames, values), tuple(row[width:])))
    return read
