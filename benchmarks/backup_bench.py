"""Backup and restore of a large review: time and peak memory (issue 17, item 5).

Builds a review of N records (real titles and abstracts of the ASReview Nagtegaal 2019 and
Kitchenham 2010 datasets, cycled with a varying suffix; one study per record, a raw entry per
record, two title decisions on every fifth study, a duplicate candidate for every tenth record)
in the PostgreSQL database of DATABASE_URL, in chunks so the build itself stays small. Then,
each in a fresh process whose peak resident memory (VmHWM) and CPU time are read from /proc (and
those of its PostgreSQL backend, when the server runs on this machine):

- export: `manage.py export_review SLUG --output FILE` (and FILE.gz);
- restore: `manage.py import_review FILE --slug COPY` (one transaction);
- the floors in the same run: the rows read raw (`COPY ... TO STDOUT` of the records, studies
  and decisions, discarded) and the file parsed raw (ijson's C backend, every event, no database);
- with --before CHECKOUT, the same two commands from another checkout (e.g. /work/main, the
  in-memory version) for comparison; skipped where it would not fit (--before-limit records).

Deletes the review and its copy at the end (--keep to keep the built review for another run).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_backup SLRWEB_SHARED_DATA=... \\
      nice -n 10 .venv/bin/python benchmarks/backup_bench.py [--records 1000000] [--before ../main]
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Production settings: with DEBUG on, Django keeps the SQL of the last 9,000 queries (each bulk
# insert holds thousands of abstracts), which would be measured instead of the backup.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "backup-bench")
# A measured step may run another checkout's code (--before): it names it.
sys.path.insert(0, os.environ.get("BENCH_CHECKOUT", str(REPO)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS = [
    DATA / "screening" / "asreview-systematic-review-datasets" / name
    for name in ("Nagtegaal_2019.csv", "Kitchenham_2010.csv")
]
CHUNK = 5000
SLUG = "backup-bench"
COPY_SLUG = "backup-bench-copy"


def peak_mb(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(pid: str = "self") -> float:
    """User + system CPU time of a process (the load of the shared machine does not count)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pid() -> str | None:
    """The PostgreSQL backend serving this process's connection, if its /proc is readable (the
    server runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = str(cursor.fetchone()[0])
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def child(step: str, argv: list[str]) -> None:
    """One measured step in this (fresh) process; prints its seconds and peak memory."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    server = backend_pid()
    server_cpu = cpu_seconds(server) if server else 0.0
    started = time.perf_counter()
    if step == "command":  # OUTPUT COMMAND ARGS...: what the command prints goes to OUTPUT
        with open(argv[0], "w", encoding="utf-8") as output:
            call_command(*argv[1:], stdout=output)
    elif step == "read-rows":
        (review_id,) = argv
        with connection.cursor() as cursor:
            for table, column in [
                ("screening_record", "review_id"),
                ("screening_study", "review_id"),
                ("screening_decision", "review_id"),
            ]:
                sql = f"COPY (SELECT * FROM {table} WHERE {column} = {int(review_id)}) TO STDOUT"
                with cursor.cursor.copy(sql) as copy:
                    for _ in copy:
                        pass
    elif step == "parse-file":
        import ijson

        with open(argv[0], "rb") as handle:
            for _ in ijson.basic_parse(handle, use_float=True):
                pass
    figures = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds(),
        "peak_mb": peak_mb(),
        "load": os.getloadavg()[0],
    }
    if server and Path(f"/proc/{server}/stat").exists():
        # The backend's peak counts the shared buffers it touched, as `ps` shows them.
        figures["server_cpu_seconds"] = cpu_seconds(server) - server_cpu
        figures["server_peak_mb"] = peak_mb(server)
    print(json.dumps(figures))


def measured(argv: list[str], cwd: Path = REPO) -> dict[str, float]:
    """Run this script's child step in a fresh interpreter (from `cwd`'s checkout)."""
    script = str(Path(__file__).resolve())
    env = {**os.environ, "BENCH_CHECKOUT": str(cwd)}
    done = subprocess.run(
        [sys.executable, script, "--child", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: round(value, 1) for key, value in result.items()}


def build(records: int) -> int:
    """The review, built a chunk at a time (memory bounded by CHUNK); returns its id."""
    from django.db import connection, transaction

    from screening.models import (
        Decision,
        DuplicateCandidate,
        ImportBatch,
        Record,
        Source,
        Study,
    )
    from screening.services.reviews import review_create, user_get_or_create

    rows = []
    for dataset in DATASETS:
        with dataset.open(newline="", encoding="utf-8") as handle:
            rows += [(r["title"], r["abstract"]) for r in csv.DictReader(handle) if r["title"]]
    owner, _ = user_get_or_create(username="bench-owner")
    second, _ = user_get_or_create(username="bench-reviewer")
    review = review_create(slug=SLUG, title="Backup benchmark", owner=owner)
    source = Source.objects.create(review=review, name="Scopus")
    batch = ImportBatch.objects.create(
        review=review, source=source, original_name="all.ris", sha256="b" * 64, status="done"
    )
    title_stage = review.stages.get(key="title")
    for start in range(0, records, CHUNK):
        with transaction.atomic():
            numbers = range(start, min(start + CHUNK, records))
            texts = [(n, *rows[n % len(rows)]) for n in numbers]
            studies = Study.objects.bulk_create(
                Study(
                    review=review,
                    title=f"{title} ({n})",
                    abstract=abstract,
                    authors=[f"Author {n % 97}", f"Other {n % 13}"],
                    year=1990 + n % 35,
                    doi=f"10.1000/bench.{n}",
                    current_stage=title_stage,
                )
                for n, title, abstract in texts
            )
            records_made = Record.objects.bulk_create(
                Record(
                    review=review,
                    batch=batch,
                    study=study,
                    position=n + 1,
                    title=study.title,
                    abstract=abstract,
                    authors=study.authors,
                    year=study.year,
                    doi=study.doi,
                    raw={
                        "TY": "JOUR",
                        "TI": study.title,
                        "AB": abstract,
                        "AU": study.authors,
                        "PY": str(study.year),
                        "DO": study.doi,
                    },
                )
                for (n, _, abstract), study in zip(texts, studies, strict=True)
            )
            Decision.objects.bulk_create(
                Decision(review=review, study=study, stage=title_stage, reviewer=user, verdict=v)
                for study in studies[::5]
                for user, v in ((owner, "exclude"), (second, "include"))
            )
            DuplicateCandidate.objects.bulk_create(
                DuplicateCandidate(
                    review=review, record_a=a, record_b=b, score=0.9, reason="title ~ title"
                )
                for a, b in zip(records_made[::10], records_made[1::10], strict=False)
            )
        if start and start % 100_000 == 0:
            print(f"  built {start} records", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return review.pk


def delete(slug: str) -> None:
    """Delete a review with one DELETE per table (Django's delete collects every row of a
    million-record review in memory first)."""
    from django.db import connection

    from screening.models import Review
    from screening.services.backup import NOT_CARRIED, TABLES

    review = Review.objects.filter(slug=slug).first()
    if review is None:
        return
    machinery = [item.model for item in NOT_CARRIED]  # those of a review (not API tokens)
    machinery = [m for m in machinery if any(f.name == "review" for f in m._meta.fields)]
    tables = [*machinery, *(t.model for t in reversed(TABLES))]
    with connection.cursor() as cursor:
        for model in tables:
            names = {f.name: f for f in model._meta.concrete_fields}
            path = (
                "review"
                if "review" in names
                else next(t.review_path for t in TABLES if t.model is model)
            )
            hop = path.removesuffix("__review")
            if path == "review":
                where = "review_id = %s"
            else:
                parent = names[hop].related_model._meta.db_table
                where = f"{names[hop].column} IN (SELECT id FROM {parent} WHERE review_id = %s)"
            for m2m in model._meta.many_to_many:
                through = m2m.remote_field.through._meta.db_table
                column = f"{model._meta.model_name}_id"
                sql = f"SELECT id FROM {model._meta.db_table} WHERE {where}"
                cursor.execute(f"DELETE FROM {through} WHERE {column} IN ({sql})", [review.pk])
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {where}", [review.pk])
    review.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", help="Where the backup files go (default: a temporary folder).")
    parser.add_argument("--before", type=Path, help="Another checkout to compare with.")
    parser.add_argument("--before-limit", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="Keep the built review.")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return

    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL.")
    delete(SLUG)
    delete(COPY_SLUG)
    started = time.perf_counter()
    review_id = build(args.records)
    figures: dict[str, object] = {
        "records": args.records,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_peak_mb": round(peak_mb(), 1),
    }
    connection.close()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        plain, packed = Path(folder) / "backup.json", Path(folder) / "backup.json.gz"
        figures["floor_read_rows"] = measured(["read-rows", str(review_id)])
        export = ["command", os.devnull, "export_review", SLUG]
        restore = ["command", os.devnull, "import_review", str(plain), "--slug", COPY_SLUG]
        figures["export"] = measured([*export, "--output", str(plain)])
        figures["export_mb"] = round(plain.stat().st_size / 1e6, 1)
        figures["export_gz"] = measured([*export, "--output", str(packed)])
        figures["export_gz_mb"] = round(packed.stat().st_size / 1e6, 1)
        figures["floor_parse_file"] = measured(["parse-file", str(plain)])
        figures["restore"] = measured(restore)
        delete(COPY_SLUG)
        if args.before and args.records <= args.before_limit:
            # The other checkout's export prints the file: kept, then dropped.
            old = Path(folder) / "before.json"
            figures["before_export"] = measured(["command", str(old), *export[2:]], args.before)
            old.unlink()
            figures["before_restore"] = measured(restore, args.before)
            delete(COPY_SLUG)
    if not args.keep:
        delete(SLUG)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
