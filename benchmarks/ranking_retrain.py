"""One ranking retrain of a review's title stage in a fresh process: time and peak memory.

Runs what the worker's task runs (`ranking_run_execute`, the default model) on a review
already in the database (e.g. the one `decide_profile.py --studies 1000000` builds, after its
decisions), and reports the wall time, this process's CPU time (PostgreSQL's is not in it), the
run's own train/write split (above `LARGE_CORPUS` studies "write" also holds the chunked scoring
that feeds it), the process's peak resident memory (VmHWM) and the load average before and
after; once cold (features built) and, with `--warm`, once more, as a worker retraining every K
decisions does (below `LARGE_CORPUS` on the cached features; above it nothing is cached).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_screen1m \\
  CELERY_BROKER_URL=redis://127.0.0.1:6379/8 SLRWEB_SHARED_DATA=/work/shared/data \\
      nice -n 10 .venv/bin/python benchmarks/ranking_retrain.py --review decide-profile-1000000
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from screening.models import RankingRun, Review, Stage, Study  # noqa: E402
from screening.services.ranking import ranking_run_execute  # noqa: E402


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def retrain(review: Review, stage: Stage) -> dict:
    RankingRun.objects.filter(review=review, status__in=RankingRun.ACTIVE).delete()
    run = RankingRun.objects.create(review=review, stage=stage)
    load_before = load_average()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    done = ranking_run_execute(run_id=run.pk)
    assert done is not None
    return {
        "load_before": load_before,
        "load_after": load_average(),
        "cpu_seconds": round(cpu_seconds() - cpu_started, 1),
        "labelled": done.labelled,
        "status": done.status,
        "error": done.error[:300],
        "scored": done.scored,
        "seconds": round(time.perf_counter() - started, 1),
        "train_seconds": done.train_seconds,
        "write_seconds": done.write_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--review", required=True, metavar="SLUG")
    parser.add_argument("--warm", action="store_true", help="retrain a second time")
    args = parser.parse_args()
    review = Review.objects.get(slug=args.review)
    stage = Stage.objects.get(review=review, key="title")
    report = {
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "review": review.slug,
        "studies_in_stage": Study.objects.filter(current_stage=stage).count(),
        "peak_rss_mb_before": peak_rss_mb(),
        "cold": retrain(review, stage),
    }
    if args.warm:
        report["warm"] = retrain(review, stage)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
