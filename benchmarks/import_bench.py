"""Import benchmark: 100,000 RIS records end to end, beside a bare line scan of the same file.

One command (from the repository root; PostgreSQL, DEBUG off as in production):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_bench \\
        .venv/bin/python benchmarks/import_bench.py [--records N] [--no-dedup] [--profile FILE]

The file is built by cycling the real records of the RIS exports listed in
SLRWEB_SHARED_DATA/INVENTORY.tsv (about 273 MB for 100,000: Web of Science entries carry their
cited references). Each phase runs in a fresh process, so each peak RSS (the kernel's VmHWM of
that process) is its own and nothing is inherited; times are taken inside the process around
the work, so interpreter and Django start-up are not counted (a running server and worker
have paid them already):

  scan    the floor: open the file as text (UTF-8, universal newlines, as the parser reads it)
          and iterate its lines, counting "ER  -" lines. Run before and after the import; the
          ratio uses their mean.
  upload  the web process: Django's WSGI handler (what gunicorn calls) receives a multipart
          POST to the imports page whose body is streamed from the file, with a logged-in
          owner's session and CSRF token; the streaming upload handler writes it to disk and
          hashes it, the view calls `batch_create` (checks, stored copy, audit).
  import  the worker: the Celery task's function (`screening.batch_import`) on that batch:
          streaming parse, normalisation, one COPY into PostgreSQL, commit.
  parse   (for the analysis) our parser alone over the same file, no database.
  store   (the floor of the design) the line scan with each record's lines joined, and one
          COPY of those texts into a plain table of one compressed text column, committed:
          what storing these records in PostgreSQL costs with no parsing, no JSON, no index.
          Upload + store is the least an import through the web and PostgreSQL can take,
          reported beside the end to end as "floor_ratio".
  dedup   the deduplication the import triggers (a separate task, `--no-dedup` skips it).

End to end = upload + import. The broker is an in-memory one in every phase, so nothing is
sent to a real worker (the phases call the task functions themselves). Prints one JSON object
and, last, a Markdown table row for docs/benchmarks.md. The review, its user and the files
are deleted at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
_RECORD = re.compile(r"^TY  - .*?^ER  -[^\n]*\n", re.M | re.S)
SLUG_PREFIX = "bench-import-"
BOUNDARY = "----slrweb-import-bench-" + secrets.token_hex(8)
CSRF_TOKEN = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret


def proc_status() -> dict[str, float]:
    """This process's VmRSS and VmHWM (peak RSS) in MB, from /proc."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line[:5]] = int(line.split()[1]) / 1024
    return values


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


# --- the phases, each in its own process ----------------------------------------------------


def phase_scan(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    closed = 0
    with open(args.file, encoding="utf-8", newline=None) as handle:
        for line in handle:
            if line.startswith("ER  -"):
                closed += 1
    return {"seconds": time.perf_counter() - started, "records": closed}


def _django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
    import django

    django.setup()


class MultipartBody(io.RawIOBase):
    """A multipart/form-data body read from its parts on demand: the file is streamed from
    disk in the reads the server makes, never held whole."""

    def __init__(self, fields: dict[str, str], file_field: str, path: Path):
        super().__init__()
        head = b"".join(
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
            for name, value in fields.items()
        )
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(tail)
        self._parts: list[bytes | Path] = [head, path, tail]
        self._pending = b""
        self._file: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def _next_bytes(self, size: int) -> bytes:
        while self._parts or self._file is not None:
            if self._file is not None:
                chunk = self._file.read(size)
                if chunk:
                    return chunk
                self._file.close()
                self._file = None
                continue
            part = self._parts.pop(0)
            if isinstance(part, Path):
                self._file = open(part, "rb")  # noqa: SIM115 (closed when read to its end)
                continue
            return part
        return b""

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self._pending or self._next_bytes(len(buffer))
        size = min(len(data), len(buffer))
        buffer[:size] = data[:size]
        self._pending = data[size:]
        return size


def phase_upload(args: argparse.Namespace) -> dict:
    _django()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client
    from django.urls import get_resolver

    from screening.models import ImportBatch
    from screening.services.reviews import review_create

    owner = User.objects.create_user(args.slug, password=secrets.token_urlsafe(16))
    review = review_create(slug=args.slug, title="Import benchmark", owner=owner)
    client = Client()
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    body = MultipartBody({"new_source": "Benchmark"}, "files", Path(args.file))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/r/{review.slug}/imports/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(body.length),
        "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={session}; "
        f"{settings.CSRF_COOKIE_NAME}={CSRF_TOKEN}",
        "HTTP_X_CSRFTOKEN": CSRF_TOKEN,
        "wsgi.input": io.BufferedReader(body, 1 << 16),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    answer: list[str] = []
    application = WSGIHandler()
    # A serving process has imported its views already: so does this one before the clock.
    get_resolver().url_patterns  # noqa: B018 (the property imports every view module)
    before = proc_status()["VmRSS"]
    started = time.perf_counter()
    response = application(environ, lambda status, headers, exc_info=None: answer.append(status))
    for _chunk in response:
        pass
    response.close()
    seconds = time.perf_counter() - started
    batch = ImportBatch.objects.filter(review=review).first()
    if batch is None:
        raise SystemExit(f"the upload was not stored: HTTP {answer}")
    return {
        "seconds": seconds,
        "http_status": answer[0],
        "batch": batch.pk,
        "review": review.pk,
        "rss_before_mb": before,
    }


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time of a PostgreSQL backend process, when the server runs on this machine."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> float | None:
    """CPU time of every PostgreSQL process on this machine, the backends that exited
    included (their time is added to the server's main process when it reaps them): what a
    run's several connections cost the server, measured before and after it."""
    total = 0.0
    found = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                name, rest = stat.read().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        if not name.startswith("postgres"):
            continue
        fields = rest.split()
        found = True
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total if found else None


def phase_import(args: argparse.Namespace) -> dict:
    _django()
    from django.db import connection

    from screening.models import ImportBatch
    from screening.tasks.imports import batch_import

    before = proc_status()["VmRSS"]
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    backend_before = backend_cpu_seconds(backend)
    cpu_before = time.process_time()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    outcome = batch_import(args.batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    backend_after = backend_cpu_seconds(backend)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    batch = ImportBatch.objects.get(pk=args.batch)
    if batch.status != ImportBatch.Status.DONE:
        raise SystemExit(f"the import failed: {batch.error}")
    same_backend = connection.connection.info.backend_pid == backend
    return {
        "seconds": seconds,
        "records": outcome["records"],
        "rss_before_mb": before,
        # Where the time went: this process's CPU, and its PostgreSQL backend's (local server).
        "worker_cpu_seconds": cpu,
        "postgres_cpu_seconds": backend_after - backend_before
        if same_backend and backend_before is not None and backend_after is not None
        else None,
    }


def phase_parse(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO))
    from screening.domain.parsers import ParsedRecord, iter_entries

    started = time.perf_counter()
    with open(args.file, "rb") as handle:
        parsed = sum(1 for item in iter_entries(handle, "ris") if isinstance(item, ParsedRecord))
    return {"seconds": time.perf_counter() - started, "records": parsed}


def phase_store(args: argparse.Namespace) -> dict:
    """The floor of any store of these records in PostgreSQL: the line scan, each record's
    lines joined, and one COPY of those texts into a plain table of one text column (compressed
    as `Record.raw` is), committed: no parsing, no JSON, no other column, index or foreign key.
    The table is a regular one, so its rows are written to the WAL as the records' are, and it
    is dropped afterwards."""
    _django()
    from django.db import connection

    connection.ensure_connection()
    pg = connection.connection
    table = f"import_bench_store_{os.getpid()}"
    with pg.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'screening_record'::regclass AND attname = 'raw'"
        )
        row = cursor.fetchone()
        compression = "lz4" if row and row[0] == "l" else "pglz"
        cursor.execute(f"CREATE TABLE {table} (text text COMPRESSION {compression})")
    pg.commit()
    backend = pg.info.backend_pid
    backend_before = backend_cpu_seconds(backend)
    stored = 0
    try:
        started = time.perf_counter()
        with pg.cursor() as cursor, cursor.copy(f"COPY {table} (text) FROM STDIN") as copy:
            lines: list[str] = []
            with open(args.file, encoding="utf-8", newline=None) as handle:
                for line in handle:
                    lines.append(line)
                    if line.startswith("ER  -"):
                        copy.write_row(("".join(lines),))
                        lines.clear()
                        stored += 1
        pg.commit()
        seconds = time.perf_counter() - started
        backend_after = backend_cpu_seconds(backend)
    finally:
        with pg.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        pg.commit()
    return {
        "seconds": seconds,
        "records": stored,
        "compression": compression,
        "postgres_cpu_seconds": None
        if backend_before is None or backend_after is None
        else backend_after - backend_before,
    }


def phase_dedup(args: argparse.Namespace) -> dict:
    _django()
    from screening.tasks.dedup import review_deduplicate_task

    before = proc_status()["VmRSS"]
    started = time.perf_counter()
    outcome = review_deduplicate_task(review_id=args.review)
    return {"seconds": time.perf_counter() - started, "outcome": outcome, "rss_before_mb": before}


PHASES = {
    "scan": phase_scan,
    "upload": phase_upload,
    "import": phase_import,
    "parse": phase_parse,
    "store": phase_store,
    "dedup": phase_dedup,
}


def run_phase(name: str, env: dict[str, str], **options: object) -> dict:
    command = [sys.executable, __file__, "--phase", name]
    for key, value in options.items():
        if value is not None:
            command += [f"--{key}", str(value)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cleanup(slug: str, env: dict[str, str]) -> None:
    code = (
        "import django, os; django.setup()\n"
        "from django.contrib.auth.models import User\n"
        "from screening.models import Review\n"
        f"Review.objects.filter(slug={slug!r}).delete()\n"
        f"User.objects.filter(username={slug!r}).delete()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--no-dedup", action="store_true", help="skip the dedup phase")
    parser.add_argument("--profile", help="write the import phase's cProfile stats here")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--review", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = PHASES[args.phase](args)
        status = proc_status()
        result["peak_rss_mb"] = status["VmHWM"]
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    slug = f"{SLUG_PREFIX}{int(time.time())}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "slrweb.settings",
        # Production: DEBUG off (no query log), plain HTTP here (no TLS redirect).
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", secrets.token_urlsafe(40)),
        "SECURE_SSL_REDIRECT": "0",
        "MEDIA_ROOT": str(work / "media"),
        "FILE_UPLOAD_TEMP_DIR": str(work),
        # The file is above the 200 MB default limit, which is a setting.
        "IMPORT_MAX_BYTES": str(1 << 30),
        # Every phase calls its task function itself: nothing goes to a real broker.
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }
    ris_path = work / "bench.ris"
    loads = [os.getloadavg()]
    try:
        distinct = build_file(args.records, ris_path)
        size_mb = ris_path.stat().st_size / (1024 * 1024)
        phases: dict[str, dict] = {}
        phases["scan_before"] = run_phase("scan", env, file=ris_path)
        phases["upload"] = run_phase("upload", env, file=ris_path, slug=slug)
        loads.append(os.getloadavg())
        phases["import"] = run_phase(
            "import", env, batch=phases["upload"]["batch"], profile=args.profile
        )
        loads.append(os.getloadavg())
        phases["scan_after"] = run_phase("scan", env, file=ris_path)
        phases["parse"] = run_phase("parse", env, file=ris_path)
        phases["store"] = run_phase("store", env, file=ris_path)
        if not args.no_dedup:
            phases["dedup"] = run_phase("dedup", env, review=phases["upload"]["review"])
            loads.append(os.getloadavg())
    finally:
        cleanup(slug, env)
        shutil.rmtree(work, ignore_errors=True)

    scan = (phases["scan_before"]["seconds"] + phases["scan_after"]["seconds"]) / 2
    end_to_end = phases["upload"]["seconds"] + phases["import"]["seconds"]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "load_average": [[round(x, 2) for x in load] for load in loads],
        "file": {"records": args.records, "distinct_real_records": distinct, "mb": size_mb},
        "phases": phases,
        "line_scan_seconds": scan,
        "end_to_end_seconds": end_to_end,
        "ratio": end_to_end / scan,
        # What no import through this architecture can go under: the upload as the web
        # receives and stores it, plus the bare store of the records' texts (phase "store").
        "floor_seconds": phases["upload"]["seconds"] + phases["store"]["seconds"],
        "floor_ratio": (phases["upload"]["seconds"] + phases["store"]["seconds"]) / scan,
    }
    print(json.dumps(result, indent=2))
    peaks = " / ".join(
        f"{phases[name]['peak_rss_mb']:.0f}"
        for name in ("upload", "import", "dedup")
        if name in phases
    )
    dedup = f"{phases['dedup']['seconds']:.1f}" if "dedup" in phases else "-"
    print(
        f"| {result['date']} | {' / '.join(f'{load[0]:.1f}' for load in loads)} "
        f"| {args.records:,} ({size_mb:.1f} MB) "
        f"| {phases['scan_before']['seconds']:.2f} / {phases['scan_after']['seconds']:.2f} "
        f"| {phases['upload']['seconds']:.2f} | {phases['import']['seconds']:.2f} "
        f"| **{end_to_end:.2f}** | **{end_to_end / scan:.2f}x** "
        f"| {phases['parse']['seconds']:.2f} | {phases['store']['seconds']:.2f} "
        f"| {result['floor_ratio']:.2f}x | {peaks} | {dedup} |"
    )


if __name__ == "__main__":
    main()
