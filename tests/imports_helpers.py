"""Shared fixtures and helpers of the import tests."""

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from screening.models import ImportBatch, Source
from screening.services import imports

from .conftest import SHARED_DATA

SCOPUS_RIS = SHARED_DATA / "exports/synthesisr/scopus.ris"  # 92 records, 3 without abstract
SCOPUS_RIS_RECORDS = 92


class SentTasks:
    """Records current_app.send_task calls instead of talking to the broker."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def send_task(self, name, kwargs=None, **_options):
        self.calls.append((name, kwargs or {}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture(name="media_root")
def media_root_fixture(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(name="sent_tasks")
def sent_tasks_fixture(monkeypatch):
    sent = SentTasks()
    # Every service sends its tasks through the one queue helper (deduplication included).
    monkeypatch.setattr("screening.services.queue.current_app", sent)
    return sent


def ris_bytes(entries: list[tuple[str, str]]) -> bytes:
    lines = []
    for title, doi in entries:
        lines += ["TY  - JOUR", f"TI  - {title}", "AU  - Smith, Ann", "PY  - 2020"]
        lines += [f"DO  - {doi}", "T2  - Journal of MLOps", "ER  - ", ""]
    return "\n".join(lines).encode()


def imported(review, owner, name: str, entries) -> ImportBatch:
    batch = imports.batch_create(
        review=review,
        source=imports.source_resolve(review=review, name=name),
        uploaded_by=owner,
        file_name=f"{name}.ris",
        data=ris_bytes(entries),
        enqueue=False,
    )
    return imports.batch_run(batch_id=batch.pk)


def export_import(review, source: Source, path: Path) -> ImportBatch | str:
    """The export at `path` imported into the review as the worker imports it (no task
    sent): its batch, or the reason it was refused."""
    with open(path, "rb") as export:
        try:
            batch = imports.batch_create(
                review=review,
                source=source,
                uploaded_by=None,
                file_name=path.name,
                data=export,
                enqueue=False,
            )
        except ValidationError as error:
            return " ".join(error.messages)
    return imports.batch_run(batch_id=batch.pk)
