"""Pure-Python work shared out among processes forked from this one (both cores of a machine).

A deduplication run's scans and scoring are Python loops over data the run already holds (a
million records' features): threads would take turns on the GIL, and a process pool would
pickle that data to every process. A child forked from the run's process reads it where it is
(the pages are shared until written) and sends back only its results, pickled through a pipe.

Used for CPU-bound work on data held in memory only: a child never touches the database (its
connection is the parent's) and leaves by `os._exit`, running nothing of the parent's at exit.
Where `os.fork` is missing (Windows), or one process is asked for, the work runs here.
"""

import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class ForkedWorkFailed(RuntimeError):
    """A forked child failed (its traceback is the message) or died without an answer."""


def forked_map(
    work: Callable[[Item], Result], items: Sequence[Item], processes: int
) -> list[Result]:
    """`[work(item) for item in items]`, the items dealt out among `processes` processes as
    cards are (item k to process k % processes): this one takes the first item, a forked child
    the next, and so on. Dealt, not cut in contiguous shares, so that a sequence whose cost
    drifts from one end to the other (a phase's pairs, sorted) gives each process its part of
    the dear and the cheap. The results come back in the items' order, as if computed here;
    what `work` changes in memory is lost in a child (`work` returns what it found)."""
    processes = min(processes, len(items))
    if processes < 2 or not hasattr(os, "fork"):
        return [work(item) for item in items]
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        for k in range(1, processes):
            children.append(_fork(work, items[k::processes]))
        results: list[Result | None] = [None] * len(items)
        results[::processes] = [work(item) for item in items[::processes]]
        for k in range(1, processes):
            pid, pipe = children.pop(0)
            results[k::processes] = _answer(pid, pipe)
        return results  # type: ignore[return-value]  # every place filled
    finally:
        # Something failed here or in a child: the children left are stopped, not waited for.
        for pid, pipe in children:
            os.kill(pid, signal.SIGKILL)
            os.close(pipe)
            _reap(pid)


def spans(count: int, parts: int) -> list[tuple[int, int]]:
    """range(count) cut in `parts` contiguous spans of near-equal size, (start, end) each: a
    sequence's items to share out (`forked_map`) without copying them."""
    parts = max(1, min(parts, count))
    return [(count * k // parts, count * (k + 1) // parts) for k in range(parts)]


def _fork(work: Callable[[Item], Result], share: Sequence[Item]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    # The child: its results (or its failure) down the pipe, then out without any clean-up of
    # the parent's (database connections, buffered files, atexit handlers).
    status = 0
    try:
        os.close(read_end)
        try:
            answer: tuple[bool, object] = (True, [work(item) for item in share])
        except BaseException:  # noqa: BLE001 - whatever it is, the parent raises it
            answer = (False, traceback.format_exc())
            status = 1
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump(answer, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001 - no answer sent: the parent says so
        status = 2
    finally:
        os._exit(status)


def _answer(pid: int, pipe: int) -> list[Result]:
    """The child's results, read to the end before it is reaped (a full pipe would block it)."""
    with os.fdopen(pipe, "rb") as stream:
        data = stream.read()
    status = _reap(pid)
    if not data:
        raise ForkedWorkFailed(f"a forked process ended without an answer (status {status})")
    done, value = pickle.loads(data)
    if not done:
        raise ForkedWorkFailed(f"a forked process failed:\n{value}")
    return value  # type: ignore[no-any-return]


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
