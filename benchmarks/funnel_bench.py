"""Funnel computation on a large review: 100,000 studies, two decisions each per stage.

Usage (PostgreSQL, the database in DATABASE_URL; the scratch review is removed afterwards
unless --keep):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_reports \
        .venv/bin/python benchmarks/funnel_bench.py [--studies 100000] [--runs 5] [--keep]

Prints one JSON object: the build time and, per measured operation, the median and the
fastest of `runs` timings (after one warm-up run).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from screening.models import Decision, ImportBatch, Record, Resolution, Review  # noqa: E402
from screening.selectors import reports as selectors  # noqa: E402
from screening.services.funnel import funnel_compute  # noqa: E402
from screening.services.reviews import review_create  # noqa: E402
from tests.reports_helpers import SEED, Plan, build_selection  # noqa: E402

SLUG = "bench-funnel"


def plan_for(studies: int) -> Plan:
    """The seed's proportions scaled to `studies` (duplicates: 15 % of studies)."""
    duplicates = studies * 15 // 100
    records = studies + duplicates
    runs = [
        (i, name, hits)
        for i, row in enumerate(SEED["search_strings_table1"])
        for name, hits in row["hits"].items()
        if hits
    ]
    seed_total = sum(h for _, _, h in runs)
    per_run = {(i, name): hits * records // seed_total for i, name, hits in runs}
    first = next(iter(per_run))
    per_run[first] += records - sum(per_run.values())
    title_include, title_uncertain = studies * 24 // 1000, studies * 17 // 100
    abstract_include = title_uncertain * 6 // 100
    sought = title_include + abstract_include
    not_retrieved = sought * 5 // 100
    assessed = sought - not_retrieved
    reasons = (
        ("INVALID-TYPE", assessed * 5 // 100),
        ("DUPLICATE", assessed * 2 // 100),
        ("EC", assessed * 40 // 100),
    )
    return Plan(
        per_run=per_run,
        duplicates=duplicates,
        title=(title_include, title_uncertain, studies - title_include - title_uncertain),
        abstract=(abstract_include, title_uncertain - abstract_include),
        not_retrieved=not_retrieved,
        ft_reasons=reasons,
        included=assessed - sum(n for _, n in reasons),
        decisions_per_stage=2,
    )


def timed(function, runs: int) -> dict:
    function()  # warm-up: plans and caches, as in a long-running worker
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(timings), 3), "best_s": round(min(timings), 3)}


def remove(review: Review) -> None:
    Decision.objects.filter(review=review).delete()
    Resolution.objects.filter(review=review).delete()
    Record.objects.filter(review=review).delete()
    ImportBatch.objects.filter(review=review).delete()
    review.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch review")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL (set DATABASE_URL).")

    users = []
    for name in ("bench-owner", "bench-reviewer-1", "bench-reviewer-2"):
        user, _ = get_user_model().objects.get_or_create(username=name)
        users.append(user)
    old = Review.objects.filter(slug=SLUG).first()
    if old:
        remove(old)
    review = review_create(slug=SLUG, title="Funnel benchmark", owner=users[0])
    plan = plan_for(args.studies)
    start = time.perf_counter()
    build_selection(review, users[1:], plan)
    build_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    result = {
        "studies": review.studies.count(),
        "records": Record.objects.filter(review=review).count(),
        "decisions": Decision.objects.filter(review=review).count(),
        "resolutions": Resolution.objects.filter(review=review).count(),
        "build_s": round(build_s, 1),
        "funnel_compute": timed(lambda: funnel_compute(review=review), args.runs),
        "drill_down_counts": timed(
            lambda: [
                selectors.funnel_box_rows(review=review, box=box).count()
                for box in sorted(selectors.STUDY_BOXES)
            ],
            args.runs,
        ),
        "table1": timed(lambda: selectors.table1(review=review), args.runs),
        "source_overlap": timed(lambda: selectors.source_overlap(review=review), args.runs),
        "figure2": timed(lambda: selectors.included_per_year(review=review), args.runs),
    }
    funnel = selectors.funnel_live(review=review)
    result["funnel"] = {
        k: funnel[k]
        for k in ("database_results", "duplicates", "records_screened", "dbr_sought_reports")
    }
    result["funnel"]["new_studies"] = funnel["new_studies"]
    if not args.keep:
        remove(review)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
