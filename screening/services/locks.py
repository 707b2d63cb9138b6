"""PostgreSQL session advisory locks, keyed (space, key): work that must take turns per review
without locking a row. SQLite, the embedded default, has one writer anyway: there every lock
is free and taken at once."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def advisory_lock(space: int, key: int, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock for the block; yields whether it is held. `wait=False` does not wait for
    another holder: the block then runs with False and must do nothing."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s, %s), true", [space, key])
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [space, key])
        held = bool(cursor.fetchone()[-1])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [space, key])


def advisory_lock_free(space: int, key: int) -> bool:
    """True when nobody holds the lock (always on SQLite)."""
    with advisory_lock(space, key, wait=False) as held:
        return held
