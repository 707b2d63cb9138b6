"""The prioritisation model (pure): determinism, an obvious ranking, held-out scoring, CSV rows."""

import random

import numpy as np
import pytest

from screening.domain import ranking

from .ranking_helpers import study_text


def corpus(n_relevant=8, n_other=40, seed=3):
    rng = random.Random(seed)
    flags = [True] * n_relevant + [False] * n_other
    rng.shuffle(flags)
    texts = [ranking.document_text(*study_text(rng, flag)) for flag in flags]
    return texts, flags


def test_obviously_relevant_record_ranks_first_on_a_tiny_corpus():
    texts = [
        "Deploying machine learning models in production: an MLOps pipeline",
        "Bird migration along the river estuary",
        "Soil erosion after forest fires",
        "Continuous delivery of machine learning models with monitoring in production",
        "Coral reef bleaching and tides",
        "Pollen counts in alpine meadows",
    ]
    scores = ranking.rank_texts(texts, {0: True, 1: False}, seed=1)
    unlabelled = np.array([2, 3, 4, 5])
    assert ranking.order_by_score(scores, unlabelled)[0] == 3


@pytest.mark.parametrize("model_name", sorted(ranking.MODELS))
def test_every_model_is_deterministic_given_a_seed(model_name):
    texts, flags = corpus()
    labels = {i: flags[i] for i in range(20)}
    if len(set(labels.values())) < 2:
        pytest.fail("corpus sample needs both classes")
    first = ranking.rank_texts(texts, labels, model_name=model_name, seed=5)
    second = ranking.rank_texts(texts, labels, model_name=model_name, seed=5)
    np.testing.assert_array_equal(first, second)
    # and it learns: on-topic unlabelled records outrank the others on average
    rest = np.arange(20, len(texts))
    on_topic = [i for i in rest if flags[i]]
    off_topic = [i for i in rest if not flags[i]]
    assert first[on_topic].mean() > first[off_topic].mean()


def test_ties_are_broken_by_index():
    scores = np.array([0.5, 0.9, 0.5, 0.9])
    assert ranking.order_by_score(scores, np.arange(4)).tolist() == [1, 3, 0, 2]


def test_training_needs_both_classes():
    texts, _ = corpus()
    with pytest.raises(ValueError, match="one relevant and one irrelevant"):
        ranking.rank_texts(texts, {0: True, 1: True})


def test_held_out_rows_are_scored_without_their_own_label():
    texts, flags = corpus()
    labelled = list(range(24))
    labels = [flags[i] for i in labelled]
    held = [i for i in labelled if flags[i]][:1]
    with_label = ranking.scores_rank(texts, labelled=labelled, labels=labels, held_out=held)
    without = [i for i in labelled if i not in held]
    reference = ranking.scores_rank(texts, labelled=without, labels=[flags[i] for i in without])
    # The held-out row's score is what a model that never saw its label gives it...
    assert with_label[held[0]] == pytest.approx(reference[held[0]])
    # ...while the other rows keep the full model's scores.
    full = ranking.scores_rank(texts, labelled=labelled, labels=labels)
    others = [i for i in range(len(texts)) if i not in held]
    np.testing.assert_allclose(with_label[others], full[others])


def test_simulation_is_deterministic_and_finds_every_relevant_record():
    texts, flags = corpus(n_relevant=6, n_other=60)
    first = ranking.simulate(texts, flags, seed=2)
    second = ranking.simulate(texts, flags, seed=2)
    assert first.order == second.order
    assert sorted(first.order) == list(range(len(texts)))
    assert flags[first.order[0]] and not flags[first.order[1]]
    assert first.priors == ranking.prior_pick(flags, 2)
    # an easy corpus: every relevant record within the first 15
    assert sum(flags[i] for i in first.order[:15]) == 6
    batched = ranking.simulate(texts, flags, seed=2, batch_size=5)
    assert batched.trainings < first.trainings


def test_labelled_dataset_read_copes_with_asreview_column_names():
    rows = [
        {"record_id": "1", "Primary_Title": "A", "Abstract_Note": "x", "label_included": "1"},
        {"record_id": "2", "Primary_Title": "B", "Abstract_Note": "", "label_included": "0"},
        {"record_id": "3", "Primary_Title": "C", "Abstract_Note": "z", "label_included": ""},
    ]
    data = ranking.labelled_dataset_read(rows, label_column="label_included")
    assert data.titles == ["A", "B"]
    assert data.abstracts == ["x", ""]
    assert data.relevant == [True, False]
    assert data.skipped == 1
    with pytest.raises(ValueError, match="label"):
        ranking.labelled_dataset_read(rows, label_column="label_abstract_screening")
    with pytest.raises(ValueError, match="title"):
        ranking.labelled_dataset_read([{"label_included": "1"}], label_column="label_included")


@pytest.mark.parametrize("ratio", [1.0, 3.0, 9.8])
def test_class_weights_give_relevant_labels_ratio_times_the_irrelevant_total(ratio):
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    weights = ranking.class_weights(y, ratio)
    relevant_total = weights[1] * 2
    irrelevant_total = weights[0] * 8
    assert relevant_total / irrelevant_total == pytest.approx(ratio)
    assert relevant_total + irrelevant_total == pytest.approx(len(y))
    if ratio == 1.0:  # scikit-learn's "balanced": n / (2 * class count)
        assert weights == pytest.approx({1: 10 / 4, 0: 10 / 16})


def test_document_text_counts_the_title_as_often_as_asked():
    assert ranking.document_text("T", "body") == "T. T. body"
    assert ranking.document_text("T", "body", title_repeats=1) == "T. body"
    assert ranking.document_text("", "body", title_repeats=3) == "body"


def test_simulation_can_stop_training_once_enough_relevant_records_are_found():
    texts, flags = corpus(n_relevant=6, n_other=60)
    full = ranking.simulate(texts, flags, seed=2)
    early = ranking.simulate(texts, flags, seed=2, stop_at_found=4)
    assert early.trainings < full.trainings
    # Up to the fourth relevant record both runs screened the same records in the same order.
    fourth = [i for i, index in enumerate(full.order) if flags[index]][3]
    assert early.order[: fourth + 1] == full.order[: fourth + 1]
    assert sorted(early.order) == list(range(len(texts)))
