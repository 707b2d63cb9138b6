"""Statements PostgreSQL parses and plans once per connection, for the hottest requests.

The screening pick (`services/screening.py`, `_pick_statement`) is one statement of up to seven
queue branches, 8,900 characters with 98 placeholders. Sent as text on every pick, PostgreSQL
spent 4-5 ms planning it and psycopg ~1 ms merging its parameters (psycopg caches that work
only for statements under 4,096 characters), for ~1 ms of execution (docs/benchmarks.md,
"Prepared pick"). Prepared once on each connection (`PREPARE ... AS`, the named placeholders
numbered), a pick sends a short `EXECUTE`, planned once, generically: settings.py sets
`plan_cache_mode` so (by default PostgreSQL re-plans a prepared statement on each of its first
five runs on a connection). Other databases run the statement as written.

A prepared statement belongs to the server session: a pooler that hands one client's
transactions to several server sessions (PgBouncer in transaction mode) does not carry it, so
a pooler must keep each client on one server session (README, "Scaling out").
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Mapping
from typing import Any

from django.db.backends.utils import CursorWrapper

_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")

# The names prepared on each open connection, keyed by the driver's connection object: a
# reconnect replaces it (and its server session), so the statement is prepared again there.
_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class PreparedStatement:
    """One statement with `%(name)s` placeholders (and `%%` for a literal %), run prepared."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        names: list[str] = []

        def numbered(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self._body = _PLACEHOLDER.sub(numbered, sql)
        self._names = tuple(names)
        self.name = "slrweb_" + hashlib.sha256(sql.encode()).hexdigest()[:20]
        arguments = f" ({', '.join(['%s'] * len(names))})" if names else ""
        self._execute = f"EXECUTE {self.name}{arguments}"

    def execute(self, cursor: CursorWrapper, params: Mapping[str, Any]) -> None:
        """Run the statement on `cursor` with `params` (by name), preparing it first if this
        connection has not yet."""
        if cursor.db.vendor != "postgresql":
            cursor.execute(self.sql, params)
            return
        prepared = _PREPARED.setdefault(cursor.db.connection, set())
        if self.name not in prepared:
            # Not undone by a rollback: a prepared statement lives as long as the session.
            cursor.execute(f"PREPARE {self.name} AS {self._body}")
            prepared.add(self.name)
        cursor.execute(self._execute, [params[name] for name in self._names])
