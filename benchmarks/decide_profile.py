"""What one screening decision costs the web process: CPU time and SQL statements per request.

The page's htmx decision request (`POST /r/<slug>/screen/title/decide/`, answered with the next
study's panel) is sent N times through Django's test client, in-process, with production
settings (DEBUG off, so no query log), by R reviewers taking turns. Each request's CPU time
(`time.process_time`: this process only, so other jobs on the machine change it far less than
wall time) and its SQL statements (counted by a cursor wrapper) are reported; `--cprofile N`
runs the same loop again under cProfile and prints the top N functions by own and by
cumulative time.

The review (`decide-profile`: the 2,019 titles and abstracts of the Nagtegaal 2019 export as
studies of a prioritised title stage, every study ranked, 3 exclusion criteria, 2 reviewers per
study) is built on the first run and reset to "nothing screened" on each later one, so every run
measures the same requests. Everything the request does after its commit runs too (the ranking
area's "is a training due?" check, the funnel request, the task sends to the broker); a
stand-in for the worker marks each queued ranking run done between requests (outside the
measurement), as a live worker would, so the due check sees what it sees in production.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_perfh \\
  CELERY_BROKER_URL=redis://127.0.0.1:6379/1 SLRWEB_SHARED_DATA=/work/shared/data \\
      .venv/bin/python benchmarks/decide_profile.py [--requests 300] [--reviewers 2] \\
      [--cprofile 30] [--rebuild] [--studies 1000000 | --review SLUG] [--order random] \\
      [--explain]

`--studies N` builds (once) a review of N studies, the export cycled, inserted in SQL (a
million in a few minutes); `--review SLUG` decides on an existing review's title stage as it
stands (the bench's reviewers are added as members; nothing is reset). `--explain` prints the
plan of every statement of one more decision.
"""

import argparse
import cProfile
import csv
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
# Production settings, as gunicorn runs them: no query log, no debug cursor.
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "decide-profile-not-a-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import warnings  # noqa: E402

import django  # noqa: E402

# Static files are not collected for an in-process run; the panel needs none.
warnings.filterwarnings("ignore", message="No directory at")

django.setup()

from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from screening.models import (  # noqa: E402
    AuditEvent,
    Criterion,
    Decision,
    Membership,
    RankingRun,
    Resolution,
    Review,
    ScreeningClaim,
    Stage,
    Study,
    StudyPriority,
)
from screening.services.reviews import review_create, user_get_or_create  # noqa: E402

SLUG = "decide-profile"
DATASET = "screening/asreview-systematic-review-datasets/Nagtegaal_2019.csv"


def _criteria_and_stage(review: Review) -> Stage:
    """The built reviews' set-up: 3 exclusion criteria, a prioritised title stage, 2 reviewers."""
    for i in range(1, 4):
        Criterion.objects.create(
            review=review, kind=Criterion.Kind.EXCLUSION, code=f"EC{i}", text=f"Excluded {i}"
        )
    title = Stage.objects.get(review=review, key="title")
    title.queue_order = Stage.QueueOrder.PRIORITISED
    title.reviewers_required = 2
    title.save(update_fields=["queue_order", "reviewers_required"])
    return title


def _titles() -> list[dict[str, str]]:
    data = Path(os.environ.get("SLRWEB_SHARED_DATA", "/work/shared/data")) / DATASET
    with data.open(newline="", encoding="utf-8") as handle:
        return [
            {"title": row["title"] or "", "abstract": row["abstract"] or ""}
            for row in csv.DictReader(handle)
        ]


def _studies_insert(review: Review, title: Stage, studies: int) -> None:
    """`studies` studies in the title stage, the export's rows cycled, each with a random
    priority (as a ranking would write), in two INSERT ... SELECT (PostgreSQL)."""
    rows = _titles()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_title (n integer PRIMARY KEY, title text, abstract text)"
        )
        cursor.executemany(
            "INSERT INTO bench_title VALUES (%s, %s, %s)",
            [(n, row["title"], row["abstract"]) for n, row in enumerate(rows)],
        )
        cursor.execute(
            f"INSERT INTO {Study._meta.db_table} (review_id, current_stage_id, title, abstract,"
            " authors, venue, doi, pmid, url, keywords, publication_type, outcome,"
            " created_at, updated_at)"
            " SELECT %(review)s, %(stage)s, t.title, t.abstract, '[]', '', '', '', '', '[]', '',"
            " %(screening)s, now(), now()"
            " FROM generate_series(0, %(studies)s - 1) g JOIN bench_title t ON t.n = g %% %(rows)s"
            " ORDER BY g",
            {
                "review": review.pk,
                "stage": title.pk,
                "screening": Study.Outcome.SCREENING.value,
                "studies": studies,
                "rows": len(rows),
            },
        )
        cursor.execute("DROP TABLE bench_title")
        cursor.execute(
            f"INSERT INTO {StudyPriority._meta.db_table} (study_id, stage_id, priority)"
            f" SELECT id, %s, random() FROM {Study._meta.db_table} WHERE review_id = %s",
            [title.pk, review.pk],
        )
        cursor.execute(f"ANALYZE {Study._meta.db_table}")
        cursor.execute(f"ANALYZE {StudyPriority._meta.db_table}")


def review_build(*, studies: int | None, rebuild: bool) -> Review:
    """The review: the export's 2,019 rows once each (built with the ORM), or `studies`
    studies cycling them (built in SQL: a million in a few minutes)."""
    slug = SLUG if studies is None else f"{SLUG}-{studies}"
    review = Review.objects.filter(slug=slug).first()
    if review is not None and rebuild:
        review.delete()
        review = None
    if review is None:
        owner, _ = user_get_or_create(username="decide-profile-owner")
        review = review_create(slug=slug, title=f"Decide profile ({slug})", owner=owner)
        title = _criteria_and_stage(review)
        if studies is not None:
            _studies_insert(review, title, studies)
        else:
            rng = random.Random(17)
            created = Study.objects.bulk_create(
                Study(
                    review=review,
                    title=row["title"],
                    abstract=row["abstract"],
                    current_stage=title,
                )
                for row in _titles()
            )
            StudyPriority.objects.bulk_create(
                StudyPriority(study=study, stage=title, priority=rng.random()) for study in created
            )
    return review


def reviewers_join(review: Review, *, reviewers: int) -> list:
    """The bench's reviewer accounts, made members of the review if they are not yet."""
    users = []
    for i in range(reviewers):
        user, _ = user_get_or_create(username=f"decide-profile-{i}")
        Membership.objects.get_or_create(
            review=review, user=user, defaults={"role": Membership.Role.REVIEWER}
        )
        users.append(user)
    return users


def review_reset(review: Review) -> None:
    """Back to "nothing screened": every run measures the same requests. Only the studies
    that moved are written back (a million-study stage is not rewritten on every run)."""
    title = Stage.objects.get(review=review, key="title")
    Resolution.objects.filter(review=review).delete()
    Decision.objects.filter(review=review).delete()
    ScreeningClaim.objects.filter(review=review).delete()
    RankingRun.objects.filter(review=review).delete()
    AuditEvent.objects.filter(review=review).exclude(action="review.create").delete()
    Study.objects.filter(review=review).exclude(
        current_stage=title, outcome=Study.Outcome.SCREENING
    ).update(current_stage=title, outcome=Study.Outcome.SCREENING)
    # What production's autovacuum would do after such a reset (this machine's PostgreSQL runs
    # none): otherwise each run also measures the dead rows of the runs before it.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


class StatementCounter:
    """Counts the statements sent to the database (a cursor wrapper: no query log needed)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class StatementLog:
    """Keeps the statements sent to the database with their parameters (for `--explain`)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        if not many:
            self.statements.append((sql, params))
        return execute(sql, params, many, context)


def explain(statements: list[tuple[str, object]]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) each statement of a request, each rolled back after (the
    writes run again on the state the request left: their plans, not their effects, count)."""
    for sql, params in statements:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb not in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                plan = [row[0] for row in cursor.fetchall()]
                transaction.set_rollback(True)
        except DatabaseError as error:
            plan = [f"(not explained: {error})"]
        print(f"--- {sql[:160]}")
        print("\n".join(plan))


PANEL_STUDY = 'name="study" value="'
PANEL_VERSION = 'name="version" value="'


def _field(panel: str, marker: str) -> str | None:
    start = panel.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return panel[start : panel.index('"', start)]


def worker_stand_in(review: Review) -> None:
    """What the worker would do with a queued training: finish it (the order stays as is)."""
    RankingRun.objects.filter(review=review, status__in=RankingRun.ACTIVE).update(
        status=RankingRun.Status.DONE, started_at=timezone.now(), finished_at=timezone.now()
    )


def decide_post(client: Client, url: str, data: dict):
    """The decision as htmx sends the form: URL-encoded (the test client's default,
    multipart, costs the server ~0.3 ms more to parse)."""
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")


def decide_loop(*, clients: list[Client], panels: list[str], requests: int, rng, on_each) -> None:
    """Each reviewer in turn decides the study on their panel; `on_each(seconds...)` per request."""
    for n in range(requests):
        i = n % len(clients)
        study = _field(panels[i], PANEL_STUDY)
        if study is None:
            raise SystemExit(f"reviewer {i} has nothing left after {n} requests")
        data = {
            "study": study,
            "version": _field(panels[i], PANEL_VERSION),
            "note": "",
            # Nagtegaal: about 1 in 20 included; the rest mostly excluded (as http_bench.py).
            "verdict": rng.choices(["include", "uncertain", "exclude"], weights=[8, 4, 88])[0],
        }
        on_each(i, clients[i], data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="print top N")
    parser.add_argument("--rebuild", action="store_true", help="build the review afresh")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="after the run, EXPLAIN (ANALYZE, BUFFERS) each statement of one more request",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--studies", type=int, help="a synthetic stage of N studies (the export cycled, in SQL)"
    )
    size.add_argument(
        "--review",
        metavar="SLUG",
        help="an existing review: decide on its title stage as it is (not reset)",
    )
    parser.add_argument(
        "--order",
        choices=[o.value for o in Stage.QueueOrder],
        help="set the title stage's queue order first (built reviews: prioritised)",
    )
    args = parser.parse_args()

    if args.review:
        review = Review.objects.get(slug=args.review)
    else:
        review = review_build(studies=args.studies, rebuild=args.rebuild)
        review_reset(review)
    stage = Stage.objects.get(review=review, key="title")
    if args.order:
        Stage.objects.filter(pk=stage.pk).update(queue_order=args.order)
        stage.refresh_from_db()
    users = reviewers_join(review, reviewers=args.reviewers)
    stage_url = f"/r/{review.slug}/screen/title/"
    clients, panels = [], []
    for user in users:
        client = Client(HTTP_HX_REQUEST="true", secure=True)
        client.force_login(user)
        panels.append(client.get(stage_url).content.decode())
        clients.append(client)
    rng = random.Random(1)
    counter = StatementCounter()
    cpu: list[float] = []
    wall: list[float] = []
    statements: list[int] = []
    errors: list[str] = []

    def measured(i: int, client: Client, data: dict) -> None:
        counter.count = 0
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(counter):
            answer = decide_post(client, f"{stage_url}decide/", data)
        cpu.append((time.process_time() - cpu_start) * 1000)
        wall.append((time.perf_counter() - wall_start) * 1000)
        statements.append(counter.count)
        if answer.status_code != 200 or b"Recorded:" not in answer.content:
            errors.append(f"{answer.status_code}: {answer.content[:200]!r}")
        panels[i] = answer.content.decode()
        worker_stand_in(review)

    def plain(i: int, client: Client, data: dict) -> None:
        panels[i] = decide_post(client, f"{stage_url}decide/", data).content.decode()
        worker_stand_in(review)

    decide_loop(clients=clients, panels=panels, requests=args.warmup, rng=rng, on_each=plain)
    decide_loop(clients=clients, panels=panels, requests=args.requests, rng=rng, on_each=measured)
    settled = Resolution.objects.filter(review=review).count()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    report = {
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "database": connection.vendor,
        "review": review.slug,
        "studies_in_stage": Study.objects.filter(current_stage=stage).count(),
        "queue_order": stage.queue_order,
        "requests": len(cpu),
        "reviewers": len(users),
        "resolutions_after_run": settled,
        "cpu_ms": {
            "mean": round(statistics.fmean(cpu), 2),
            "p50": pct(cpu, 0.5),
            "p95": pct(cpu, 0.95),
            "max": round(max(cpu), 2),
        },
        "wall_ms": {"p50": pct(wall, 0.5), "p95": pct(wall, 0.95), "max": round(max(wall), 2)},
        "statements": {
            "min": min(statements),
            "median": statistics.median(statements),
            "max": max(statements),
            "mean": round(statistics.fmean(statements), 1),
        },
        "errors": errors[:5],
    }
    print(json.dumps(report, indent=2))

    if args.explain:
        log = StatementLog()

        def logged(i: int, client: Client, data: dict) -> None:
            with connection.execute_wrapper(log):
                panels[i] = decide_post(client, f"{stage_url}decide/", data).content.decode()
            worker_stand_in(review)

        decide_loop(clients=clients, panels=panels, requests=1, rng=rng, on_each=logged)
        explain(log.statements)

    if args.cprofile:
        if not args.review:
            review_reset(review)
        for i, (client, user) in enumerate(zip(clients, users, strict=True)):
            client.force_login(user)
            panels[i] = client.get(stage_url).content.decode()
        profile = cProfile.Profile(time.process_time)
        decide_loop(
            clients=clients,
            panels=panels,
            requests=args.warmup,
            rng=random.Random(1),
            on_each=plain,
        )

        def profiled(i: int, client: Client, data: dict) -> None:
            profile.enable()
            panels[i] = decide_post(client, f"{stage_url}decide/", data).content.decode()
            profile.disable()
            worker_stand_in(review)

        decide_loop(
            clients=clients, panels=panels, requests=args.requests, rng=rng, on_each=profiled
        )
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(args.cprofile)
        stats.sort_stats("cumulative").print_stats(args.cprofile)
        # The project's own functions, by cumulative time: where in our code the time goes.
        stats.sort_stats("cumulative").print_stats(r"/(screening|slrweb)/", args.cprofile)


if __name__ == "__main__":
    main()
