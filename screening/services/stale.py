"""Stale writes: every edit that two people (or two tabs) can make carries the version it saw.

A service compares the version the form carried with the stored row's; when they differ and the
user did not ask to apply their change anyway, it raises `StaleWrite` and writes nothing. The view
answers 409 through `screening.views.stale.stale_write_response`, which shows the stored value,
who wrote it and when, and a one-key way to apply the user's change anyway. A forced write is
audited by the service with `action="<noun>.overwrite"` and the version it replaced.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class StaleWrite(Exception):
    """The user's write was based on a version that has since changed; nothing was written."""

    what: str  # what the user tried to change, e.g. "your decision on this study"
    current: str  # the stored value, as the user would read it
    current_version: int
    by: str = ""  # who wrote the stored value (username), "" when unknown
    at: datetime | None = None  # when it was written

    def __str__(self) -> str:
        who = f" by {self.by}" if self.by else ""
        return f"{self.what} was changed{who} since you opened it: it is now {self.current}."


def version_check(
    *, stored_version: int, seen_version: int | None, force: bool, **details: Any
) -> None:
    """Refuse a write whose `seen_version` is not the stored one (unless `force`).

    A row that does not exist yet has version 0; `seen_version=None` (a form that carried no
    version: an old tab or a script) counts as 0, so it may create a row but never overwrite
    one blindly. Pass the `StaleWrite` fields (what, current, by, at) as keywords.
    """
    if force or (seen_version or 0) == stored_version:
        return
    raise StaleWrite(current_version=stored_version, **details)
