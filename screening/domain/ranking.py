"""Prioritisation model: TF-IDF features of title + abstract and a linear classifier.

Pure Python with numpy, scipy and scikit-learn; no Django. The same functions serve the ranking
task (score a review's unscreened studies from its decisions) and the simulate command (replay a
labelled dataset), so what is benchmarked is what runs.

Choices (docs/benchmarks.md, "Ranking against ASReview", says how each was measured):
- Features: TF-IDF on the title and abstract, word unigrams and bigrams (topic phrases such as
  "software engineering" or "cost estimation" carry more than their words), sublinear term
  frequency (a word repeated ten times in an abstract is not ten times the evidence), every term
  of the corpus (min_df 1: a rare term seen in one labelled include is exactly the evidence the
  next include may share) up to those in 95 % of records (near-stopwords). The vocabulary is
  fitted on every record of the corpus, labelled or not: no labels are used. The title counts
  twice (the author's own summary, and what a title-stage reviewer decides from).
- Classifier: a linear support vector machine (squared hinge, L2), the classic strong learner for
  sparse text and the default of ASReview. Its decision value orders the queue. Regularisation is
  strong (C = 0.1): early in a review there are a handful of labels against tens of thousands of
  features, and a heavily regularised hyperplane stays close to "similar to the includes, unlike
  the excludes" instead of fitting the few examples' quirks.
- Class imbalance: relevant records are typically 1-5 %. The relevant labels together weigh 20
  times the irrelevant ones (`balance_ratio`; ASReview's ELAS u4 uses 9.8, equal weights were our
  old default). Include-heavy weighting finds the first includes sooner (recall after 10 %
  screened) than equal class weights did, without losing work saved at 95 %. Chosen by a
  leave-one-dataset-out search whose limits docs/benchmarks.md states. No resampling: training
  stays deterministic and cheap.
- Query strategy: certainty-based ("max"): the reviewer sees the highest-scoring record next.
- Determinism: solvers get the seed; ties between equal scores are broken by record index.
- Large corpora (more than `LARGE_CORPUS` records, far above every benchmark dataset, whose
  results are unchanged): one TF-IDF matrix of the whole corpus does not fit in 2 GB at a million
  records, so terms are hashed (`HashedTfidf`: no vocabulary is stored, any chunk of records can
  be transformed on its own), the idf is estimated on a random sample of `FIT_SAMPLE` records
  of the corpus (labelled or not: no labels are used, as above), the classifier trains on at
  most `TRAIN_CAP` labels (`training_rows_bound`) and the waiting records are scored chunk by
  chunk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC


@dataclass(frozen=True)
class RankingModel:
    name: str
    description: str
    classifier: str  # "svm" | "logistic" | "nb"
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = None
    min_df: int = 2
    max_df: float = 0.95
    regularisation: float = 1.0
    # Total weight of the relevant labels over that of the irrelevant ones in training (each
    # class's records weigh equally within it): 1 = balanced classes, ASReview's ELAS u4 uses 9.8.
    balance_ratio: float = 1.0
    title_repeats: int = 2  # times the title is counted in the text (see document_text)
    extra: dict[str, object] = field(default_factory=dict)


MODELS: dict[str, RankingModel] = {
    model.name: model
    for model in (
        RankingModel(
            name="svm",
            description="TF-IDF word 1-2-grams (sublinear tf, min_df 1) + linear SVM (C=0.1), "
            "relevant labels weighted 20:1",
            classifier="svm",
            regularisation=0.1,
            min_df=1,
            balance_ratio=20.0,
        ),
        RankingModel(
            name="svm-balanced",
            description="TF-IDF word 1-2-grams (sublinear tf, min_df 2) + linear SVM (C=0.1), "
            "balanced class weights (the default until 2026-11-29)",
            classifier="svm",
            regularisation=0.1,
        ),
        RankingModel(
            name="logistic",
            description="TF-IDF word 1-2-grams (sublinear tf) + logistic regression, "
            "balanced class weights",
            classifier="logistic",
        ),
        RankingModel(
            name="nb",
            description="TF-IDF word 1-2-grams (sublinear tf) + complement naive Bayes",
            classifier="nb",
        ),
        RankingModel(
            name="svm-unigram",
            description="TF-IDF word unigrams (sublinear tf) + linear SVM, balanced class weights",
            classifier="svm",
            word_ngrams=(1, 1),
            regularisation=0.1,
        ),
        RankingModel(
            name="svm-char",
            description="TF-IDF word 1-2-grams and character 3-5-grams (sublinear tf) "
            "+ linear SVM, balanced class weights",
            classifier="svm",
            char_ngrams=(3, 5),
            regularisation=0.1,
        ),
    )
}
DEFAULT_MODEL = "svm"


def model_get(name: str) -> RankingModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def document_text(title: str | None, abstract: str | None, *, title_repeats: int = 2) -> str:
    """The text a record is judged on: title and abstract (by default the title counts twice: it
    is the author's own summary and what a title-stage reviewer decides from)."""
    title = (title or "").strip()
    abstract = (abstract or "").strip()
    if not title:
        return abstract
    return " ".join([f"{title}."] * title_repeats + [abstract])


def features_build(texts: Sequence[str], *, model: RankingModel) -> sparse.csr_matrix:
    """TF-IDF matrix of the corpus (one row per text), L2-normalised rows."""
    n = len(texts)
    # On tiny corpora (tests, a review's first records) min_df=2 could leave no term at all.
    min_df = model.min_df if n >= 20 else 1
    max_df = model.max_df if n >= 20 else 1.0
    word = TfidfVectorizer(
        ngram_range=model.word_ngrams,
        sublinear_tf=True,
        min_df=min_df,
        max_df=max_df,
        strip_accents="unicode",
        lowercase=True,
        token_pattern=r"(?u)\b[^\W\d_][\w-]*\b",
        dtype=np.float32,
    )
    matrix = word.fit_transform(texts)
    if model.char_ngrams is not None:
        char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=model.char_ngrams,
            sublinear_tf=True,
            min_df=min_df,
            max_df=max_df,
            lowercase=True,
            dtype=np.float32,
        )
        # Halve each block so the stacked row keeps unit length.
        matrix = sparse.hstack([matrix, char.fit_transform(texts)]).tocsr() * np.sqrt(0.5)
    return sparse.csr_matrix(matrix)


# Above this many records a stage is ranked by the large-corpus path (module docstring).
LARGE_CORPUS = 50_000
FIT_SAMPLE = 50_000  # records of the corpus the idf is estimated on
TRAIN_CAP = 50_000  # labels the classifier trains on at most
HASH_FEATURES = 2**20  # hashed term columns: collisions are rare below a few million terms


@dataclass(frozen=True)
class HashedTfidf:
    """TF-IDF with hashed terms and an idf estimated on a sample, for corpora too large for one
    matrix: the same tokens, n-grams, sublinear tf, smoothed idf, `max_df` cut and L2 norm as
    `features_build`, but `transform` works on any chunk of records with no vocabulary held.
    `min_df` is not applied: a term absent from the sample is rare, and keeps the highest idf."""

    hashers: tuple[HashingVectorizer, ...]
    idfs: tuple[np.ndarray, ...]

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        blocks = [
            _hashed_weighted(hasher.transform(texts), idf)
            for hasher, idf in zip(self.hashers, self.idfs, strict=True)
        ]
        if len(blocks) == 1:
            return blocks[0]
        # Scale each block so the stacked row keeps unit length (as features_build does).
        return sparse.csr_matrix(sparse.hstack(blocks).tocsr() * np.sqrt(1 / len(blocks)))


def _hashed_weighted(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    counts = sparse.csr_matrix(counts, dtype=np.float32)
    counts.data = (1 + np.log(counts.data)) * idf[counts.indices]  # sublinear tf times idf
    counts.eliminate_zeros()  # terms cut by max_df
    return sparse.csr_matrix(normalize(counts, copy=False))


def _hashers(model: RankingModel) -> tuple[HashingVectorizer, ...]:
    word = HashingVectorizer(
        n_features=HASH_FEATURES,
        ngram_range=model.word_ngrams,
        strip_accents="unicode",
        lowercase=True,
        token_pattern=r"(?u)\b[^\W\d_][\w-]*\b",
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    if model.char_ngrams is None:
        return (word,)
    char = HashingVectorizer(
        n_features=HASH_FEATURES,
        analyzer="char_wb",
        ngram_range=model.char_ngrams,
        lowercase=True,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    return (word, char)


def hashed_tfidf_fit(texts: Sequence[str], *, model: RankingModel) -> HashedTfidf:
    """Estimate the idf on `texts` (a random sample of the corpus)."""
    n = len(texts)
    max_df = model.max_df if n >= 20 else 1.0
    hashers = _hashers(model)
    idfs = []
    for hasher in hashers:
        counts = sparse.csr_matrix(hasher.transform(texts))
        df = np.bincount(counts.indices, minlength=HASH_FEATURES)
        idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)  # scikit-learn's smooth idf
        idf[df > max_df * n] = 0
        idfs.append(idf)
    return HashedTfidf(hashers=hashers, idfs=tuple(idfs))


def training_rows_bound(labels: np.ndarray, *, cap: int, seed: int) -> np.ndarray:
    """Indices of at most `cap` of these labels to train on, ascending: every label when there
    are no more; otherwise every relevant one (up to half the cap) and a random draw of the
    irrelevant ones for the rest. The class weights keep the relevant labels' share of the
    weight (`class_weights`), so thinning the irrelevant class does not tilt the model."""
    flags = np.asarray(labels, dtype=bool)
    if len(flags) <= cap:
        return np.arange(len(flags))
    rng = np.random.default_rng(seed)
    relevant = np.flatnonzero(flags)
    if len(relevant) > cap // 2:
        relevant = rng.choice(relevant, cap // 2, replace=False)
    irrelevant = np.flatnonzero(~flags)
    irrelevant = rng.choice(irrelevant, min(cap - len(relevant), len(irrelevant)), replace=False)
    return np.sort(np.concatenate([relevant, irrelevant]))


def class_weights(y: np.ndarray, ratio: float) -> dict[int, float]:
    """Per-class weights giving the relevant labels `ratio` times the irrelevant ones' total
    weight, scaled so all weights sum to the number of labels (ratio 1 = scikit-learn's
    "balanced"; the same scheme as ASReview's balanced sample weights)."""
    n, relevant = len(y), int(y.sum())
    return {
        1: n * ratio / ((1 + ratio) * relevant),
        0: n / ((1 + ratio) * (n - relevant)),
    }


Classifier: TypeAlias = LinearSVC | LogisticRegression | ComplementNB


def _classifier(model: RankingModel, seed: int, y: np.ndarray) -> Classifier:
    weights = class_weights(y, model.balance_ratio)
    if model.classifier == "svm":
        return LinearSVC(C=model.regularisation, class_weight=weights, random_state=seed, dual=True)
    if model.classifier == "logistic":
        return LogisticRegression(
            C=model.regularisation, class_weight=weights, random_state=seed, max_iter=1000
        )
    if model.classifier == "nb":
        return ComplementNB(alpha=0.1)
    raise ValueError(f"unknown classifier {model.classifier!r}")


def classifier_fit(
    features: sparse.csr_matrix,
    labels: Sequence[bool] | np.ndarray,
    *,
    model: RankingModel,
    seed: int = 0,
) -> Classifier:
    """The model's classifier trained on these rows, one label each.

    Needs at least one relevant and one irrelevant label (the caller keeps a random order before
    that).
    """
    y = np.asarray(labels, dtype=np.int8)
    if features.shape[0] != len(y):
        raise ValueError("labelled and labels differ in length")
    if y.min(initial=1) == y.max(initial=0) or len(y) == 0:
        raise ValueError("training needs at least one relevant and one irrelevant record")
    clf = _classifier(model, seed, y)
    clf.fit(features, y)
    return clf


def classifier_scores(
    clf: Classifier, features: sparse.csr_matrix, *, model: RankingModel
) -> np.ndarray:
    """Relevance score of every row (higher = more likely relevant)."""
    if model.classifier == "nb":
        log_proba = clf.predict_log_proba(features)
        return np.asarray(log_proba[:, 1] - log_proba[:, 0], dtype=np.float64)
    return np.asarray(clf.decision_function(features), dtype=np.float64)


def scores_predict(
    features: sparse.csr_matrix,
    labelled: Sequence[int] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    *,
    model: RankingModel,
    seed: int = 0,
) -> np.ndarray:
    """Relevance score of every row (higher = more likely relevant), trained on the labelled rows.

    Needs at least one relevant and one irrelevant label (the caller keeps a random order before
    that).
    """
    if len(labelled) != len(labels):
        raise ValueError("labelled and labels differ in length")
    clf = classifier_fit(features[np.asarray(labelled)], labels, model=model, seed=seed)
    return classifier_scores(clf, features, model=model)


def order_by_score(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """`candidates` sorted by descending score, ties by ascending index (deterministic)."""
    candidates = np.asarray(candidates)
    return candidates[np.lexsort((candidates, -scores[candidates]))]


def rank_texts(
    texts: Sequence[str],
    labels: Mapping[int, bool],
    *,
    model_name: str = DEFAULT_MODEL,
    seed: int = 0,
) -> np.ndarray:
    """Scores for all `texts` given `labels` (index -> relevant) of some of them."""
    model = model_get(model_name)
    features = features_build(texts, model=model)
    labelled = sorted(labels)
    return scores_predict(features, labelled, [labels[i] for i in labelled], model=model, seed=seed)


@dataclass(frozen=True)
class SimulationRun:
    seed: int
    order: list[int]  # record indices in the order they were screened
    priors: tuple[int, int]  # the (relevant, irrelevant) records given first
    trainings: int
    seconds: float


def prior_pick(relevant: Sequence[bool] | np.ndarray, seed: int) -> tuple[int, int]:
    """One random relevant and one random irrelevant record, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    flags = np.asarray(relevant, dtype=bool)
    included = np.flatnonzero(flags)
    excluded = np.flatnonzero(~flags)
    if len(included) == 0 or len(excluded) == 0:
        raise ValueError("the dataset needs at least one relevant and one irrelevant record")
    return int(rng.choice(included)), int(rng.choice(excluded))


def simulate(
    texts: Sequence[str],
    relevant: Sequence[bool],
    *,
    seed: int,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 1,
    features: sparse.csr_matrix | None = None,
    model: RankingModel | None = None,
    stop_at_found: int | None = None,
) -> SimulationRun:
    """Replay a labelled dataset as a reviewer would screen it with prioritisation.

    Starts from one random relevant and one random irrelevant record (`prior_pick(seed)`); then
    repeatedly trains on every label so far and screens the `batch_size` highest-scoring
    unscreened records. Once every relevant record has been found the remaining order cannot
    change any metric, so the rest is appended without further training. `model` overrides
    `model_name` (benchmarks try variants that are not in MODELS); `stop_at_found` stops training
    once that many relevant records are found (a tuning run that needs only early metrics such as
    WSS@95 and recall@10 %).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    model = model or model_get(model_name)
    flags = np.asarray(relevant, dtype=bool)
    n = len(flags)
    if features is None:
        features = features_build(texts, model=model)
    first_relevant, first_irrelevant = prior_pick(flags, seed)
    order = [first_relevant, first_irrelevant]
    screened = np.zeros(n, dtype=bool)
    screened[order] = True
    found = 1
    goal = int(flags.sum()) if stop_at_found is None else min(int(flags.sum()), stop_at_found)
    trainings = 0
    scores = np.zeros(n)
    while not screened.all() and found < goal:
        labelled = np.asarray(order)
        scores = scores_predict(features, labelled, flags[labelled], model=model, seed=seed)
        trainings += 1
        nxt = order_by_score(scores, np.flatnonzero(~screened))[:batch_size]
        for index in nxt:
            order.append(int(index))
            screened[index] = True
            found += int(flags[index])
    rest = order_by_score(scores, np.flatnonzero(~screened))
    order.extend(int(i) for i in rest)
    return SimulationRun(
        seed=seed,
        order=order,
        priors=(first_relevant, first_irrelevant),
        trainings=trainings,
        seconds=time.perf_counter() - started,
    )


# Column names seen in ASReview datasets and reference-manager CSV exports (lower-cased).
TITLE_COLUMNS = ("title", "primary_title", "ti", "article title", "document title")
ABSTRACT_COLUMNS = ("abstract", "abstract_note", "ab", "abstract note", "notes_abstract")


@dataclass(frozen=True)
class LabelledDataset:
    titles: list[str]
    abstracts: list[str]
    relevant: list[bool]
    skipped: int  # rows without a usable label

    @property
    def texts(self) -> list[str]:
        return self.texts_for(model_get(DEFAULT_MODEL))

    def texts_for(self, model: RankingModel) -> list[str]:
        return [
            document_text(t, a, title_repeats=model.title_repeats)
            for t, a in zip(self.titles, self.abstracts, strict=True)
        ]


def labelled_dataset_read(
    rows: Sequence[Mapping[str, str]], *, label_column: str
) -> LabelledDataset:
    """Titles, abstracts and labels from CSV rows (as `csv.DictReader` yields them).

    Column names are matched case-insensitively among the usual spellings; a label is relevant
    when it reads 1 / true / yes, irrelevant for 0 / false / no; rows with an empty or other
    label are skipped (ASReview datasets leave unlabelled rows empty).
    """
    if not rows:
        raise ValueError("the dataset has no rows")
    columns = {name.strip().lower(): name for name in rows[0] if name is not None}

    def find(candidates: Sequence[str]) -> str | None:
        return next((columns[c] for c in candidates if c in columns), None)

    def require(candidates: Sequence[str], what: str) -> str:
        found = find(candidates)
        if found is None:
            raise ValueError(f"no {what} column (looked for {', '.join(candidates)})")
        return found

    label = require((label_column.strip().lower(),), f"label ({label_column})")
    title_col = require(TITLE_COLUMNS, "title")
    abstract_col = find(ABSTRACT_COLUMNS)
    titles: list[str] = []
    abstracts: list[str] = []
    relevant: list[bool] = []
    skipped = 0
    for row in rows:
        value = (row.get(label) or "").strip().lower()
        if value in ("1", "1.0", "true", "yes"):
            flag = True
        elif value in ("0", "0.0", "false", "no"):
            flag = False
        else:
            skipped += 1
            continue
        titles.append(row.get(title_col) or "")
        abstracts.append((row.get(abstract_col) or "") if abstract_col else "")
        relevant.append(flag)
    return LabelledDataset(titles=titles, abstracts=abstracts, relevant=relevant, skipped=skipped)


def scores_rank(
    texts: Sequence[str],
    *,
    labelled: Sequence[int],
    labels: Sequence[bool],
    held_out: Sequence[int] = (),
    model_name: str = DEFAULT_MODEL,
    seed: int = 0,
    folds: int = 5,
    features: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """Scores of all rows, trained on every label; `held_out` rows are scored out of fold.

    A held-out row (labelled, but still to be shown to somebody) gets its score from a model
    trained without its own label, so its position reveals nothing of that label. Held-out rows
    are split into up to `folds` groups, one extra training each. When leaving a group out removes
    every example of a class, its rows get the median score (no information either way).
    `features` (from `features_build(texts)`) saves rebuilding the TF-IDF matrix when the corpus
    has not changed since the last training.
    """
    model = model_get(model_name)
    if features is None:
        features = features_build(texts, model=model)
    elif features.shape[0] != len(texts):
        raise ValueError("features and texts differ in length")
    labelled_arr = np.asarray(labelled, dtype=np.int64)
    label_arr = np.asarray(labels, dtype=bool)
    scores = scores_predict(features, labelled_arr, label_arr, model=model, seed=seed)
    held = np.asarray(sorted(set(held_out)), dtype=np.int64)
    if len(held) == 0:
        return scores
    if not np.isin(held, labelled_arr).all():
        raise ValueError("held-out rows must be labelled rows")
    scores[held] = held_out_scores(
        features,
        labelled_arr,
        label_arr,
        held,
        model=model,
        seed=seed,
        folds=folds,
        fallback=float(np.median(scores)),
    )
    return scores


def held_out_scores(
    features: sparse.csr_matrix,
    labelled: np.ndarray,
    labels: np.ndarray,
    held: np.ndarray,
    *,
    model: RankingModel,
    seed: int = 0,
    folds: int = 5,
    fallback: float,
) -> np.ndarray:
    """Scores of the `held` rows (some of the `labelled` rows of `features`, ascending), each
    from a model trained without its own label: the held rows are split into up to `folds`
    groups, one training each. When leaving a group out removes every example of a class, its
    rows get `fallback` (the median score: no information either way)."""
    scores = np.empty(len(held), dtype=np.float64)
    start = 0
    for group in np.array_split(held, min(folds, len(held))):
        part = slice(start, start + len(group))
        start += len(group)
        keep = ~np.isin(labelled, group)
        kept_labels = labels[keep]
        if kept_labels.all() or not kept_labels.any():
            scores[part] = fallback
            continue
        clf = classifier_fit(features[labelled[keep]], kept_labels, model=model, seed=seed)
        scores[part] = classifier_scores(clf, features[group], model=model)
    return scores
