"""Holding something in another thread, as a concurrent request or task would (a row lock, an
advisory lock), while a test acts."""

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from django.db import connection


@contextmanager
def held_in_another_thread(hold: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
    """`hold()` entered in another thread, on that thread's own database connection, and held
    for the block; released and the thread joined after it."""
    holding, release = threading.Event(), threading.Event()

    def hold_until_released() -> None:
        try:
            with hold():
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()  # the thread's own

    thread = threading.Thread(target=hold_until_released)
    thread.start()
    try:
        assert holding.wait(timeout=30), "the other thread never held it"
        yield
    finally:
        release.set()
        thread.join(timeout=30)
