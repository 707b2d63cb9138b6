"""Studies page latency: the first page of a search, a filter and the unfiltered list.

A review with N studies (real titles and abstracts of the Nagtegaal 2019 dataset, repeated with
a varying suffix) is bulk-created in the PostgreSQL database named by DATABASE_URL; the studies
page is then requested through Django's test client. Reports p50/max latency and SQL queries
per request, then deletes the review.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_studies \
      .venv/bin/python benchmarks/studies_search_bench.py [--sizes 5000 50000] [--requests 10]
"""

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from screening.models import Review, Study  # noqa: E402
from screening.services.reviews import review_create, user_get_or_create  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASET = DATA / "screening" / "asreview-systematic-review-datasets" / "Nagtegaal_2019.csv"
QUERIES = {
    "list": "",
    "search": "q=thromboprophylaxis+alert",
    "search+year": "q=pharmacy&year=2015",
    "doi": "q=10.1000%2Fbench.42",
}


def build(size: int) -> Review:
    with DATASET.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["title"]]
    owner, _ = user_get_or_create(username="bench-owner")
    review = review_create(slug=f"studies-bench-{size}", title="Studies bench", owner=owner)
    Study.objects.bulk_create(
        [
            Study(
                review=review,
                title=f"{rows[i % len(rows)]['title']} ({i})",
                abstract=rows[i % len(rows)]["abstract"],
                authors=[f"Author {i % 97}", f"Other {i % 13}"],
                year=2000 + i % 25,
                doi=f"10.1000/bench.{i}",
            )
            for i in range(size)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE screening_study")
    return review


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL.")
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    for size in args.sizes:
        review = build(size)
        client = Client()
        client.force_login(review.memberships.get().user)
        try:
            for name, query in QUERIES.items():
                url = f"/r/{review.slug}/studies/?{query}"
                times = []
                for _ in range(args.requests):
                    with CaptureQueriesContext(connection) as queries:
                        start = time.perf_counter()
                        response = client.get(url, HTTP_HX_REQUEST="true")
                        times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.status_code
                print(
                    f"{size:>7} studies  {name:<12} p50 {statistics.median(times):7.1f} ms  "
                    f"max {max(times):7.1f} ms  {len(queries)} queries"
                )
        finally:
            review.delete()


if __name__ == "__main__":
    main()
