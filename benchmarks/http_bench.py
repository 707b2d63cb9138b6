"""Screening latency over real HTTP: gunicorn with production settings, workers busy.

What runs (each a separate process, started here with the command lines of
scripts/ci-production, or of scripts/run-embedded with --embedded):

  gunicorn slrweb.wsgi (DEBUG=0, static files collected first; gunicorn.conf.py at the root)
  celery worker -Q heavy, celery worker -Q light, celery beat      (PostgreSQL + Redis)
  celery worker -B -Q heavy,light                                  (--embedded: SQLite + files)

The review is built through the real import path: the 2,019-record Nagtegaal export
(SLRWEB_SHARED_DATA/screening/asreview-systematic-review-datasets/Nagtegaal_2019.csv) is uploaded
with `batch_create`, and the worker imports and deduplicates it into studies. The title stage
is prioritised, so the decisions trigger ranking retrains (heavy queue) and resolutions trigger
funnel refreshes (light queue) during the run, as in real screening.

N reviewers are real HTTP sessions (httpx): each logs in through the login form (CSRF), opens
the screening page, then repeatedly waits a reading time and sends what the page's decision
form sends when a verdict key is pressed: an htmx POST to .../decide/ with the form's fields
(csrfmiddlewaretoken, study, version, verdict) and htmx's headers; the answer is the next
study's panel. That round trip (decide + next) is what is timed. A floor thread GETs /healthz
and the login page every 0.5 s in the same run. The timed window opens once every reviewer
has signed in and loaded their first panel (`Window`); decisions and floor requests slower
than SLOW_MS are listed with the time they were sent, to line them up with the servers' logs.

Before the window the database is vacuumed and analysed, as production's autovacuum would have
done (this machine's PostgreSQL runs none), then checkpointed, so the window does not wait on
the set-up's own writes (`database_settle`; the CHECKPOINT needs a superuser or the
pg_checkpoint role, as the postgres user here).

After the run: ranking runs and funnel snapshots made during it, and the invariants (decisions
stored == decisions answered "Recorded", none twice, none over the stage's reviewer count).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_perf \\
  CELERY_BROKER_URL=redis://127.0.0.1:6379/7 SLRWEB_SHARED_DATA=/work/shared/data \\
      .venv/bin/python benchmarks/http_bench.py --reviewers 20 --read 1 3 --seconds 120
  .venv/bin/python benchmarks/http_bench.py --embedded --reviewers 3 --read 1 3 --seconds 90
  ... --with-import 100000     # also upload a 100k-record RIS file into the same review
  ... --review SLUG             # screen an existing review (e.g. benchmarks/million_bench.py's)

Prints one JSON object. Writes nothing outside a temporary folder and the named database
(whose review it deletes first; with --review, it only adds the bench's reviewers as members
and their decisions).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SLUG = "http-bench"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
DATASET = "screening/asreview-systematic-review-datasets/Nagtegaal_2019.csv"

PANEL_STUDY = re.compile(r'<input type="hidden" name="study" value="(\d+)">')
PANEL_VERSION = re.compile(r'<input type="hidden" name="version" value="(\d+)">')
SLOW_MS = 150  # requests slower than this are listed with the time they were sent
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def utc_now() -> str:
    """Wall-clock time to the millisecond, to line a slow request up with the servers' logs."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def pick_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the servers -------------------------------------------------------------------------------


class Servers:
    """gunicorn, the Celery workers and beat, as the deployment scripts start them."""

    def __init__(self, *, env: dict, work: Path, embedded: bool, port: int, nice: int):
        self.env, self.work, self.embedded, self.port = env, work, embedded, port
        self.nice = nice
        self.processes: list[subprocess.Popen] = []
        self.names: list[str] = []

    def _start(self, name: str, argv: list[str]) -> None:
        self.names.append(name)
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.processes.append(
            subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def start(self) -> None:
        python, celery = str(BIN / "python"), str(BIN / "celery")
        subprocess.run(
            [python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        # The worker command lines of the deployment scripts (nice included).
        nice = ["nice", "-n", str(self.nice)]
        if self.embedded:
            self._start(
                "worker",
                [*nice, celery, "-A", "slrweb", "worker", "-B", "--schedule",
                 str(self.work / "celerybeat-schedule"), "-Q", "heavy,light",
                 "--loglevel=WARNING", "--pool=threads", "--concurrency=2"],
            )  # fmt: skip
        else:
            self._start(
                "worker-heavy",
                [*nice, celery, "-A", "slrweb", "worker", "-Q", "heavy", "-n",
                 f"heavy-{self.port}@%h", "--concurrency=1", "--loglevel=WARNING"],
            )  # fmt: skip
            self._start(
                "worker-light",
                [*nice, celery, "-A", "slrweb", "worker", "-Q", "light", "-n",
                 f"light-{self.port}@%h", "--concurrency=2", "--loglevel=WARNING"],
            )  # fmt: skip
            self._start(
                "beat",
                [celery, "-A", "slrweb", "beat", "--schedule",
                 str(self.work / "celerybeat-schedule"), "--loglevel=WARNING"],
            )  # fmt: skip
        self._start(
            "web",
            [str(BIN / "gunicorn"), "slrweb.wsgi:application", "--bind", f"127.0.0.1:{self.port}"],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /healthz in 60 s")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each started process and its children."""
        ticks = os.sysconf("SC_CLK_TCK")
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        used = {}
        for name, process in zip(self.names, self.processes, strict=True):
            family, grown = {process.pid}, True
            while grown:
                more = {pid for pid, (ppid, _) in stats.items() if ppid in family} - family
                family |= more
                grown = bool(more)
            used[name] = sum(stats[pid][1] for pid in family if pid in stats) / ticks
        return used

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


# --- the review --------------------------------------------------------------------------------


def review_build(*, reviewers: int, data_dir: Path):
    """The review, its reviewers and the real export uploaded for the worker to import."""
    from screening.models import Review, Stage
    from screening.services.imports import batch_create, source_resolve
    from screening.services.reviews import review_create, user_get_or_create

    Review.objects.filter(slug=SLUG).delete()
    owner, _ = user_get_or_create(username="http-bench-owner")
    review = review_create(slug=SLUG, title="HTTP benchmark (Nagtegaal 2019)", owner=owner)
    names = reviewers_join(review, reviewers=reviewers)
    Stage.objects.filter(review=review, key="title").update(queue_order="prioritised")
    source = source_resolve(review=review, name="Nagtegaal 2019")
    path = data_dir / DATASET
    with path.open("rb") as handle:
        batch_create(
            review=review, source=source, uploaded_by=owner, file_name=path.name, data=handle
        )
    return review, names


def reviewers_join(review, *, reviewers: int) -> list[str]:
    """The bench's reviewer accounts (this run's password), members of the review if not yet."""
    from screening.models import Membership
    from screening.services.reviews import user_get_or_create

    names = []
    for i in range(reviewers):
        user, _ = user_get_or_create(username=f"http-bench-{i}")
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        Membership.objects.get_or_create(
            review=review, user=user, defaults={"role": Membership.Role.REVIEWER}
        )
        names.append(user.username)
    return names


def wait_imported(review, *, timeout: float = 600) -> int:
    from screening.models import ImportBatch, Record, Study

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batches = ImportBatch.objects.filter(review=review)
        if batches.filter(status="failed").exists():
            raise RuntimeError(f"import failed: {batches.values_list('error', flat=True)}")
        done = not batches.exclude(status="done").exists()
        unassigned = Record.objects.filter(review=review, study__isnull=True).count()
        if done and unassigned == 0 and Record.objects.filter(review=review).exists():
            return Study.objects.filter(review=review).count()
        time.sleep(1)
    raise RuntimeError("the worker did not import and deduplicate the export in time")


def big_import(review, *, records: int, work: Path) -> None:
    """Upload a RIS file of `records` real records (cycled) into the review, as a user would."""
    from benchmarks.import_bench import build_file
    from screening.services.imports import batch_create, source_resolve

    path = work / "big.ris"
    build_file(records, path)
    with path.open("rb") as handle:
        batch_create(
            review=review,
            source=source_resolve(review=review, name="Big import"),
            uploaded_by=None,
            file_name="big.ris",
            data=handle,
        )


# --- the reviewers -----------------------------------------------------------------------------


class Window:
    """The measured window. It opens once every reviewer has signed in and loaded their first
    panel, and closes `seconds` later: twenty password hashes at once (PBKDF2, ~0.3 CPU-s each)
    otherwise fill every web thread for the first seconds, a sign-in storm, not screening."""

    def __init__(self, *, parties: int, seconds: float):
        self.seconds = seconds
        self.until = 0.0
        self._barrier = threading.Barrier(parties, action=self._open)

    def _open(self) -> None:
        self.until = time.monotonic() + self.seconds

    def wait(self) -> None:
        self._barrier.wait()

    def is_open(self) -> bool:
        return time.monotonic() < self.until


class Reviewer(threading.Thread):
    def __init__(
        self, *, base: str, slug: str, username: str, read: tuple[float, float], window: Window,
        seed: int,
    ):  # fmt: skip
        super().__init__(daemon=True)
        self.base, self.username, self.read, self.window = base, username, read, window
        self.slug = slug
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.slow: list[tuple[float, str]] = []  # (ms, UTC time sent) of decisions over SLOW_MS
        self.recorded: list[int] = []  # study ids answered "Recorded"
        self.errors: list[str] = []

    def _login(self, client: httpx.Client) -> None:
        page = client.get("/accounts/login/")
        token = CSRF_FIELD.search(page.text).group(1)
        answer = client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
            headers={"Referer": f"{self.base}/accounts/login/"},
        )
        if answer.status_code != 302:
            raise RuntimeError(f"login of {self.username} failed: {answer.status_code}")

    def run(self) -> None:
        stage_url = f"/r/{self.slug}/screen/title/"
        with httpx.Client(base_url=self.base, timeout=120) as client:
            try:
                self._login(client)
                panel = client.get(stage_url).text
            except (httpx.HTTPError, RuntimeError, AttributeError) as error:
                self.errors.append(f"start: {error!r}")
                return
            finally:
                self.window.wait()
            while self.window.is_open():
                study = PANEL_STUDY.search(panel)
                if study is None:
                    return  # nothing left for this reviewer
                time.sleep(self.rng.uniform(*self.read))
                fields = {
                    "csrfmiddlewaretoken": CSRF_FIELD.search(panel).group(1),
                    "study": study.group(1),
                    "version": PANEL_VERSION.search(panel).group(1),
                    "note": "",
                    # Nagtegaal: about 1 in 20 included; the rest mostly excluded.
                    "verdict": self.rng.choices(
                        ["include", "uncertain", "exclude"], weights=[8, 4, 88]
                    )[0],
                }
                headers = {
                    "HX-Request": "true",
                    "HX-Target": "screen-panel",
                    "HX-Trigger": "decision-form",
                    "HX-Current-URL": f"{self.base}{stage_url}",
                    "Referer": f"{self.base}{stage_url}",
                }
                sent, started = utc_now(), time.perf_counter()
                try:
                    answer = client.post(f"{stage_url}decide/", data=fields, headers=headers)
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                    continue
                self.latencies.append((time.perf_counter() - started) * 1000)
                if self.latencies[-1] > SLOW_MS:
                    self.slow.append((round(self.latencies[-1], 1), sent))
                if answer.status_code == 200 and "Recorded:" in answer.text:
                    self.recorded.append(int(study.group(1)))
                elif answer.status_code not in (200, 422):
                    self.errors.append(f"HTTP {answer.status_code}")
                    panel = client.get(stage_url, headers={"HX-Request": "true"}).text
                    continue
                panel = answer.text


class Floor(threading.Thread):
    """A trivial page in the same run: /healthz and the login form, every 0.5 s."""

    def __init__(self, *, base: str, window: Window):
        super().__init__(daemon=True)
        self.base, self.window = base, window
        self.healthz: list[float] = []
        self.login: list[float] = []
        self.slow: list[tuple[float, str, str]] = []  # (ms, UTC time sent, path) over SLOW_MS

    def run(self) -> None:
        self.window.wait()
        with httpx.Client(base_url=self.base, timeout=120) as client:
            while self.window.is_open():
                for path, into in (("/healthz", self.healthz), ("/accounts/login/", self.login)):
                    sent, started = utc_now(), time.perf_counter()
                    client.get(path)
                    into.append((time.perf_counter() - started) * 1000)
                    if into[-1] > SLOW_MS:
                        self.slow.append((round(into[-1], 1), sent, path))
                time.sleep(0.5)


# --- after the run -----------------------------------------------------------------------------


def invariants(review, *, answered: list[tuple[str, int]], names: list[str], since) -> dict:
    """Stored decisions against the answers the reviewers saw (reviewer, study): those the
    bench's reviewers made during the run (a given review may hold others' decisions)."""
    from django.db.models import Count

    from screening.models import Decision, Stage

    title = Stage.objects.get(review=review, key="title")
    everyone = Decision.objects.filter(review=review, stage=title)
    stored = everyone.filter(reviewer__username__in=names, created_at__gte=since)
    twice = everyone.values("study", "reviewer").annotate(n=Count("id")).filter(n__gt=1).count()
    over = (
        everyone.values("study")
        .annotate(n=Count("id"))
        .filter(n__gt=title.reviewers_required)
        .count()
    )
    pairs = set(stored.values_list("reviewer__username", "study_id"))
    return {
        "decisions_stored": stored.count(),
        "decisions_answered": len(answered),
        "answered_twice": len(answered) - len(set(answered)),
        "answered_not_stored": len(set(answered) - pairs),
        "stored_twice": twice,
        "over_reviewers_required": over,
        "holds": stored.count() == len(answered) == len(set(answered))
        and set(answered) == pairs
        and twice == 0
        and over == 0,
    }


def worker_activity(review, since) -> dict:
    from django.db.models import Count

    from screening.models import FunnelSnapshot, RankingRun

    runs = dict(
        RankingRun.objects.filter(review=review, created_at__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {
        "ranking_runs": runs,
        "funnel_snapshots": FunnelSnapshot.objects.filter(
            review=review, computed_at__gte=since
        ).count(),
    }


def ranking_runs_cut_off() -> int:
    """Mark failed the ranking runs this bench's workers left queued or running when they were
    stopped, as the staleness check would ten minutes later: otherwise the next run of the bench
    on the same review (a million-study retrain takes minutes) would see one still active and
    schedule none. Returns how many."""
    from django.utils import timezone

    from screening.models import RankingRun

    return RankingRun.objects.filter(status__in=RankingRun.ACTIVE).update(
        status=RankingRun.Status.FAILED,
        error="cut off: the HTTP benchmark stopped its workers",
        finished_at=timezone.now(),
    )


def database_settle() -> float | None:
    """VACUUM ANALYZE the database, then CHECKPOINT, before the timed window (PostgreSQL;
    seconds taken).

    Production's PostgreSQL runs autovacuum, which would have cleaned and analysed the tables
    after the review was built; this machine's server runs none (its configuration turns it
    off for CI), so without the VACUUM every run would also measure the dead rows of the runs
    before it: the in-process decision (`decide_profile.py`) took 10.4 ms of CPU on a database
    left so by earlier runs, 8.0 ms after one VACUUM ANALYZE (docs/benchmarks.md, "Prepared
    pick").

    The CHECKPOINT writes out what the set-up dirtied, so the window does not measure the
    set-up's own writes: deleting the previous run's review (100,000 records after a
    `--with-import` run) wrote 791 MB of WAL, PostgreSQL then checkpointed every 4 seconds
    through the next run's window, and its commits waited 180-610 ms for the WAL flush
    (docs/benchmarks.md, sixteenth stop). What the window's own work writes (retrains, funnel
    refreshes, an import with `--with-import`) is still measured with its checkpoints.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return None  # the embedded database is new in each run's temporary folder
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return round(time.perf_counter() - started, 1)


def funnel_tasks_flushed() -> int:
    """Clear the funnel's "task queued" marks: this bench flushes the broker's database before
    it starts, and a task of an earlier run lost so would otherwise keep every refresh of that
    review from being sent until its mark is judged stale (10 minutes), and the run would
    measure no funnel work at all. Returns how many."""
    from screening.models import FunnelSchedule

    return FunnelSchedule.objects.filter(pending_since__isnull=False).update(pending_since=None)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--read", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--embedded", action="store_true", help="SQLite + filesystem broker")
    parser.add_argument("--with-import", type=int, default=0, metavar="RECORDS")
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="the workers' nice (0: as before issue 17)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--review",
        metavar="SLUG",
        help="screen an existing review's title stage (PostgreSQL; nothing built or deleted)",
    )
    args = parser.parse_args()

    data_dir = Path(os.environ.get("SLRWEB_SHARED_DATA", "/work/shared/data"))
    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    port = pick_port()
    env = dict(os.environ)
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        STATIC_ROOT=str(work / "static"),
        MEDIA_ROOT=str(work / "media"),
        SLRWEB_VAR_DIR=str(work / "var"),
        LOGIN_FAILURE_LIMIT="1000",
        # 100,000 real records make about 270 MB, above the 200 MB default upload limit.
        IMPORT_MAX_BYTES=str(1024 * 1024 * 1024),
    )
    env.pop("CELERY_TASK_DEFAULT_QUEUE", None)
    env.pop("CELERY_RESULT_BACKEND", None)
    if args.embedded:
        env.pop("DATABASE_URL", None)
        env["CELERY_BROKER_URL"] = "filesystem://"
    elif "DATABASE_URL" not in env or "CELERY_BROKER_URL" not in env:
        sys.exit("Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis), or --embedded.")
    else:
        broker = env["CELERY_BROKER_URL"]
        subprocess.run(["redis-cli", "-u", broker, "flushdb"], check=True, capture_output=True)
    os.environ.clear()
    os.environ.update(env)  # this process reads the same database as the servers
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
    import django

    django.setup()
    from django.utils import timezone

    # A SIGTERM (timeout, kill) still stops the servers this process started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    servers = Servers(env=env, work=work, embedded=args.embedded, port=port, nice=args.worker_nice)
    result: dict = {"load_before": uptime(), "conditions": vars(args)}
    try:
        servers.start()  # (the embedded database is created here)
        result["funnel_tasks_flushed"] = funnel_tasks_flushed()
        if args.review:
            from screening.models import Review, Study

            review = Review.objects.get(slug=args.review)
            names = reviewers_join(review, reviewers=args.reviewers)
            result["studies"] = Study.objects.filter(review=review).count()
        else:
            review, names = review_build(reviewers=args.reviewers, data_dir=data_dir)
            started_import = time.perf_counter()
            result["studies"] = wait_imported(review)
            result["import_seconds"] = round(time.perf_counter() - started_import, 1)
        result["settle_seconds"] = database_settle()
        if args.with_import:
            big_import(review, records=args.with_import, work=work)
        since = timezone.now()
        base = f"http://127.0.0.1:{port}"
        # The reviewers, the floor and this thread (which reads the CPU counters as it opens).
        window = Window(parties=len(names) + 2, seconds=args.seconds)
        crowd = [
            Reviewer(
                base=base,
                slug=review.slug,
                username=name,
                read=tuple(args.read),
                window=window,
                seed=i,
            )
            for i, name in enumerate(names)
        ]
        floor = Floor(base=base, window=window)
        for thread in [floor, *crowd]:
            thread.start()
        window.wait()
        cpu_before = servers.cpu_seconds()
        for thread in [floor, *crowd]:
            thread.join()
        cpu_after = servers.cpu_seconds()
        cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after}
        decisions = sum(len(r.latencies) for r in crowd)
        answered = [(r.username, pk) for r in crowd for pk in r.recorded]
        result.update(
            decide_next_ms=summary([ms for r in crowd for ms in r.latencies]),
            floor_healthz_ms=summary(floor.healthz),
            floor_login_ms=summary(floor.login),
            slowest_decisions=sorted((s for r in crowd for s in r.slow), reverse=True)[:10],
            slowest_floor=sorted(floor.slow, reverse=True)[:10],
            errors=[e for r in crowd for e in r.errors][:20],
            worker=worker_activity(review, since),
            # CPU seconds each process used during the run (a cost the load does not hide), and
            # the web's CPU per decision: an upper bound, the floor's requests are in it too.
            cpu_seconds=cpu,
            web_cpu_ms_per_decision=round(cpu["web"] * 1000 / max(decisions, 1), 1),
            invariants=invariants(review, answered=answered, names=names, since=since),
            processes_alive=servers.alive(),
        )
    finally:
        servers.stop()
        result["runs_cut_off"] = ranking_runs_cut_off()
        result["load_after"] = uptime()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            result["work"] = str(work)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
