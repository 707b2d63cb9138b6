"""Deduplication benchmark: slrweb's duplicate detection against bib-dedupe on real data.

Runs `screening.domain.dedup.deduplicate` (the code the service and the Celery task call) on
the bib-dedupe benchmark sets (stroke, haematology, respiratory; ground truth in
merged_record_ids.csv, one duplicate cluster per row), and bib-dedupe 0.11 on the same files in
the same run, as a subprocess in its own virtualenv (benchmarks/.venv-bibdedupe; it is never a
project dependency). Reports pairwise precision / recall / F1 (pairs within clusters after
transitive closure) for the automatic merges and for merges + grey-zone queue, predicted vs
true unique studies, queue size, time and peak memory; then deduplicates ~100,000 records built
by repeating and perturbing the real ones (typos, dropped DOIs, case).

    .venv/bin/python benchmarks/dedup_bench.py               # everything
    .venv/bin/python benchmarks/dedup_bench.py --skip-bibdedupe --skip-large

Set up the competitor once:
    python3.11 -m venv benchmarks/.venv-bibdedupe
    benchmarks/.venv-bibdedupe/bin/pip install 'bib-dedupe==0.11.*'
"""

import argparse
import csv
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH = DATA / "dedup" / "bib-dedupe-benchmark"
SETS = ("stroke", "haematology", "respiratory")
BIBDEDUPE_PYTHON = Path(
    os.environ.get("BIBDEDUPE_PYTHON", REPO / "benchmarks" / ".venv-bibdedupe" / "bin" / "python")
)


def read_records(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_truth(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["merged_ids"].split(";") for row in csv.DictReader(fh) if row["merged_ids"]]


def to_dedup_records(rows: list[dict]):
    from screening.domain.dedup import DedupRecord
    from screening.domain.normalise import split_authors

    out = []
    for row in rows:
        year = (row.get("year") or "").strip()
        out.append(
            DedupRecord(
                key=row["ID"],
                title=row.get("title") or "",
                authors=tuple(split_authors(row.get("author") or "")),
                year=int(float(year)) if year[:4].isdigit() else None,
                venue=row.get("journal") or row.get("booktitle") or "",
                volume=row.get("volume") or "",
                issue=row.get("number") or "",
                pages=row.get("pages") or "",
                doi=row.get("doi") or "",
                pmid=row.get("pmid") or "",
                publication_type=row.get("ENTRYTYPE") or "",
            )
        )
    return out


def pairs_of(clusters) -> set[tuple[str, str]]:
    out = set()
    for cluster in clusters:
        for a, b in combinations(sorted(cluster), 2):
            out.add((a, b))
    return out


def close(clusters, extra_pairs) -> list[list[str]]:
    """Transitive closure of clusters joined by extra pairs."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for cluster in clusters:
        for key in cluster:
            parent[find(key)] = find(cluster[0])
    for a, b in extra_pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for key in list(parent):
        groups.setdefault(find(key), []).append(key)
    return list(groups.values())


def prf(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": len(predicted) - tp,
        "fn": len(truth) - tp,
    }


def evaluate(result, keys: list[str], truth_clusters: list[list[str]]) -> dict:
    truth = pairs_of(truth_clusters)
    true_unique = len(keys) - sum(len(c) - 1 for c in truth_clusters)
    auto_clusters = [c for c in result.clusters if len(c) > 1]
    with_queue = close(result.clusters, [(p.a, p.b) for p in result.candidates])
    queue_true = sum(1 for p in result.candidates if tuple(sorted((p.a, p.b))) in truth)
    return {
        "records": len(keys),
        "true_unique": true_unique,
        "predicted_unique": len(result.clusters),
        "auto": prf(pairs_of(auto_clusters), truth),
        "with_queue": prf(pairs_of([c for c in with_queue if len(c) > 1]), truth),
        "queue": len(result.candidates),
        "queue_true_pairs": queue_true,
        "pairs_compared": result.pairs_compared,
    }


def run_ours(records) -> tuple[object, float, float]:
    from screening.domain.dedup import deduplicate

    # The median of three runs: this machine is shared, a single sub-second run is noisy.
    # bib-dedupe's single run lasts 10-60 s and averages the noise out by itself.
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result = deduplicate(records)
        times.append(time.perf_counter() - started)
    seconds = sorted(times)[1]
    tracemalloc.start()
    deduplicate(records)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 1e6


BIBDEDUPE_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from bib_dedupe.bib_dedupe import prep, block, match, cluster
df = pd.read_csv(sys.argv[1])
started = time.perf_counter()
records = prep(df, verbosity_level=0)
pairs = block(records, verbosity_level=0)
matched = match(pairs, verbosity_level=0)
sets = cluster(matched, verbosity_level=0)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "clusters": [sorted(s) for s in sets]}))
"""


def run_bibdedupe(csv_path: Path) -> dict | None:
    if not BIBDEDUPE_PYTHON.exists():
        return None
    proc = subprocess.run(
        [str(BIBDEDUPE_PYTHON), "-c", BIBDEDUPE_SCRIPT, str(csv_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
    )
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    return json.loads(last)


def perturb_title(title: str, rng: random.Random) -> str:
    if not title:
        return title
    choice = rng.random()
    if choice < 0.3:
        return title.upper() if rng.random() < 0.5 else title.lower()
    if choice < 0.6:
        pos = rng.randrange(len(title))
        op = rng.random()
        letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
        if op < 0.4:
            return title[:pos] + letter + title[pos + 1 :]
        if op < 0.7:
            return title[:pos] + title[pos + 1 :]
        return title[:pos] + letter + title[pos:]
    return title


def build_large(target: int, seed: int = 7):
    """About `target` records: every real record of the three sets repeated with perturbations
    (a typo, a dropped or added character, upper or lower case, its DOI dropped). All copies of
    one real study are one study (as if many libraries had exported it); each true cluster
    gets a synthetic DOI that 40% of the copies lose."""
    from dataclasses import replace

    rng = random.Random(seed)
    base = []
    for name in SETS:
        rows = read_records(BENCH / name / "records_pre_merged.csv")
        clusters = read_truth(BENCH / name / "merged_record_ids.csv")
        cluster_of = {k: i for i, c in enumerate(clusters) for k in c}
        for r in to_dedup_records(rows):
            base.append((f"{name}:{r.key}", f"{name}:{cluster_of.get(r.key, r.key)}", r))
    rounds = max(1, -(-target // len(base)))
    records = []
    truth: dict[str, list[str]] = {}
    for k in range(rounds):
        for key, cid, r in base:
            copy_key = f"{k}:{key}"
            doi = f"10.5555/{cid}".lower() if rng.random() < 0.6 else ""
            title = r.title if k == 0 else perturb_title(r.title, rng)
            records.append(replace(r, key=copy_key, title=title, doi=doi))
            truth.setdefault(cid, []).append(copy_key)
    return records, [c for c in truth.values() if len(c) > 1]


AUTO_THRESHOLDS = (8.0, 8.5, 9.0, 9.5, 10.0, 10.5, 11.0)


def held_out() -> dict:
    """Tune on two sets, report on the third, all three ways. The tuned parameter is the
    automatic-merge threshold: the one with the best mean F1 on the two tuning sets among those
    keeping precision >= 0.995 on both (ties: the highest, the most cautious). The held-out
    set's figures are then those of a threshold chosen without seeing it."""
    from screening.domain.dedup import AUTO_THRESHOLD, deduplicate

    data = {}
    for name in SETS:
        records = to_dedup_records(read_records(BENCH / name / "records_pre_merged.csv"))
        truth = read_truth(BENCH / name / "merged_record_ids.csv")
        data[name] = {
            threshold: evaluate(
                deduplicate(records, auto_threshold=threshold), [r.key for r in records], truth
            )["auto"]
            for threshold in AUTO_THRESHOLDS
        }
    folds = {}
    for held in SETS:
        tuning = [name for name in SETS if name != held]

        def merit(threshold: float, tuning: list = tuning) -> tuple:
            ok = all(data[name][threshold]["precision"] >= 0.995 for name in tuning)
            mean_f1 = sum(data[name][threshold]["f1"] for name in tuning) / len(tuning)
            return (ok, round(mean_f1, 4), threshold)

        chosen = max(AUTO_THRESHOLDS, key=merit)
        folds[held] = {
            "tuned_on": tuning,
            "threshold": chosen,
            "tuning_mean_f1": merit(chosen)[1],
            "held_out": data[held][chosen],
        }
    return {
        "grid": list(AUTO_THRESHOLDS),
        "shipped_threshold": AUTO_THRESHOLD,
        "folds": folds,
        "by_threshold": {
            name: {str(t): data[name][t]["f1"] for t in AUTO_THRESHOLDS} for name in SETS
        },
    }


def web_bench(repeats: int = 20) -> dict:
    """Through PostgreSQL and the views: the three sets imported as records of one review
    (4,695 records from three "libraries"), the service's first run, an incremental run of 300
    re-exported records, then the merged-studies page, split and unmerge as htmx requests
    through Django's test client (median and max of `repeats` each). Needs DATABASE_URL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, models
    from django.test import Client
    from django.urls import reverse

    from screening.models import ImportBatch, Record, Review, Source, Study
    from screening.services.dedup import review_deduplicate, studies_merge
    from screening.services.reviews import review_create, user_get_or_create

    if connection.vendor != "postgresql":
        raise SystemExit("--web needs DATABASE_URL set to a PostgreSQL database.")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    slug = "bench-dedup-web"
    Review.objects.filter(slug=slug).delete()
    owner, _ = user_get_or_create(username="bench-owner")
    review = review_create(slug=slug, title="Dedup web benchmark", owner=owner)

    def add(name: str, records: list) -> None:
        source, _ = Source.objects.get_or_create(review=review, name=name)
        batch = ImportBatch.objects.create(
            review=review,
            source=source,
            original_name=f"{name}.csv",
            sha256=name,
            file=f"imports/{name}.csv",
            status=ImportBatch.Status.DONE,
        )
        Record.objects.bulk_create(
            [
                Record(
                    review=review,
                    batch=batch,
                    position=i,
                    title=r.title,
                    authors=list(r.authors),
                    year=r.year,
                    venue=r.venue,
                    # The import cuts these to the columns' lengths; a few CSV cells are longer.
                    volume=r.volume[:60],
                    issue=r.issue[:60],
                    pages=r.pages[:60],
                    doi=r.doi,
                    pmid=r.pmid,
                    publication_type=r.publication_type[:100],
                )
                for i, r in enumerate(records, start=1)
            ],
            batch_size=2000,
        )

    try:
        everything = []
        for name in SETS:
            records = to_dedup_records(read_records(BENCH / name / "records_pre_merged.csv"))
            add(name, records)
            everything.extend(records)
        started = time.perf_counter()
        first = review_deduplicate(review=review)
        first_seconds = time.perf_counter() - started
        add("re-export", everything[::16][:300])
        started = time.perf_counter()
        second = review_deduplicate(review=review)
        incremental_seconds = time.perf_counter() - started

        client = Client()
        client.force_login(owner)
        htmx = {"HTTP_HX_REQUEST": "true"}
        merged_url = reverse("screening:dedup_merged", kwargs={"slug": slug})

        def timed(method, target, data=None, **extra) -> float:
            started = time.perf_counter()
            response = getattr(client, method)(target, data or {}, **extra)
            assert response.status_code == 200, (target, response.status_code)
            return 1000 * (time.perf_counter() - started)

        full_page = client.get(merged_url)
        page_ms = [timed("get", merged_url, {"page": 2}, **htmx) for _ in range(repeats)]
        search_ms = [timed("get", merged_url, {"q": "eculizumab"}, **htmx) for _ in range(repeats)]
        several = (
            Study.objects.filter(review=review)
            .annotate(n=models.Count("records"))
            .filter(n__gt=2)
            .order_by("id")
        )
        split_ms = []
        for study in several[:repeats]:
            record = study.records.order_by("-id").first()
            split_url = reverse(
                "screening:dedup_split", kwargs={"slug": slug, "record_id": record.pk}
            )
            split_ms.append(timed("post", split_url, {"page": "1"}, **htmx))
        singles = list(
            Study.objects.filter(review=review)
            .annotate(n=models.Count("records"))
            .filter(n=1)
            .order_by("id")[: 2 * repeats]
        )
        unmerge_ms = []
        for first_study, second_study in zip(singles[::2], singles[1::2], strict=False):
            merge = studies_merge(review=review, first=first_study, second=second_study, user=owner)
            unmerge_url = reverse(
                "screening:dedup_unmerge", kwargs={"slug": slug, "merge_id": merge.pk}
            )
            unmerge_ms.append(timed("post", unmerge_url, {"page": "1"}, **htmx))
    finally:
        Review.objects.filter(slug=slug).delete()

    def summary(values: list[float]) -> dict:
        return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1)}

    return {
        "records": first["records"],
        "first_run": {**first, "seconds": round(first_seconds, 2)},
        "incremental_run": {**second, "new_records": 300, "seconds": round(incremental_seconds, 2)},
        "merged_page_bytes": len(full_page.content),
        "merged_page_studies_shown": full_page.content.count(b"<article"),
        "page_2": summary(page_ms),
        "search": summary(search_ms),
        "split": summary(split_ms),
        "unmerge": summary(unmerge_ms),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-bibdedupe", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument(
        "--held-out", action="store_true", help="tune on two sets, report on the third"
    )
    parser.add_argument(
        "--web", action="store_true", help="also the PostgreSQL run and the merged-studies views"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "sets": {},
    }
    for name in SETS:
        csv_path = BENCH / name / "records_pre_merged.csv"
        rows = read_records(csv_path)
        truth = read_truth(BENCH / name / "merged_record_ids.csv")
        records = to_dedup_records(rows)
        result, seconds, peak_mb = run_ours(records)
        entry = evaluate(result, [r.key for r in records], truth)
        entry["seconds"] = round(seconds, 3)
        entry["ms_per_record"] = round(1000 * seconds / len(records), 4)
        entry["peak_mb"] = round(peak_mb, 1)
        if not args.skip_bibdedupe:
            theirs = run_bibdedupe(csv_path)
            if theirs is not None:
                singletons = {r.key for r in records} - {k for c in theirs["clusters"] for k in c}
                predicted_unique = len(theirs["clusters"]) + len(singletons)
                entry["bibdedupe"] = {
                    **prf(pairs_of(theirs["clusters"]), pairs_of(truth)),
                    "predicted_unique": predicted_unique,
                    "seconds": round(theirs["seconds"], 2),
                    "ms_per_record": round(1000 * theirs["seconds"] / len(records), 3),
                }
                entry["speedup"] = round(
                    entry["bibdedupe"]["ms_per_record"] / max(entry["ms_per_record"], 1e-9), 1
                )
        report["sets"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr)
    if not args.skip_large:
        records, truth = build_large(args.large)
        from screening.domain.dedup import deduplicate

        started = time.perf_counter()
        result = deduplicate(records)
        seconds = time.perf_counter() - started
        large = evaluate(result, [r.key for r in records], truth)
        large["seconds"] = round(seconds, 2)
        # Whole process, the 100k input records built in memory included.
        large["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        report["large"] = large
    if args.held_out:
        report["held_out"] = held_out()
    if args.web:
        report["web"] = web_bench()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
