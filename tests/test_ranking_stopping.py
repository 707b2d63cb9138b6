"""BUSCAR stopping rule (Callaghan and Mueller-Hansen 2020) and the consecutive-irrelevant
heuristic: hand-worked examples, the reference implementation's formula, edge cases."""

import math

import numpy as np
import pytest
from scipy.stats import hypergeom

from screening.domain import stopping


def reference_calculate_h0(labels, n_docs, recall_target):
    """The buscar package's `calculate_h0` (unbiased urns), written out as its source does it:
    urns of the last 1..n screened records, k_hat = floor(r / target + 1 - (r - urn hits)),
    p = min over urns of hypergeom.cdf(urn hits, urn + unseen, k_hat, urn size)."""
    labels = np.asarray(labels, dtype=int)
    r_seen = labels.sum()
    urns = labels[::-1]
    urn_sizes = np.arange(urns.shape[0]) + 1
    k_hat = np.floor(r_seen / recall_target + 1 - (r_seen - urns.cumsum()))
    p = hypergeom.cdf(urns.cumsum(), n_docs - (urns.shape[0] - urn_sizes), k_hat, urn_sizes)
    return float(p.min())


def test_hand_worked_example_last_200_screened_without_a_relevant_record():
    # 1,000 records; 600 screened: 50 relevant first, then 550 irrelevant. Recall < 0.95 would
    # mean >= floor(50 / 0.95) + 1 = 53 relevant, so >= 3 in the urn "last 550 screened + 400
    # unscreened" (950 records). P(none of them among the 550 drawn)
    # = (400 * 399 * 398) / (950 * 949 * 948) = 0.0745...; the smaller all-irrelevant urns give
    # larger values, and the urns reaching into the relevant run larger still.
    labels = [True] * 50 + [False] * 550
    p = stopping.buscar_p_value(labels, records=1000, target=0.95)
    assert p == pytest.approx(400 * 399 * 398 / (950 * 949 * 948), rel=1e-9)
    result = stopping.buscar(labels, records=1000, target=0.95, confidence=0.95)
    assert not result.met and result.remaining == 400


def test_hand_worked_example_that_meets_the_criterion():
    # 2,000 records, 1,400 screened: 40 relevant, then 1,360 irrelevant. The urn of the last
    # 1,360 plus the 600 unscreened (1,960) holds >= floor(40 / 0.95) + 1 - 40 = 3 relevant under
    # the null; P(none among the 1,360 drawn) = (600 * 599 * 598) / (1960 * 1959 * 1958).
    labels = [True] * 40 + [False] * 1360
    expected = 600 * 599 * 598 / (1960 * 1959 * 1958)
    assert stopping.buscar_p_value(labels, records=2000, target=0.95) == pytest.approx(expected)
    assert expected < 0.05
    assert stopping.buscar(labels, records=2000).met


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
def test_p_value_matches_the_reference_implementation(seed, target):
    rng = np.random.default_rng(seed)
    records = int(rng.integers(300, 3000))
    screened = int(rng.integers(50, records))
    # A prioritised-looking order: relevant records thin out as screening goes on.
    chance = np.linspace(0.3, 0.0, screened)
    labels = (rng.random(screened) < chance).tolist()
    labels[0] = True
    expected = reference_calculate_h0(labels, records, target)
    if math.isnan(expected):
        pytest.skip("the reference answers NaN when an urn cannot hold the null's total")
    assert stopping.buscar_p_value(labels, records=records, target=target) == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


def test_an_urn_that_cannot_hold_the_missing_records_rejects_the_null():
    # Everything screened: no record can have been missed, recall is 1.
    labels = [True] * 5 + [False] * 20
    result = stopping.buscar(labels, records=25)
    assert result.p_value == 0.0 and result.met
    assert result.recall_estimate == 1.0 and result.recall_lower == 1.0


def test_nothing_relevant_yet_means_no_evidence():
    result = stopping.buscar([False] * 30, records=100)
    assert result.p_value == 1.0 and not result.met
    assert result.recall_estimate is None and result.recall_lower is None


def test_recall_interval_brackets_the_truth_and_narrows_with_more_evidence():
    # 60 relevant in all: 57 found early, 3 left among 3,000 unscreened.
    early = [True] * 57 + [False] * 443
    later = early + [False] * 1500
    first = stopping.buscar(early, records=3500)
    second = stopping.buscar(later, records=3500)
    for result in (first, second):
        assert result.recall_lower <= result.recall_estimate <= 1.0
    assert second.recall_lower > first.recall_lower
    assert second.p_value < first.p_value


def test_lower_bound_is_where_the_test_turns():
    labels = [True] * 40 + [False] * 360 + [False] * 1000
    result = stopping.buscar(labels, records=2000, confidence=0.95)
    # The test rejects "recall < target" exactly for targets up to the lower bound.
    assert stopping.buscar_p_value(labels, records=2000, target=result.recall_lower) < 0.05
    assert stopping.buscar_p_value(labels, records=2000, target=result.recall_lower + 0.01) >= 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 1.0}, "recall target"),
        ({"target": 0.0}, "recall target"),
        ({"confidence": 1.0}, "confidence"),
        ({"records": 1}, "more records screened"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    arguments = {"records": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        stopping.buscar([True, False], **arguments)


def test_buscar_stop_index_checks_every_n_records():
    labels = [True] * 40 + [False] * 1960
    stop = stopping.buscar_stop_index(labels, check_every=10)
    assert stop % 10 == 0
    assert stopping.buscar(labels[:stop], records=2000).met
    assert not stopping.buscar(labels[: stop - 10], records=2000).met


def test_buscar_stop_index_is_the_whole_list_when_never_met():
    labels = [True, False] * 10
    assert stopping.buscar_stop_index(labels, check_every=5) == 20


def test_heuristic_stops_after_the_streak_following_a_relevant_record():
    labels = [False] * 5 + [True] + [False] * 3 + [True] + [False] * 4 + [True]
    assert stopping.heuristic_stop_index(labels, streak=4) == 14
    assert stopping.heuristic_stop_index(labels, streak=5) == len(labels)
    with pytest.raises(ValueError):
        stopping.heuristic_stop_index(labels, streak=0)
