"""The database cost of one ranking retrain's priority writes, on a 2,019-study stage.

The review is the Nagtegaal export's 2,019 titles and abstracts (SLRWEB_SHARED_DATA/screening/
asreview-systematic-review-datasets/Nagtegaal_2019.csv) bulk-created as studies of the title
stage (so each study row carries its real stored tsvector and indexes); 5% have one decision.
Each round writes a fresh random priority for every study through the service the worker uses
(`ranking_priorities_write`, chunked short transactions) and reports:

  ms         wall time of the write, as the worker pays it
  wal_bytes  WAL written by the write's own statements, from EXPLAIN (ANALYZE, WAL) of each
             statement (exact: the cluster-wide pg_current_wal_lsn() also counts everyone
             else's writes on a shared machine, and is reported beside it as lsn_bytes)

Rounds alternate a timed write (plain) and a measured write (under EXPLAIN), so neither pays
the other's overhead. PostgreSQL only.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_priority \\
  SLRWEB_SHARED_DATA=/work/shared/data \\
      .venv/bin/python benchmarks/priority_write_bench.py [--rounds 7]
"""

import argparse
import csv
import inspect
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from screening.models import Decision, Review, Stage, Study  # noqa: E402
from screening.services import ranking  # noqa: E402
from screening.services.reviews import review_create, user_get_or_create  # noqa: E402

SLUG = "bench-priority-write"
DATASET = "screening/asreview-systematic-review-datasets/Nagtegaal_2019.csv"


def build() -> tuple[Review, Stage, list[int]]:
    Review.objects.filter(slug=SLUG).delete()
    owner, _ = user_get_or_create(username="bench-owner")
    review = review_create(slug=SLUG, title="Priority write benchmark", owner=owner)
    title = Stage.objects.get(review=review, key="title")
    title.queue_order = Stage.QueueOrder.PRIORITISED
    title.save(update_fields=["queue_order"])
    path = Path(os.environ.get("SLRWEB_SHARED_DATA", "/work/shared/data")) / DATASET
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    Study.objects.bulk_create(
        Study(
            review=review,
            title=row["title"] or "",
            abstract=row["abstract"] or "",
            current_stage=title,
        )
        for row in rows
    )
    ids = sorted(Study.objects.filter(review=review).values_list("pk", flat=True))
    rng = random.Random(1)
    Decision.objects.bulk_create(
        Decision(review=review, study_id=pk, stage=title, reviewer=owner, verdict="exclude")
        for pk in rng.sample(ids, len(ids) // 20)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE screening_study; ANALYZE screening_decision")
    return review, title, ids


def write(stage: Stage, priorities: dict[int, float]) -> None:
    # Before the priority table the service took no stage (it wrote Study.priority).
    if "stage" in inspect.signature(ranking.ranking_priorities_write).parameters:
        ranking.ranking_priorities_write(stage=stage, priorities=priorities)
    else:
        ranking.ranking_priorities_write(priorities=priorities)


def lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return str(cursor.fetchone()[0])


def lsn_diff(after: str, before: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(%s, %s)", [after, before])
        return int(cursor.fetchone()[0])


def explained_wal(stage: Stage, priorities: dict[int, float]) -> tuple[int, int]:
    """WAL bytes and statements of one write, each write statement run under EXPLAIN."""
    totals = {"bytes": 0, "statements": 0}

    def explain(execute, sql, params, many, context):
        if many or not sql.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE", "WITH")):
            return execute(sql, params, many, context)
        result = execute(f"EXPLAIN (ANALYZE, WAL, FORMAT JSON) {sql}", params, many, context)
        plan = context["cursor"].fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        totals["bytes"] += int(plan[0]["Plan"].get("WAL Bytes", 0))
        totals["statements"] += 1
        return result

    with connection.execute_wrapper(explain):
        write(stage, priorities)
    return totals["bytes"], totals["statements"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only")
    review, stage, ids = build()
    rng = random.Random(2)
    timed: list[float] = []
    lsn_bytes: list[int] = []
    wal: list[int] = []
    statements = 0
    write(stage, {pk: rng.random() for pk in ids})  # warm: every study ranked once
    for _ in range(args.rounds):
        priorities = {pk: rng.random() for pk in ids}
        before = lsn()
        started = time.perf_counter()
        write(stage, priorities)
        timed.append((time.perf_counter() - started) * 1000)
        lsn_bytes.append(lsn_diff(lsn(), before))
        wal_bytes, statements = explained_wal(stage, {pk: rng.random() for pk in ids})
        wal.append(wal_bytes)
    print(
        json.dumps(
            {
                "studies": len(ids),
                "write_batch": ranking.WRITE_BATCH,
                "statements_per_write": statements,
                "rounds": args.rounds,
                "ms": {
                    "median": round(statistics.median(timed), 1),
                    "min": round(min(timed), 1),
                    "max": round(max(timed), 1),
                },
                "wal_bytes": {"median": int(statistics.median(wal)), "max": max(wal)},
                "lsn_bytes": {"median": int(statistics.median(lsn_bytes)), "max": max(lsn_bytes)},
                "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            },
            indent=2,
        )
    )
    review.delete()


if __name__ == "__main__":
    main()
