"""One review with a million records (issue 17, item 5): import, dedup, funnel, studies search.

Builds the review from the real exports in the shared data (INVENTORY.tsv: every RIS, BibTeX
and CSV export, and the screening datasets' CSV exports), cycled and perturbed:

- each *variant* is a real record whose title has about 40 % of its words replaced by words of
  other real titles (chosen from the variant number), whose authors are those of another real
  record, with pages of its own and a distinct DOI (90 % of variants; the others have none).
  Its journal, volume, year, keywords and abstract are the real record's. Variants are different
  papers: dedup must keep them apart.
- every 10th variant is also written a second time, in the next file, as a true duplicate:
  an exact copy, a case/punctuation variant (title upper-cased with a full stop, DOI as an
  upper-case https://doi.org/ link), or a copy without its DOI.

So the expected result is known: one study per variant. The variant number travels in the
record's URL (which dedup never reads), and the check counts studies holding two variants
(false merges) and variants split over two studies (missed duplicates).

The files (RIS and CSV alternately, 100,000 records each, at least 4 files) are imported through
the product's path (`batch_create` + `batch_run`, what the upload view and the Celery task
call), one fresh subprocess per file; then `review_deduplicate` runs (what the task sent after
an import runs), then the worker's fill of the search documents the run deferred
(`search_documents_fill`, timed apart: the run is over when its studies are written); then
the funnel (`funnel_compute`, the worker's computation the reports and
dashboard read) and the studies page (the htmx fragment through Django's test Client with a
full-text query, and the selector alone) are timed. Each phase runs in a fresh subprocess whose
peak resident memory (VmHWM) is reported. Tasks the services enqueue go to an in-memory broker
(no worker runs).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb_million \\
        nice -n 10 .venv/bin/python benchmarks/million_bench.py [--records 1000000] [--reuse]

`--reuse` keeps a review already built for that size (and re-measures funnel and search);
`--redo-dedup` keeps its records and runs the dedup again from nothing (every record
unassigned, the review's studies and pairs deleted by plain SQL, fit for a million rows);
`--files DIR` imports the exports a previous run kept there (`--keep-files`) instead of
generating them again; `--import-only` stops after the imports. `--each-import` runs the
dedup after each import instead of once after all of them, as the product does (each import
queues its dedup): each run's figures are reported, the last one's into the other nine files'
studies. The dedup phase reports its
own CPU time, that of the processes it forks (DEDUP_PROCESSES) and their largest peak, its
PostgreSQL backend's and that of every PostgreSQL process (the server being local; the run
writes on several connections), so a figure taken on a busy machine can be compared.
"""

import argparse
import csv
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from import_bench import (  # this script's folder is on sys.path
    backend_cpu_seconds,
    server_cpu_seconds,
)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SLRWEB_SHARED_DATA", REPO.parent / "shared" / "data"))
PER_FILE = 100_000
MIN_FILES = 4
DUPLICATE_EVERY = 10
NO_DOI_EVERY = 10
WORD_SHARE = 0.4
SEARCHES = {
    "common word": "patients",
    "two words": "randomized trial",
    "phrase": '"systematic review"',
    "rare word": "thromboprophylaxis",
}
REQUESTS = 5
FORMATS = {"RIS": "ris", "BibTeX": "bibtex", "CSV": "csv"}
CSV_COLUMNS = (
    "title",
    "abstract",
    "authors",
    "year",
    "journal",
    "volume",
    "issue",
    "pages",
    "doi",
    "url",
    "keywords",
)
URL_PREFIX = "https://million.bench.invalid/v/"


def _django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # production: no query log kept in memory


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------------------------------
# The records: real exports, cycled and perturbed


def real_records() -> list[dict[str, Any]]:
    """Every distinct (by title) record of the real RIS, BibTeX and CSV exports."""
    _django()
    from screening.domain.normalise import fold
    from screening.domain.parsers import ParsedRecord, iter_entries

    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    with (DATA / "INVENTORY.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        fmt = FORMATS.get(row["format"])
        if fmt is None or not row["path"].startswith(("exports/", "screening/")):
            continue
        try:
            with (DATA / row["path"]).open("rb") as binary:
                items = [i for i in iter_entries(binary, fmt) if isinstance(i, ParsedRecord)]
        except Exception:  # noqa: BLE001 - a file the product refuses is not used
            continue
        for item in items:
            key = fold(item.title)
            if len(key.split()) < 4 or key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "title": item.title,
                    "abstract": item.abstract,
                    "authors": item.authors[:12],
                    "year": item.year,
                    "venue": item.venue,
                    "volume": item.volume,
                    "issue": item.issue,
                    "pages": item.pages,
                    "keywords": item.keywords[:10],
                }
            )
    return out


def variant(base: list[dict[str, Any]], words: list[str], v: int) -> dict[str, Any]:
    """Variant `v`: a different paper built from real record v % len(base)."""
    rng = random.Random(v)
    real = base[v % len(base)]
    title_words = real["title"].split()
    for pos in range(len(title_words)):
        if rng.random() < WORD_SHARE:
            title_words[pos] = rng.choice(words)
    return {
        **real,
        "title": " ".join(title_words),
        "authors": base[rng.randrange(len(base))]["authors"],
        # Pages of its own: two variants of one real record are two places in one venue.
        "pages": f"{v + 1}-{v + 9}",
        "doi": "" if v % NO_DOI_EVERY == 7 else f"10.5555/million.{v}",
        "url": f"{URL_PREFIX}{v}",
    }


def duplicate(record: dict[str, Any], v: int) -> dict[str, Any]:
    """A true duplicate of variant `v`: exact copy, case/punctuation variant, or no DOI."""
    kind = (v // DUPLICATE_EVERY) % 3
    if kind == 0:
        return record
    if kind == 1:
        doi = record["doi"]
        return {
            **record,
            "title": record["title"].upper() + ".",
            "doi": f"https://doi.org/{doi.upper()}" if doi else "",
        }
    return {**record, "doi": ""}


def file_plan(records: int) -> tuple[int, int]:
    """(variants, files) for a total of `records` (variants plus their duplicates)."""
    variants = records * DUPLICATE_EVERY // (DUPLICATE_EVERY + 1)
    files = max(MIN_FILES, -(-records // PER_FILE))
    return variants, files


def file_records(
    base: list[dict[str, Any]], words: list[str], variants: int, files: int, index: int
) -> Iterator[dict[str, Any]]:
    """File `index`: its share of the variants, then the duplicates of the previous file's."""
    lo, hi = variants * index // files, variants * (index + 1) // files
    for v in range(lo, hi):
        yield variant(base, words, v)
    prev = (index - 1) % files
    lo, hi = variants * prev // files, variants * (prev + 1) // files
    for v in range(lo, hi):
        if v % DUPLICATE_EVERY == 0:
            yield duplicate(variant(base, words, v), v)


def write_ris(path: Path, records: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for r in records:
            lines = ["TY  - JOUR", f"TI  - {r['title']}"]
            lines += [f"AU  - {a}" for a in r["authors"]]
            if r["year"]:
                lines.append(f"PY  - {r['year']}")
            for tag, name in (("T2", "venue"), ("VL", "volume"), ("IS", "issue")):
                if r[name]:
                    lines.append(f"{tag}  - {r[name]}")
            if r["pages"]:
                first, _, last = r["pages"].partition("-")
                lines.append(f"SP  - {first}")
                if last:
                    lines.append(f"EP  - {last}")
            if r["doi"]:
                lines.append(f"DO  - {r['doi']}")
            if r["abstract"]:
                lines.append(f"AB  - {' '.join(r['abstract'].split())}")
            lines += [f"KW  - {k}" for k in r["keywords"]]
            lines += [f"UR  - {r['url']}", "ER  - ", ""]
            out.write("\n".join(lines) + "\n")
            n += 1
    return n


def write_csv(path: Path, records: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            writer.writerow(
                [
                    r["title"],
                    r["abstract"],
                    "; ".join(r["authors"]),
                    r["year"] or "",
                    r["venue"],
                    r["volume"],
                    r["issue"],
                    r["pages"],
                    r["doi"],
                    r["url"],
                    "; ".join(r["keywords"]),
                ]
            )
            n += 1
    return n


def build_files(records: int, work: Path) -> tuple[list[Path], int, int]:
    base = real_records()
    words = sorted({w for r in base for w in r["title"].split() if len(w) > 3})
    variants, files = file_plan(records)
    paths = []
    for index in range(files):
        ris = index % 2 == 0
        path = work / f"million-{index + 1:02d}.{'ris' if ris else 'csv'}"
        rows = file_records(base, words, variants, files, index)
        (write_ris if ris else write_csv)(path, rows)
        paths.append(path)
    return paths, len(base), variants


# ---------------------------------------------------------------------------------------------
# Phases, each in a fresh subprocess (prints one JSON line)


def phase_setup(slug: str) -> dict[str, Any]:
    from screening.models import Review
    from screening.services.reviews import review_create, user_get_or_create

    Review.objects.filter(slug=slug).delete()
    owner, _ = user_get_or_create(username="million-owner")
    review = review_create(slug=slug, title="One million records", owner=owner)
    return {"review": review.pk}


def phase_import(slug: str, path: str) -> dict[str, Any]:
    from screening.models import Review
    from screening.services.imports import batch_create, batch_run, source_resolve

    review = Review.objects.get(slug=slug)
    source = source_resolve(review=review, name="Benchmark")
    started = time.perf_counter()
    with open(path, "rb") as stream:
        batch = batch_create(
            review=review,
            source=source,
            uploaded_by=None,
            file_name=Path(path).name,
            data=stream,
            enqueue=False,
        )
    created = time.perf_counter() - started
    batch = batch_run(batch_id=batch.pk)
    assert batch is not None and batch.status == "done", batch and batch.error
    return {
        "file": Path(path).name,
        "records": batch.records_read,
        "create_s": round(created, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def phase_dedup(slug: str) -> dict[str, Any]:
    from django.db import connection

    from screening.models import Review
    from screening.services.dedup import review_deduplicate

    review = Review.objects.get(slug=slug)
    backend = connection.connection.info.backend_pid
    backend_before = backend_cpu_seconds(backend)
    server_before = server_cpu_seconds()
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    children_before = _children_cpu_seconds()
    started = time.perf_counter()
    counts = review_deduplicate(review=review)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    children_cpu = _children_cpu_seconds() - children_before
    # The processes the run forked to scan and score (DEDUP_PROCESSES): the largest one's peak
    # counts the parent's pages it shared, as the kernel's VmHWM does.
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    backend_after = backend_cpu_seconds(backend)
    server_after = server_cpu_seconds()
    same_backend = connection.connection.info.backend_pid == backend
    return {
        "seconds": round(seconds, 1),
        **counts,
        "cpu_s": round(cpu, 1),
        "forked_cpu_s": round(children_cpu, 1),
        "forked_peak_rss_mb": round(children_peak),
        "postgres_cpu_s": round(backend_after - backend_before, 1)
        if same_backend and backend_before is not None and backend_after is not None
        else None,
        # Every PostgreSQL process: the run's writer connections (DEDUP_WRITERS) included.
        "postgres_server_cpu_s": round(server_after - server_before, 1)
        if server_before is not None and server_after is not None
        else None,
        "load_1min_before_after": [load_before, os.getloadavg()[0]],
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phase_search_fill(slug: str) -> dict[str, Any]:
    """What the worker does after a run that deferred its new studies' search documents
    (`search_documents_fill`, its short transactions), until none is left."""
    from screening.models import Review
    from screening.services.study_search import search_documents_fill

    review = Review.objects.get(slug=slug)
    server_before = server_cpu_seconds()
    started = time.perf_counter()
    # In one call: the worker's tasks take STUDIES_PER_TASK each, each from where the last
    # stopped, which costs a lock and a query more per task.
    filled = search_documents_fill(review_id=review.pk, limit=10**9)
    seconds = time.perf_counter() - started
    server_after = server_cpu_seconds()
    return {
        "seconds": round(seconds, 1),
        "filled": filled,
        "postgres_server_cpu_s": round(server_after - server_before, 1)
        if server_before is not None and server_after is not None
        else None,
    }


def phase_undedup(slug: str) -> dict[str, Any]:
    """Every record of the review unassigned, its studies and their rows and its pairs gone:
    the state right after the imports. Plain SQL, not Django's cascade (hours at 1M)."""
    from django.db import connection, transaction

    from screening.models import Review

    review = Review.objects.get(slug=slug)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE screening_record SET study_id = NULL "
            "WHERE review_id = %s AND study_id IS NOT NULL",
            [review.pk],
        )
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.confrelid = 'screening_study'::regclass "
            "AND c.conrelid <> 'screening_record'::regclass"
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'DELETE FROM "{table}" WHERE "{column}" IN '
                "(SELECT id FROM screening_study WHERE review_id = %s)",
                [review.pk],
            )
        for table in ("screening_duplicatecandidate", "screening_studymerge", "screening_study"):
            cursor.execute(f"DELETE FROM {table} WHERE review_id = %s", [review.pk])
    with connection.cursor() as cursor:
        # The records' table rewritten, as compact as the imports left it: each run's UPDATE of
        # every record leaves a dead version of each, and from one run to the next the table
        # grew (2.75 GB after three runs) and every run read more pages than the last.
        cursor.execute("VACUUM FULL ANALYZE screening_record")
        for table in ("screening_study", "screening_duplicatecandidate"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return {"seconds": round(time.perf_counter() - started, 1)}


def phase_check(slug: str) -> dict[str, Any]:
    """Studies holding two variants (false merges), variants in two studies (missed)."""
    from django.db import connection

    from screening.models import Review

    review = Review.objects.get(slug=slug)
    with connection.cursor() as cursor:
        # Fresh planner statistics and visibility map after the bulk load, as autovacuum
        # gives them within minutes; measuring before would time plans on stale statistics.
        cursor.execute("VACUUM ANALYZE screening_record")
        cursor.execute("VACUUM ANALYZE screening_study")
    sql = """
        WITH r AS (
            SELECT id, study_id, substr(url, %s)::int AS v FROM screening_record
            WHERE review_id = %s AND url LIKE %s
        )
        SELECT
            (SELECT count(DISTINCT v) FROM r),
            (SELECT count(*) FROM (SELECT study_id FROM r GROUP BY study_id
                                   HAVING count(DISTINCT v) > 1) s),
            (SELECT count(*) FROM (SELECT v FROM r GROUP BY v
                                   HAVING count(DISTINCT study_id) > 1) m),
            (SELECT count(*) FROM r WHERE study_id IS NULL),
            (SELECT count(DISTINCT a.v) FROM screening_duplicatecandidate c
             JOIN r a ON a.id = c.record_a_id JOIN r b ON b.id = c.record_b_id
             WHERE c.review_id = %s AND a.v = b.v)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [len(URL_PREFIX) + 1, review.pk, URL_PREFIX + "%", review.pk])
        variants, false_merges, missed, unassigned, queued = cursor.fetchone()
    return {
        "expected_studies": variants,
        "studies_with_two_variants": false_merges,
        "variants_split": missed,
        "split_variants_queued": queued,
        "unassigned_records": unassigned,
    }


def phase_funnel(slug: str) -> dict[str, Any]:
    from screening.models import FunnelSnapshot, Review
    from screening.services.funnel import funnel_compute

    review = Review.objects.get(slug=slug)
    times = []
    for _ in range(REQUESTS + 1):
        started = time.perf_counter()
        snapshot = funnel_compute(review=review)
        times.append(time.perf_counter() - started)
    FunnelSnapshot.objects.filter(review=review).exclude(pk=snapshot.pk).delete()
    runs = times[1:]  # the first warms the cache
    return {
        "first_s": round(times[0], 2),
        "p50_s": round(statistics.median(runs), 2),
        "max_s": round(max(runs), 2),
        "identified": snapshot.data.get("database_results"),
    }


def phase_search(slug: str) -> dict[str, Any]:
    from django.conf import settings
    from django.test import Client

    from screening.models import Membership, Review
    from screening.selectors.study_list import StudyFilters, studies_listed, studies_page

    settings.ALLOWED_HOSTS = ["*"]
    review = Review.objects.get(slug=slug)
    # The owner: http_bench.py --review adds its reviewers as members.
    owner = review.memberships.get(role=Membership.Role.OWNER).user
    client = Client()
    client.force_login(owner)
    out: dict[str, Any] = {}
    for name, text in {"no query (list)": "", **SEARCHES}.items():
        fragment, selector = [], []
        count = ""
        for _ in range(REQUESTS + 1):
            started = time.perf_counter()
            response = client.get(
                f"/r/{slug}/studies/", {"q": text} if text else {}, HTTP_HX_REQUEST="true"
            )
            fragment.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            started = time.perf_counter()
            filters = StudyFilters(search=text)
            page = studies_page(  # as the view calls it: beyond the cap, unranked
                studies_listed(review=review, user=owner, filters=filters),
                1,
                by_relevance=filters.by_relevance,
            )
            list(page.object_list)
            count = f"{page.paginator.count:,}{'+' if page.paginator.count_capped else ''}"
            selector.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "query": text,
            "matches": count,
            "fragment_p50_ms": round(statistics.median(fragment[1:])),
            "fragment_max_ms": round(max(fragment[1:])),
            "selector_p50_ms": round(statistics.median(selector[1:])),
        }
    return out


PHASES = {
    "setup": phase_setup,
    "import": phase_import,
    "dedup": phase_dedup,
    "search_fill": phase_search_fill,
    "undedup": phase_undedup,
    "check": phase_check,
    "funnel": phase_funnel,
    "search": phase_search,
}


def run_phase(name: str, slug: str, *extra: str) -> dict[str, Any]:
    """Run a phase in a fresh interpreter; its result with its peak RSS and wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--slug", slug, *extra],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"phase {name} {extra} failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"  {name} {' '.join(extra)}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def review_built(slug: str) -> int:
    _django()
    from screening.models import Record, Review

    review = Review.objects.filter(slug=slug).first()
    if review is None:
        return 0
    return Record.objects.filter(review=review).count()


def uptime() -> str:
    return subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()


def machine() -> str:
    _django()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return (
        f"{os.cpu_count()} cores, {int(mem) // 1024 // 1024} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {server}"
    )


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| measure | figure | peak RSS | target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep a review already built")
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument(
        "--redo-dedup", action="store_true", help="keep a built review's records, dedup again"
    )
    parser.add_argument("--files", type=Path, help="import the exports kept in this directory")
    parser.add_argument(
        "--import-only", action="store_true", help="stop after the imports (see --redo-dedup)"
    )
    parser.add_argument(
        "--each-import", action="store_true", help="dedup after each import, as the product does"
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--slug", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    # Tasks the services send (funnel, ranking, dedup) go nowhere: no worker runs here.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["CELERY_RESULT_BACKEND"] = "cache+memory://"
    os.environ.setdefault("IMPORT_MAX_BYTES", str(1024 * 1024 * 1024))
    if args.phase:
        _django()
        from django.core.management import call_command

        if args.phase in {"setup", "check"}:
            call_command("migrate", verbosity=0)  # a reused review may predate a migration
        extra = [args.file] if args.file else []
        result = PHASES[args.phase](args.slug, *extra)
        result["peak_rss_mb"] = round(_vmhwm_mb())
        print(json.dumps(result, default=str))
        return

    slug = f"million-{args.records}"
    load_before = uptime()
    began = time.perf_counter()
    imports: list[dict[str, Any]] = []
    dedup: dict[str, Any] | None = None
    dedups: list[dict[str, Any]] = []  # --each-import: one run per import
    # The worker's fill of the search documents each run deferred, after it (not in its time).
    fills: list[dict[str, Any]] = []
    generate_s = 0.0
    variants, _ = file_plan(args.records)
    built = variants + -(-variants // DUPLICATE_EVERY)  # the variants and their duplicates
    if (args.reuse or args.redo_dedup) and review_built(slug) >= built:
        print(f"reusing review {slug}", file=sys.stderr)
        if args.redo_dedup:
            run_phase("undedup", slug)
            dedup = run_phase("dedup", slug)
            fills.append(run_phase("search_fill", slug))
    else:
        work = Path(tempfile.mkdtemp(prefix="million-bench-"))
        os.environ["MEDIA_ROOT"] = str(work / "media")
        try:
            started = time.perf_counter()
            if args.files:
                paths = sorted(args.files.glob("million-*.*"))
                print(f"{len(paths)} files kept in {args.files}", file=sys.stderr)
            else:
                paths, distinct, variants = build_files(args.records, work)
                print(
                    f"{len(paths)} files from {distinct} distinct real records, "
                    f"{variants} variants, {sum(p.stat().st_size for p in paths) / 2**20:.0f} MB",
                    file=sys.stderr,
                )
            generate_s = time.perf_counter() - started
            run_phase("setup", slug)
            for path in paths:
                imports.append(run_phase("import", slug, "--file", str(path)))
                if args.each_import:
                    dedups.append(run_phase("dedup", slug))
                    fills.append(run_phase("search_fill", slug))
            if args.import_only:
                return
            if not args.each_import:
                dedup = run_phase("dedup", slug)
                fills.append(run_phase("search_fill", slug))
        finally:
            if not args.keep_files:
                shutil.rmtree(work, ignore_errors=True)
    check = run_phase("check", slug)
    funnel = run_phase("funnel", slug)
    search = run_phase("search", slug)
    load_after = uptime()

    rows: list[tuple[str, str, str, str]] = []
    if imports:
        total = sum(i["records"] for i in imports)
        rows.append(
            (
                f"import, {len(imports)} files (RIS and CSV)",
                f"{total:,} records in {sum(i['wall_s'] for i in imports):.0f} s "
                f"(slowest file {max(i['seconds'] for i in imports):.0f} s)",
                f"{max(i['peak_rss_mb'] for i in imports)} MB",
                "< 2 GB",
            )
        )
    if dedup:
        rows.append(
            (
                "dedup after the imports",
                f"{dedup['seconds']:.0f} s (CPU {dedup['cpu_s']:.0f} s, its forked "
                f"processes' {dedup['forked_cpu_s']:.0f} s; PostgreSQL "
                f"{dedup['postgres_server_cpu_s']} s over all its processes, the run's own "
                f"backend {dedup['postgres_cpu_s']} s); {dedup['studies']:,} studies, "
                f"{dedup['candidates']:,} pairs queued",
                f"{dedup['peak_rss_mb']} MB (forked: {dedup['forked_peak_rss_mb']} MB)",
                "< 300 s, < 2 GB",
            )
        )
    for number, run in enumerate(dedups, start=1):
        rows.append(
            (
                f"dedup after import {number} of {len(dedups)}",
                f"{run['seconds']:.0f} s (CPU {run['cpu_s']:.0f} s, forked "
                f"{run['forked_cpu_s']:.0f} s; PostgreSQL "
                f"{run['postgres_server_cpu_s']} s over all its processes); "
                f"{run['studies']:,} studies, {run['candidates']:,} pairs queued",
                f"{run['peak_rss_mb']} MB (forked: {run['forked_peak_rss_mb']} MB)",
                "< 2 GB",
            )
        )
    if dedups:
        rows.append(
            (
                "dedup, all runs",
                f"{sum(run['seconds'] for run in dedups):.0f} s",
                f"{max(run['peak_rss_mb'] for run in dedups)} MB",
                "",
            )
        )
    if fills:
        rows.append(
            (
                "search documents filled by the worker after "
                + ("each run" if len(fills) > 1 else "the run"),
                f"{sum(f['filled'] for f in fills):,} studies in "
                f"{sum(f['seconds'] for f in fills):.0f} s"
                + (f" (slowest {max(f['seconds'] for f in fills):.0f} s)" if len(fills) > 1 else "")
                + f"; PostgreSQL {sum(f['postgres_server_cpu_s'] or 0 for f in fills):.0f} s",
                f"{max(f['peak_rss_mb'] for f in fills)} MB",
                "",
            )
        )
    rows.append(
        (
            "dedup result vs truth",
            f"{check['expected_studies']:,} expected studies; "
            f"{check['studies_with_two_variants']:,} studies merge two variants; "
            f"{check['variants_split']:,} variants split "
            f"({check['split_variants_queued']:,} of them queued for a human); "
            f"{check['unassigned_records']:,} records unassigned",
            f"{check['peak_rss_mb']} MB",
            "0 / 0 / 0",
        )
    )
    rows.append(
        (
            "funnel_compute",
            f"p50 {funnel['p50_s']} s, max {funnel['max_s']} s (first {funnel['first_s']} s)",
            f"{funnel['peak_rss_mb']} MB",
            "< 2 s",
        )
    )
    for name, item in search.items():
        if not isinstance(item, dict):
            continue
        rows.append(
            (
                f"studies page, {name} `{item['query']}` ({item['matches']} matches)",
                f"fragment p50 {item['fragment_p50_ms']} ms, max {item['fragment_max_ms']} ms; "
                f"selector p50 {item['selector_p50_ms']} ms",
                f"{search['peak_rss_mb']} MB",
                "< 300 ms",
            )
        )
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}")
    print(f"uptime before: {load_before}\nuptime after:  {load_after}")
    print(f"records requested: {args.records:,}; generation {generate_s:.0f} s; ")
    print(f"total {time.perf_counter() - began:.0f} s\n")
    print(table(rows))


if __name__ == "__main__":
    main()
