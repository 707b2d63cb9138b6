"""Screening request latency: fetch the next study and record a decision.

A review with N studies (1,000 and 100,000 by default) and 20 reviewers is bulk-created in the
PostgreSQL database named by DATABASE_URL; 5% of the studies already carry one decision and
half have a ranking priority, so the queue query meets real anti-joins. Each reviewer then
alternates the two requests a reviewer makes, through Django's test client:

  fetch  GET  /r/<slug>/screen/title/  (htmx fragment: claims and renders the next study)
  decide POST /r/<slug>/screen/title/decide/  (records the verdict, answers with a redirect)
  decide+next POST .../decide/ as htmx (records and renders the next study in one response)

Reports p50/p95/max latency and SQL queries per request, then deletes the review.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_screening \
      .venv/bin/python benchmarks/screening_bench.py [--sizes 1000 100000] [--requests 300]
"""

import argparse
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

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from screening.models import (  # noqa: E402
    Decision,
    Membership,
    Review,
    Stage,
    Study,
    StudyPriority,
)
from screening.services.reviews import review_create, user_get_or_create  # noqa: E402

REVIEWERS = 20


def build(size: int, rng: random.Random, queue_order: str = "prioritised"):
    slug = f"bench-screening-{size}"
    Review.objects.filter(slug=slug).delete()
    owner, _ = user_get_or_create(username="bench-owner")
    review = review_create(slug=slug, title=f"Screening benchmark ({size:,} studies)", owner=owner)
    reviewers = []
    for i in range(REVIEWERS):
        user, _ = user_get_or_create(username=f"bench-reviewer-{i}")
        Membership.objects.get_or_create(review=review, user=user, defaults={"role": "reviewer"})
        reviewers.append(user)
    title = Stage.objects.get(review=review, key="title")
    title.queue_order = queue_order
    title.save(update_fields=["queue_order"])
    started = time.perf_counter()
    batch = []
    for i in range(size):
        batch.append(
            Study(
                review=review,
                title=f"Benchmark study {i}: continuous delivery of machine learning models",
                abstract="An abstract of moderate length about MLOps pipelines. " * 6,
                venue="Benchmark Conference",
                year=2015 + i % 9,
                current_stage=title,
            )
        )
        if len(batch) == 5000:
            Study.objects.bulk_create(batch)
            batch = []
    Study.objects.bulk_create(batch)
    ids = list(Study.objects.filter(review=review).order_by("id").values_list("id", flat=True))
    StudyPriority.objects.bulk_create(
        (StudyPriority(study_id=pk, stage=title, priority=rng.random()) for pk in ids[1::2]),
        batch_size=5000,
    )
    Decision.objects.bulk_create(
        Decision(
            review=review,
            study_id=pk,
            stage=title,
            reviewer=rng.choice(reviewers),
            verdict="include",
        )
        for pk in rng.sample(ids, size // 20)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE screening_study; ANALYZE screening_studypriority; ANALYZE screening_decision;"
        )
    return review, title, reviewers, time.perf_counter() - started


def measure(review, title, reviewers, requests: int):
    clients = []
    for user in reviewers:
        client = Client()
        client.force_login(user)
        clients.append(client)
    stage_url = f"/r/{review.slug}/screen/title/"
    decide_url = f"{stage_url}decide/"
    htmx = {"HTTP_HX_REQUEST": "true"}
    samples = {"fetch": [], "decide": [], "decide+next": []}
    queries = {"fetch": set(), "decide": set(), "decide+next": set()}
    verdicts = ["include", "exclude", "exclude", "uncertain"]

    def timed(kind, call):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = call()
            elapsed = time.perf_counter() - started
        assert response.status_code in (200, 302), (kind, response.status_code)
        samples[kind].append(elapsed * 1000)
        queries[kind].add(len(captured))
        return response

    warmup = 20
    for step in range(requests + warmup):
        client = clients[step % len(clients)]
        response = timed("fetch", lambda c=client: c.get(stage_url, **htmx))
        study = _study_id(response)
        verdict = verdicts[step % len(verdicts)]
        if step % 2:
            timed(
                "decide",
                lambda c=client, s=study, v=verdict: c.post(decide_url, {"study": s, "verdict": v}),
            )
        else:
            timed(
                "decide+next",
                lambda c=client, s=study, v=verdict: c.post(
                    decide_url, {"study": s, "verdict": v}, **htmx
                ),
            )
            # The next study is now claimed; release it so every fetch claims afresh.
            client.post(f"{stage_url}skip/", {"study": _study_id(client.get(stage_url, **htmx))})
        if step == warmup - 1:
            for kind in samples:
                samples[kind].clear()
                queries[kind].clear()
    return samples, queries


def _study_id(response) -> str:
    body = response.content.decode()
    marker = 'data-study="'
    start = body.index(marker) + len(marker)
    return body[start : body.index('"', start)]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark reviews")
    parser.add_argument("--queue-order", choices=["prioritised", "random"], default="prioritised")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    rng = random.Random(20261126)
    print(
        f"{'studies':>8} {'request':<12} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} queries"
    )
    for size in args.sizes:
        review, title, reviewers, build_seconds = build(size, rng, args.queue_order)
        print(f"# built {size:,} studies in {build_seconds:.1f} s", file=sys.stderr)
        try:
            samples, queries = measure(review, title, reviewers, args.requests)
        finally:
            if not args.keep:
                Review.objects.filter(pk=review.pk).delete()
        for kind, values in samples.items():
            print(
                f"{size:>8} {kind:<12} {len(values):>4} {statistics.median(values):>7.1f} "
                f"{percentile(values, 95):>7.1f} {max(values):>7.1f} "
                f"{'/'.join(str(n) for n in sorted(queries[kind]))}"
            )


if __name__ == "__main__":
    main()
