"""Prioritisation benchmark: slrweb's `simulate` beside ASReview LAB's `asreview simulate`.

Both tools replay the same labelled datasets from the same priors: for seed s (1..N), one relevant
and one irrelevant row chosen by `screening.domain.ranking.prior_pick(labels, s)`, passed to
ASReview as `--prior-idx`. ASReview runs its default model (ELAS u4: TF-IDF + SVM) with
`--seed s`, retraining after every record, until the last relevant record is found (its default
`--n-stop`). Both orders are scored by the same metric code (`screening.domain.metrics`), priors
counted as screened.

ASReview is installed only in its own virtual environment and run as a subprocess:

    python3.11 -m venv benchmarks/.venv-asreview
    benchmarks/.venv-asreview/bin/pip install 'asreview>=3.0,<3.1'

Usage (from the repository root, with the project's virtual environment):

    .venv/bin/python benchmarks/prioritisation_bench.py --part ours
    .venv/bin/python benchmarks/prioritisation_bench.py --part asreview   # minutes per seed
    .venv/bin/python benchmarks/prioritisation_bench.py --part retrain
    .venv/bin/python benchmarks/prioritisation_bench.py --part table
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/prioritisation_bench.py \
        --part screening-retrain   # retrain timing in a real review during screening
    .venv/bin/python benchmarks/prioritisation_bench.py --part stopping --seeds 10 --batch-size 10
    benchmarks/.venv-embed/bin/python benchmarks/prioritisation_bench.py --part embed
    .venv/bin/python benchmarks/prioritisation_bench.py --part tune \
        --variants svm-r20-df1,emb-svm,emb-logistic,tfidf+emb-w0.3,tfidf+emb-w0.5
    .venv/bin/python benchmarks/prioritisation_bench.py --part tune-table

`--part embed` computes all-MiniLM-L6-v2 sentence embeddings once per dataset (see
benchmarks/minilm.py for its virtualenv); `--part tune` runs the TF-IDF and embedding variants
through `ranking.simulate`; `--part tune-table` compares them with ASReview (its documented
per-seed figures when no ASReview run is in benchmarks/out/) and applies the
leave-one-dataset-out rule.

Results go to benchmarks/out/ (git-ignored); ASReview runs already there are reused, so an
interrupted run resumes. `--part table` prints the Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from scipy import sparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screening.domain import metrics, ranking  # noqa: E402

DATA = (
    Path(os.environ.get("SLRWEB_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "screening/asreview-systematic-review-datasets"
)
DATASETS = ("Kitchenham_2010", "Nagtegaal_2019")
OUT = ROOT / "benchmarks" / "out"
ASREVIEW = ROOT / "benchmarks" / ".venv-asreview" / "bin" / "asreview"
KEYS = ("wss@95", "wss@100", "recall@10%", "recall@25%", "rrf@10", "seconds")


def read_rows(name: str) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with (DATA / f"{name}.csv").open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def run_ours(
    name: str, seeds: int, model: str, batch_size: int, stopping: list[str] | None = None
) -> dict:
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "simulate",
        "--dataset",
        str(DATA / f"{name}.csv"),
        "--seeds",
        str(seeds),
        "--model",
        model,
        "--batch-size",
        str(batch_size),
        *(stopping or []),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(result.stdout)
    report["command"] = " ".join(["manage.py", *command[2:]])
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def asreview_labels_in_order(project_file: Path, n_records: int) -> list[bool]:
    """Labels in the order ASReview screened them; the unscreened rest (all irrelevant, since
    the run stops at the last relevant record) is appended."""
    with zipfile.ZipFile(project_file) as archive, tempfile.TemporaryDirectory() as tmp:
        db_name = next(n for n in archive.namelist() if n.endswith("results.db"))
        archive.extract(db_name, tmp)
        with sqlite3.connect(Path(tmp) / db_name) as conn:
            labels = [
                bool(label)
                for (label,) in conn.execute(
                    "SELECT label FROM results WHERE label IS NOT NULL ORDER BY rowid"
                )
            ]
    return labels + [False] * (n_records - len(labels))


def run_asreview(name: str, seeds: int) -> dict:
    if not ASREVIEW.exists():
        raise SystemExit(f"{ASREVIEW} is missing: create benchmarks/.venv-asreview (see docstring)")
    rows = read_rows(name)
    data = ranking.labelled_dataset_read(rows, label_column="label_included")
    if data.skipped or len(data.relevant) != len(rows):
        raise SystemExit(f"{name}: unlabelled rows would shift row indices; not comparable")
    version = (
        subprocess.run([str(ASREVIEW), "--version"], capture_output=True, text=True, check=True)
        .stdout.strip()
        .removeprefix("asreview ")
    )
    per_seed = []
    for seed in range(1, seeds + 1):
        cached = OUT / f"asreview_{name}_seed{seed}.json"
        if cached.exists():
            per_seed.append(json.loads(cached.read_text()))
            continue
        relevant_row, irrelevant_row = ranking.prior_pick(data.relevant, seed)
        project = OUT / f"asreview_{name}_seed{seed}.asreview"
        project.unlink(missing_ok=True)
        command = [
            str(ASREVIEW),
            "simulate",
            str(DATA / f"{name}.csv"),
            "--prior-idx",
            str(relevant_row),
            str(irrelevant_row),
            "--seed",
            str(seed),
            "-o",
            str(project),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        labels = asreview_labels_in_order(project, len(rows))
        if not (labels[0] and not labels[1]):
            raise SystemExit(f"{name} seed {seed}: ASReview did not start from the given priors")
        entry = {
            "seed": seed,
            **metrics.summary(labels),
            "seconds": round(seconds, 1),
            "prior_rows": [relevant_row, irrelevant_row],
        }
        cached.write_text(json.dumps(entry))
        per_seed.append(entry)
        print(name, entry, flush=True)
    return {
        "dataset": name,
        "records": len(rows),
        "relevant": sum(data.relevant),
        "model": f"ASReview {version} default (elas_u4)",
        "command": "asreview simulate CSV --prior-idx I E --seed S -o PROJECT.asreview",
        "seeds": per_seed,
        "median": {key: round(statistics.median(s[key] for s in per_seed), 4) for key in KEYS},
    }


# Settings searched by leave-one-dataset-out (issue 13, item 5): every combination is run on
# each dataset; the settings chosen on one dataset are reported on the other.
TUNE_GRID = {
    "balance_ratio": (1.0, 3.0, 9.8),
    "min_df": (1, 2),
}


# Second round, after the first showed the ratio pulling the datasets' early recall in opposite
# directions: the title counted once (as ASReview does), an intermediate ratio, and less
# regularisation.
TUNE_ROUND_2 = (
    {"balance_ratio": 9.8, "min_df": 2, "title_repeats": 1},
    {"balance_ratio": 9.8, "min_df": 1, "title_repeats": 1},
    {"balance_ratio": 5.0, "min_df": 2, "title_repeats": 2},
    {"balance_ratio": 9.8, "min_df": 2, "title_repeats": 2, "regularisation": 0.3},
    {"balance_ratio": 5.0, "min_df": 1, "title_repeats": 2},
    # Third round, after min_df 1 won on both datasets: with it, the title once and a ratio of 20.
    {"balance_ratio": 9.8, "min_df": 1, "title_repeats": 1},
    {"balance_ratio": 20.0, "min_df": 1, "title_repeats": 2},
)


# Sentence-embedding variants (issue 13, item 5; variants and selection rule written in
# docs/benchmarks.md before they were run). `extra["features"]`: "emb" = all-MiniLM-L6-v2
# embeddings alone, "tfidf+emb" = the TF-IDF row and the embedding row side by side, scaled by
# sqrt(1 - weight) and sqrt(weight) so the row keeps unit length. Embeddings come from
# `--part embed` (benchmarks/minilm.py), cached in benchmarks/out/embed_<dataset>.npy.
EMBED_VARIANTS = (
    ("emb-svm", {"regularisation": 1.0, "extra": {"features": "emb"}}),
    (
        "emb-logistic",
        {"classifier": "logistic", "regularisation": 1.0, "extra": {"features": "emb"}},
    ),
    ("tfidf+emb-w0.3", {"extra": {"features": "tfidf+emb", "weight": 0.3}}),
    ("tfidf+emb-w0.5", {"extra": {"features": "tfidf+emb", "weight": 0.5}}),
)


def embed_text(title: str, abstract: str) -> str:
    """The text embedded: title once, then the abstract (a sentence encoder reads prose; the
    TF-IDF trick of counting the title twice would only shift its mean pooling)."""
    return ranking.document_text(title, abstract, title_repeats=1)


def embeddings_path(name: str) -> Path:
    return OUT / f"embed_{name}.npy"


def run_embed(names: list[str]) -> None:
    """all-MiniLM-L6-v2 embeddings of every record, once per dataset (needs the packages of
    benchmarks/minilm.py, e.g. in benchmarks/.venv-embed)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from minilm import MiniLM

    encoder = MiniLM()
    for name in names:
        path = embeddings_path(name)
        if path.exists():
            continue
        data = ranking.labelled_dataset_read(read_rows(name), label_column="label_included")
        texts = [embed_text(t, a) for t, a in zip(data.titles, data.abstracts, strict=True)]
        wall, cpu = time.perf_counter(), time.process_time()
        vectors = encoder.encode(texts)
        np.save(path, vectors)
        print(
            f"{name}: {len(texts)} records embedded in {time.perf_counter() - wall:.1f} s wall, "
            f"{time.process_time() - cpu:.1f} s CPU",
            flush=True,
        )


def variant_features(name: str, model: ranking.RankingModel, texts: list[str]):
    """The feature matrix a variant trains on (see EMBED_VARIANTS)."""
    kind = model.extra.get("features", "tfidf")
    if kind == "tfidf":
        return ranking.features_build(texts, model=model)
    vectors = np.load(embeddings_path(name)).astype(np.float32)
    if kind == "emb":
        return vectors
    weight = float(model.extra["weight"])  # type: ignore[arg-type]
    tfidf = ranking.features_build(texts, model=model)
    return sparse.hstack(
        [tfidf * np.sqrt(1 - weight), sparse.csr_matrix(vectors * np.sqrt(weight))]
    ).tocsr()


def _variant_name(model: ranking.RankingModel) -> str:
    name = f"svm-r{model.balance_ratio:g}-df{model.min_df}"
    if model.title_repeats != 2:
        name += f"-t{model.title_repeats}"
    if model.regularisation != 0.1:
        name += f"-C{model.regularisation:g}"
    return name


def tune_variants() -> dict[str, ranking.RankingModel]:
    base = ranking.model_get(ranking.DEFAULT_MODEL)
    settings = [
        {"balance_ratio": ratio, "min_df": min_df}
        for ratio in TUNE_GRID["balance_ratio"]
        for min_df in TUNE_GRID["min_df"]
    ] + list(TUNE_ROUND_2)
    variants = {}
    for changes in settings:
        model = dataclasses.replace(base, **changes)
        model = dataclasses.replace(model, name=_variant_name(model))
        variants[model.name] = model
    for name, changes in EMBED_VARIANTS:
        variants[name] = dataclasses.replace(base, name=name, **changes)
    return variants


def run_tune(name: str, seeds: int, only: list[str] | None = None) -> None:
    """Every variant of TUNE_GRID on `name`, seeds 1..N, retraining after every record (as the
    reported runs), training stopped once 95 % of the relevant records are found (WSS@95 and
    recall@10 % need no more). One JSON per variant in benchmarks/out/tune_<dataset>_<variant>."""
    data = ranking.labelled_dataset_read(read_rows(name), label_column="label_included")
    flags = data.relevant
    goal = int(np.ceil(0.95 * sum(flags) - 1e-9))
    features: dict[tuple, object] = {}
    for variant, model in tune_variants().items():
        if only and variant not in only:
            continue
        path = OUT / f"tune_{name}_{variant}.json"
        if path.exists():
            continue
        key = (model.min_df, model.title_repeats, json.dumps(model.extra, sort_keys=True))
        if key not in features:
            features[key] = variant_features(name, model, data.texts_for(model))
        per_seed = []
        for seed in range(1, seeds + 1):
            run = ranking.simulate(
                data.texts,
                flags,
                seed=seed,
                model=model,
                features=features[key],
                stop_at_found=goal,
            )
            labels = [flags[i] for i in run.order]
            per_seed.append(
                {
                    "seed": seed,
                    "wss@95": round(metrics.wss(labels, 0.95), 4),
                    "recall@10%": round(metrics.recall_at(labels, 0.10), 4),
                    "seconds": round(run.seconds, 1),
                }
            )
            print(name, variant, per_seed[-1], flush=True)
        report = {
            "dataset": name,
            "variant": variant,
            "model": dataclasses.asdict(model),
            "seeds": per_seed,
            "median": {
                key: round(statistics.median(s[key] for s in per_seed), 4)
                for key in ("wss@95", "recall@10%")
            },
        }
        path.write_text(json.dumps(report, indent=1))


# ASReview 3.0.8 ELAS u4's per-seed figures (seeds 1-5, priors `prior_pick`), as documented in
# docs/benchmarks.md ("Ranking against ASReview (issue 13, item 5)"): identical in the runs of
# 2026-11-26 and 2026-11-29, so `tune-table` uses them when no `--part asreview` run is in
# benchmarks/out/. WSS@95 to the documented 3 decimals; recall@10 % as records found of 45 / 101.
ASREVIEW_DOCUMENTED = {
    "Kitchenham_2010": [
        {"seed": s, "wss@95": w, "recall@10%": round(r / 45, 4)}
        for s, w, r in zip(
            range(1, 6), (0.668, 0.668, 0.673, 0.674, 0.665), (33, 34, 33, 31, 31), strict=True
        )
    ],
    "Nagtegaal_2019": [
        {"seed": s, "wss@95": w, "recall@10%": round(r / 101, 4)}
        for s, w, r in zip(
            range(1, 6), (0.727, 0.726, 0.737, 0.737, 0.717), (63, 66, 66, 68, 68), strict=True
        )
    ],
}


def tune_table(names: list[str]) -> str:
    """Medians of every tuned variant per dataset beside ASReview's, and the leave-one-dataset-out
    choice: on each tuning dataset the variant whose smaller margin over ASReview (median WSS@95
    and median recall@10 %) is largest, ties broken by the sum of the two margins; that variant is
    then reported on every other dataset."""
    asreview = {}
    for name in names:
        seeds = [json.loads(p.read_text()) for p in sorted(OUT.glob(f"asreview_{name}_seed*.json"))]
        if not seeds and name in ASREVIEW_DOCUMENTED:
            seeds = ASREVIEW_DOCUMENTED[name]
        asreview[name] = {
            key: statistics.median(s[key] for s in seeds) for key in ("wss@95", "recall@10%")
        }
        asreview[name]["runs"] = len(seeds)
    results: dict[str, dict[str, dict]] = {name: {} for name in names}
    for name in names:
        for path in sorted(OUT.glob(f"tune_{name}_*.json")):
            report = json.loads(path.read_text())
            results[name][report["variant"]] = report
    lines = [
        "| Variant | " + " | ".join(f"{n} WSS@95 | {n} recall@10%" for n in names) + " |",
        "|---|" + "---|---|" * len(names),
        "| ASReview ELAS u4 | "
        + " | ".join(
            f"{asreview[n]['wss@95']:.3f} | {asreview[n]['recall@10%']:.3f}" for n in names
        )
        + " |",
    ]
    variants = sorted({v for per in results.values() for v in per})
    for variant in variants:
        cells = []
        for name in names:
            report = results[name].get(variant)
            if report is None:
                cells.append("- | -")
                continue
            median = report["median"]
            cells.append(f"{median['wss@95']:.3f} | {median['recall@10%']:.3f}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")

    def margins(name: str, variant: str) -> tuple[float, float]:
        median = results[name][variant]["median"]
        wss = median["wss@95"] - asreview[name]["wss@95"]
        recall = median["recall@10%"] - asreview[name]["recall@10%"]
        return min(wss, recall), wss + recall

    lines.append("")
    for tuned in names:
        chosen = max(results[tuned], key=lambda v: margins(tuned, v))
        for held in names:
            if held == tuned:
                continue
            report = results[held].get(chosen)
            outcome = "not run" if report is None else json.dumps(report["median"])
            lines.append(f"- tuned on {tuned}: {chosen}; held out {held}: {outcome}")
    return "\n".join(lines)


def run_retrain(n_records: int = 10_000, labelled: int = 1_000, repeats: int = 3) -> dict:
    """Time a retrain on `n_records` real titles + abstracts (rows of the two datasets drawn with
    replacement), `labelled` of them labelled. Cold = build the TF-IDF matrix, fit, score every
    record (the first training, or after an import changed the corpus); warm = fit and score with
    the stage's cached matrix (every later training: the worker keeps it while the corpus is
    unchanged); warm + 50 held out = also score 50 pending studies out of fold (blind mode).
    Wall and CPU seconds: the machine is shared, so wall time includes waiting for a core."""
    texts: list[str] = []
    relevant: list[bool] = []
    for name in DATASETS:
        data = ranking.labelled_dataset_read(read_rows(name), label_column="label_included")
        texts += data.texts
        relevant += data.relevant
    rng = np.random.default_rng(0)
    picks = rng.choice(len(texts), size=n_records, replace=True)
    corpus = [texts[i] for i in picks]
    flags = np.asarray([relevant[i] for i in picks])
    rows = np.sort(rng.choice(n_records, size=labelled, replace=False))
    if flags[rows].all() or not flags[rows].any():
        raise SystemExit("the labelled sample needs both classes")
    model = ranking.model_get(ranking.DEFAULT_MODEL)

    def timed(call, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call(*args, **kwargs)
        return result, time.perf_counter() - wall, time.process_time() - cpu

    cold, warm, held = [], [], []
    features_count = 0
    for _ in range(repeats):
        features, wall, cpu = timed(ranking.features_build, corpus, model=model)
        _, fit_wall, fit_cpu = timed(
            ranking.scores_predict, features, rows, flags[rows], model=model
        )
        cold.append((wall + fit_wall, cpu + fit_cpu))
        warm.append((fit_wall, fit_cpu))
        _, held_wall, held_cpu = timed(
            ranking.scores_rank,
            corpus,
            features=features,
            labelled=rows.tolist(),
            labels=flags[rows].tolist(),
            held_out=rows[:50].tolist(),
        )
        held.append((held_wall, held_cpu))
        features_count = features.shape[1]

    def med(pairs):
        return {
            "wall_s": round(statistics.median(p[0] for p in pairs), 3),
            "cpu_s": round(statistics.median(p[1] for p in pairs), 3),
        }

    return {
        "records": n_records,
        "labelled": labelled,
        "model": model.name,
        "features": features_count,
        "cold_retrain": med(cold),
        "warm_retrain": med(warm),
        "warm_retrain_50_held_out": med(held),
        "repeats": repeats,
    }


def run_screening_retrain(n_records: int = 10_000, labelled: int = 1_000, rounds: int = 6) -> dict:
    """Time the worker's retrain in a real review while screening goes on (issue 13, item 6).

    A review in DATABASE_URL gets `n_records` studies with real titles and abstracts (rows of the
    two datasets drawn with replacement) in a prioritised, one-reviewer title stage, `labelled` of
    them already decided and resolved. Then, `rounds` times: the service trains and writes the
    priorities of every waiting study (`ranking_run_execute`, as the Celery task does), and a
    reviewer claims and decides 10 studies through the screening services, each decision
    resolving and routing its study (which saves the study, as real screening does). The first
    training builds the TF-IDF matrix; the later ones must reuse it.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from screening.models import Decision, RankingRun, Resolution, Review, Stage, Study
    from screening.services import ranking as ranking_service
    from screening.services.reviews import review_create, user_get_or_create
    from screening.services.screening import decision_record, study_claim_next

    call_command("migrate", verbosity=0)
    texts: list[tuple[str, str]] = []
    relevant: list[bool] = []
    for name in DATASETS:
        data = ranking.labelled_dataset_read(read_rows(name), label_column="label_included")
        texts += list(zip(data.titles, data.abstracts, strict=True))
        relevant += data.relevant
    rng = np.random.default_rng(0)
    picks = rng.choice(len(texts), size=n_records, replace=True)
    slug = "bench-ranking-retrain"
    Review.objects.filter(slug=slug).delete()
    owner, _ = user_get_or_create(username="bench-owner")
    review = review_create(slug=slug, title="Retrain benchmark", owner=owner)
    stage = Stage.objects.get(review=review, is_entry=True)
    stage.queue_order = Stage.QueueOrder.PRIORITISED
    stage.reviewers_required = 1
    stage.save(update_fields=["queue_order", "reviewers_required"])
    studies = Study.objects.bulk_create(
        Study(review=review, title=texts[i][0], abstract=texts[i][1], current_stage=stage)
        for i in picks
    )
    truth = {study.pk: relevant[i] for study, i in zip(studies, picks, strict=True)}
    decided = studies[:labelled]
    Decision.objects.bulk_create(
        Decision(
            review=review,
            study=study,
            stage=stage,
            reviewer=owner,
            verdict="include" if truth[study.pk] else "exclude",
        )
        for study in decided
    )
    Resolution.objects.bulk_create(
        Resolution(
            review=review,
            study=study,
            stage=stage,
            verdict="include" if truth[study.pk] else "exclude",
            method="agreement",
        )
        for study in decided
    )
    runs = []
    for _ in range(rounds):
        RankingRun.objects.filter(review=review, status__in=RankingRun.ACTIVE).delete()
        run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
        wall, cpu = time.perf_counter(), time.process_time()
        run = ranking_service.ranking_run_execute(run_id=run.pk)
        runs.append(
            {
                "status": run.status,
                "scored": run.scored,
                "train_s": run.train_seconds,
                "write_s": run.write_seconds,
                "wall_s": round(time.perf_counter() - wall, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }
        )
        print("retrain during screening", runs[-1], flush=True)
        for _ in range(10):
            study = study_claim_next(review=review, stage=stage, reviewer=owner)
            decision_record(
                review=review,
                study=study,
                stage=stage,
                reviewer=owner,
                verdict="include" if truth[study.pk] else "exclude",
            )
    Review.objects.filter(pk=review.pk).delete()
    warm = runs[1:]
    return {
        "records": n_records,
        "labelled_at_start": labelled,
        "decisions_between_retrains": 10,
        "first": runs[0],
        "later": warm,
        "later_wall_s_max": max(r["wall_s"] for r in warm),
        "later_wall_s_median": statistics.median(r["wall_s"] for r in warm),
    }


def run_stopping(names: list[str], seeds: int, batch_size: int) -> None:
    """`simulate --stopping buscar` and `--stopping heuristic` per dataset (issue 13, item 4)."""
    for name in names:
        for rule in ("buscar", "heuristic"):
            options = ["--stopping", rule, "--target", "0.95", "--confidence", "0.95"]
            report = run_ours(name, seeds, ranking.DEFAULT_MODEL, batch_size, options)
            (OUT / f"stop_{rule}_{name}.json").write_text(json.dumps(report, indent=1))
            print(name, rule, "done", flush=True)


def stopping_table(names: list[str]) -> str:
    lines = [
        "| Dataset (N, relevant) | Rule | Runs with recall >= 0.95 at stop | Recall at stop: "
        "median (min-max) | Screened at stop: median (min-max) | Work saved: median |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        for rule in ("buscar", "heuristic"):
            path = OUT / f"stop_{rule}_{name}.json"
            if not path.exists():
                continue
            report = json.loads(path.read_text())
            stops = [seed["stop"] for seed in report["seeds"]]
            recalls = [stop["recall"] for stop in stops]
            fractions = [stop["screened_fraction"] for stop in stops]
            reached = sum(recall >= 0.95 for recall in recalls)
            label = "BUSCAR 0.95 / 0.95" if rule == "buscar" else "100 irrelevant in a row"
            lines.append(
                f"| {name} ({report['records']:,}, {report['relevant']}) | {label} | "
                f"{reached} of {len(stops)} | {statistics.median(recalls):.3f} "
                f"({min(recalls):.3f}-{max(recalls):.3f}) | "
                f"{statistics.median(fractions):.1%} ({min(fractions):.1%}-{max(fractions):.1%}) "
                f"| {1 - statistics.median(fractions):.1%} |"
            )
    return "\n".join(lines)


def table() -> str:
    lines = [
        "| Dataset | Tool | WSS@95 | WSS@100 | Recall@10% | Recall@25% | RRF@10 | s/seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        for prefix in ("ours", "asreview"):
            path = OUT / f"{prefix}_{name}.json"
            if not path.exists():
                continue
            report = json.loads(path.read_text())
            median = report["median"]
            wss95 = " ".join(f"{s['wss@95']:.3f}" for s in report["seeds"])
            lines.append(
                f"| {name} | {report['model']} | **{median['wss@95']:.3f}** ({wss95}) | "
                f"{median['wss@100']:.3f} | {median['recall@10%']:.3f} | "
                f"{median['recall@25%']:.3f} | {median['rrf@10']:.3f} | {median['seconds']:.1f} |"
            )
    retrain = OUT / "retrain.json"
    if retrain.exists():
        lines.append("")
        lines.append("Retrain: " + retrain.read_text())
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part",
        choices=[
            "all",
            "ours",
            "asreview",
            "retrain",
            "screening-retrain",
            "stopping",
            "stopping-table",
            "table",
            "tune",
            "tune-table",
            "embed",
        ],
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default=ranking.DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--variants", default="", help="--part tune: only these variants")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    part = args.part or "all"
    names = args.datasets.split(",")
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    if part in ("all", "ours"):
        for name in names:
            report = run_ours(name, args.seeds, args.model, args.batch_size)
            (OUT / f"ours_{name}.json").write_text(json.dumps(report, indent=1))
            print(name, "ours median", report["median"], flush=True)
    if part in ("all", "asreview"):
        for name in names:
            report = run_asreview(name, args.seeds)
            (OUT / f"asreview_{name}.json").write_text(json.dumps(report, indent=1))
            print(name, "asreview median", report["median"], flush=True)
    if part in ("all", "retrain"):
        report = run_retrain()
        (OUT / "retrain.json").write_text(json.dumps(report))
        print("retrain", report, flush=True)
    if part == "embed":
        run_embed(names)
        return
    if part == "tune-table":
        print(tune_table(names))
        return
    if part == "tune":
        for name in names:
            run_tune(name, args.seeds, args.variants.split(",") if args.variants else None)
        return
    if part == "stopping":
        run_stopping(names, args.seeds, args.batch_size)
    if part in ("stopping", "stopping-table"):
        print(stopping_table(names))
        return
    if part == "screening-retrain":
        report = run_screening_retrain()
        (OUT / "screening_retrain.json").write_text(json.dumps(report, indent=1))
        print("screening retrain", report, flush=True)
        return
    print(table())


if __name__ == "__main__":
    main()
