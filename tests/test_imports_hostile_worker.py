"""Each hostile file of issue 12 (items 6 and 10) imported by the real Celery worker.

The bombs are stored as a file stored before uploads were checked would be (the upload check
is switched off in this process only), so the worker process meets them and must refuse them
by itself. For each file: the batch's final status and stored message, what was stored, the
time the worker spent on it (from the batch's own timestamps) and the growth of the worker
process's resident memory high-water mark (/proc/<pid>/status VmHWM; the worker runs with
--pool=solo, so the process the fixture started is the one that parses).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from screening.models import ImportBatch, Record
from screening.services.imports import batch_create, source_resolve

from . import hostile_files
from .conftest import celery_worker_idle_wait, celery_worker_process
from .factories import review_with_cast
from .waiting import wait_until

pytestmark = pytest.mark.worker

# Safety bounds, not performance targets: they separate "refused (or cut) before doing the
# work" from what the bombs would cost if expanded (minutes of work and gigabytes: the zip
# bomb took a worker from 230 MB to 2.3 GB in 26 s). Measured figures: docs/benchmarks.md.
SECONDS_BOUND = 5.0
MEMORY_BOUND = 64 * 2**20

SECRET = "the content of a server file"


@dataclass
class Hostile:
    name: str
    build: Callable[[Path], bytes]
    status: str
    message: list[str]
    records: list[str] = field(default_factory=list)  # the stored titles, in order
    absent: list[str] = field(default_factory=list)  # text the message must not hold


def _external_entity(tmp_path: Path) -> bytes:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    return hostile_files.external_entity(secret)


HOSTILE = [
    Hostile(
        "laughs.xml",
        lambda _: hostile_files.billion_laughs(),
        "failed",
        ["the XML declares its own entity 'lol'", "billion laughs"],
    ),
    Hostile(
        "blowup.xml",
        lambda _: hostile_files.quadratic_blowup(),
        "failed",
        ["the XML declares its own entity 'big'", "billion laughs"],
    ),
    Hostile(
        "xxe.xml",
        _external_entity,
        "failed",
        ["the XML refers to an outside file"],
        absent=[SECRET],
    ),
    Hostile(
        "bomb.xlsx",
        lambda _: _zip_bomb(),
        "failed",
        ["a ZIP bomb, not a spreadsheet", "1,073,741,824 bytes"],
        absent=["match no known export"],
    ),
    Hostile(
        "long.csv",
        lambda _: hostile_files.oversize_title_csv(5_000_000),
        "done",
        ["line 2: title cut from 5,000,000 to 2,000 characters"],
        records=["T" * 2_000],
    ),
    Hostile(
        "cell.csv",
        lambda _: hostile_files.oversize_title_csv(10_000_001),
        "failed",
        ["a cell holds more than 10,000,000 characters"],
    ),
    Hostile(
        "wide.ris",
        lambda _: hostile_files.utf16_ris(),
        "done",
        [],
        records=["Über Qualität 1<p≤2"],
        absent=["binary"],
    ),
]


@functools.cache
def _zip_bomb() -> bytes:
    return hostile_files.xlsx_zip_bomb()


def memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values


def reset_high_water_mark(pid: int) -> None:
    # Linux resets VmHWM to the current RSS on "5" (we started this process, so we may).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.fixture(scope="module")
def worker_media(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile-media")


@pytest.fixture(scope="module")
def hostile_worker(django_db_setup, django_db_blocker, celery_queue, worker_media):
    # One worker for the module (starting one takes seconds): each file is one task of it.
    with celery_worker_process(celery_queue, worker_media) as process:
        yield process


@pytest.fixture(autouse=True)
def worker_idle_before_flush(hostile_worker, celery_queue, transactional_db):
    # Torn down before transactional_db flushes the tables: the dedup a done import queues may
    # still be running in the worker.
    yield
    celery_worker_idle_wait(celery_queue)


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_file_in_the_real_worker(
    hostile_worker, worker_media, transactional_db, settings, monkeypatch, tmp_path, hostile
):
    settings.MEDIA_ROOT = worker_media
    review, cast = review_with_cast()
    data = hostile.build(tmp_path)
    # As if stored before uploads were checked: the worker must refuse it on its own.
    monkeypatch.setattr("screening.domain.parsers.check_container", lambda *a, **k: None)
    pid = hostile_worker.pid
    reset_high_water_mark(pid)
    # Growth is measured from the RSS at the reset: if the idle worker shrinks meanwhile, the
    # figure only grows (the bound stays on the safe side).
    before = memory_kb(pid)
    batch = batch_create(
        review=review,
        source=source_resolve(review=review, name="Hostile library"),
        uploaded_by=cast["owner"],
        file_name=hostile.name,
        data=data,
    )
    batch = wait_until(
        lambda: ImportBatch.objects.filter(pk=batch.pk, status__in=["done", "failed"]).first(),
        timeout=120,
    )
    after = memory_kb(pid)
    growth = (after["VmHWM"] - before["VmRSS"]) * 1024
    seconds = (batch.finished_at - batch.started_at).total_seconds()
    print(f"\n{hostile.name}: {seconds:.3f} s, VmHWM growth {growth / 2**20:.1f} MB")

    assert batch.status == hostile.status, batch.error
    text = batch.error if hostile.status == "failed" else " ".join(batch.report["warnings"])
    for words in hostile.message:
        assert words in text
    if hostile.status == "failed":
        # Shown next to the file's name on the imports page.
        assert batch.error.startswith("The file could not be read: ")
    for words in hostile.absent:
        assert words not in batch.error and words not in str(batch.report)
    stored = list(
        Record.objects.filter(review=review).order_by("id").values_list("title", flat=True)
    )
    assert stored == hostile.records
    assert batch.records_read == len(hostile.records)
    assert batch.created_at <= batch.started_at < batch.finished_at
    assert seconds < SECONDS_BOUND
    assert growth < MEMORY_BOUND
