"""Waiting on a condition (a real worker's work) instead of sleeping for a fixed time."""

import time


def wait_until(condition, timeout: float = 60, every: float = 0.2):
    """The first truthy value of `condition()`, polled every `every` s; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
