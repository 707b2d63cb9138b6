"""Import benchmark: a 100,000-record RIS file built from the real records in ../shared/data,
imported end to end (parse + insert into PostgreSQL) through batch_run, the code the Celery
task runs. Reports wall time, peak memory (RSS) and, from the same file in the same run, our
bare parse time and rispy's.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/import_bench.py [--records N]

Prints one JSON object. The review it creates is deleted at the end.
"""

import argparse
import gc
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
SHARED_DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
_RECORD = re.compile(r"^TY  - .*?^ER  -[^\n]*\n", re.M | re.S)


def rss_mb() -> float:
    """Current resident set size of this process, from /proc (no psutil needed)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples RSS every 50 ms in a thread: the peak of one phase, not of the whole process."""

    def __init__(self):
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def real_ris_records() -> list[str]:
    """Every record of the real RIS exports listed as RIS in INVENTORY.tsv."""
    records = []
    inventory = (SHARED_DATA / "INVENTORY.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for row in inventory:
        path, fmt = row.split("\t")[:2]
        if fmt != "RIS" or not path.startswith("exports/"):
            continue
        raw = (SHARED_DATA / path).read_bytes()
        text = raw.decode("utf-8-sig", errors="replace")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        records.extend(_RECORD.findall(text))
    return records


def build_file(target: int, path: Path) -> int:
    source = real_ris_records()
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for index in range(target):
            out.write(source[index % len(source)])
            out.write("\n")
    return len(source)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    from screening.domain.parsers import ParsedRecord, iter_entries
    from screening.models import Record, Review
    from screening.services.imports import batch_create, batch_run, source_resolve
    from screening.services.reviews import review_create

    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")
    from django.conf import settings

    settings.MEDIA_ROOT = work / "media"
    # Production runs with DEBUG off (no query log kept in memory).
    settings.DEBUG = False
    # 100,000 real records (WoS entries carry their cited references) make about 270 MB,
    # above the 200 MB default limit, which is configurable (IMPORT_MAX_BYTES).
    settings.IMPORT_MAX_BYTES = 1024 * 1024 * 1024
    ris_path = work / "bench.ris"
    distinct = build_file(args.records, ris_path)
    size_mb = ris_path.stat().st_size / (1024 * 1024)

    slug = f"bench-import-{int(time.time())}"
    review = review_create(slug=slug, title="Import benchmark")
    try:
        source = source_resolve(review=review, name="Benchmark")
        baseline = rss_mb()
        with PeakRss() as create_peak:
            started = time.perf_counter()
            batch = batch_create(
                review=review,
                source=source,
                uploaded_by=None,
                file_name="bench.ris",
                data=ris_path.read_bytes(),
                enqueue=False,
            )
            create_seconds = time.perf_counter() - started
        gc.collect()
        before_run = rss_mb()
        with PeakRss() as run_peak:
            started = time.perf_counter()
            batch = batch_run(batch_id=batch.pk)
            run_seconds = time.perf_counter() - started
        assert batch.status == "done", batch.error
        stored = Record.objects.filter(batch=batch).count()

        gc.collect()
        started = time.perf_counter()
        with open(ris_path, "rb") as handle:
            parsed = sum(
                1 for item in iter_entries(handle, "ris") if isinstance(item, ParsedRecord)
            )
        our_parse_seconds = time.perf_counter() - started

        import rispy

        gc.collect()
        before_rispy = rss_mb()
        with PeakRss() as rispy_peak:
            started = time.perf_counter()
            with open(ris_path, encoding="utf-8") as handle:
                rispy_entries = rispy.load(handle)
            rispy_seconds = time.perf_counter() - started
        rispy_count = len(rispy_entries)
        del rispy_entries
    finally:
        Review.objects.filter(slug=slug).delete()
        # The generated file and its stored copy are about 550 MB.
        shutil.rmtree(work, ignore_errors=True)

    server = ""
    if connection.vendor == "postgresql":
        server = f" {connection.cursor().connection.info.server_version}"
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {connection.vendor}{server}",
        "load_average": os.getloadavg(),
        "file": {
            "records": args.records,
            "distinct_real_records": distinct,
            "mb": round(size_mb, 1),
        },
        "upload_seconds": round(create_seconds, 2),
        "import_seconds": round(run_seconds, 2),
        "records_stored": stored,
        "records_per_second": round(stored / run_seconds),
        "rss_mb": {
            "baseline": round(baseline, 1),
            "peak_upload": round(create_peak.peak, 1),
            "before_import": round(before_run, 1),
            "peak_import": round(run_peak.peak, 1),
            "peak_rispy": round(rispy_peak.peak, 1),
            "before_rispy": round(before_rispy, 1),
        },
        "slrweb_parse_only_seconds": round(our_parse_seconds, 2),
        "slrweb_parse_only_records": parsed,
        "rispy_load_seconds": round(rispy_seconds, 2),
        "rispy_records": rispy_count,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
