"""Screening metrics against hand-computed examples."""

import pytest

from screening.domain import metrics

# N = 10, R = 2: relevant at positions 1 and 3.
SMALL = [True, False, True, False, False, False, False, False, False, False]
# N = 20, R = 4: relevant at positions 1, 5, 6 and 12.
MEDIUM = [i in (1, 5, 6, 12) for i in range(1, 21)]


def test_wss_small_by_hand():
    # recall 100 % first reached after 3 records: (10 - 3) / 10 - 0 = 0.7
    assert metrics.wss(SMALL, 1.0) == pytest.approx(0.7)
    # 95 % of 2 relevant needs both (ceil(1.9) = 2): same point, minus 0.05
    assert metrics.wss(SMALL, 0.95) == pytest.approx(0.65)


def test_wss_medium_by_hand():
    # ceil(0.95 * 4) = 4 relevant, reached at record 12: 8 / 20 - 0.05 = 0.35
    assert metrics.wss(MEDIUM, 0.95) == pytest.approx(0.35)
    assert metrics.wss(MEDIUM, 1.0) == pytest.approx(0.40)
    # 50 % (2 relevant) reached at record 5: 15 / 20 - 0.5 = 0.25
    assert metrics.wss(MEDIUM, 0.5) == pytest.approx(0.25)


def test_wss_exact_recall_target_is_not_lost_to_floating_point():
    # 20 relevant: 95 % is exactly 19, found in the first 19 records; the 20th comes last.
    order = [True] * 19 + [False] * 80 + [True]
    assert metrics.screened_to_reach(order, 0.95) == 19
    assert metrics.wss(order, 0.95) == pytest.approx(81 / 100 - 0.05)
    assert metrics.wss(order, 1.0) == pytest.approx(0.0)


def test_random_order_has_no_work_saved():
    # Relevant records spread evenly: WSS@100 is about 0 (here exactly 0 by construction).
    order = [i % 10 == 9 for i in range(100)]
    assert metrics.wss(order, 1.0) == pytest.approx(0.0)


def test_recall_at_and_rrf_by_hand():
    # 10 % of 10 = 1 record: 1 of 2 relevant; 25 % of 10 = ceil(2.5) = 3 records: 2 of 2.
    assert metrics.recall_at(SMALL, 0.10) == pytest.approx(0.5)
    assert metrics.recall_at(SMALL, 0.25) == pytest.approx(1.0)
    assert metrics.rrf(SMALL, 10) == pytest.approx(0.5)
    # 10 % of 20 = 2 records: 1 of 4; 25 % = 5 records: 2 of 4.
    assert metrics.recall_at(MEDIUM, 0.10) == pytest.approx(0.25)
    assert metrics.recall_at(MEDIUM, 0.25) == pytest.approx(0.5)
    assert metrics.rrf(MEDIUM) == pytest.approx(0.25)


def test_summary_keys_match_the_simulate_contract():
    assert metrics.summary(MEDIUM) == {
        "wss@95": 0.35,
        "wss@100": 0.4,
        "recall@10%": 0.25,
        "recall@25%": 0.5,
        "rrf@10": 0.25,
    }


def test_streak_and_curve():
    assert metrics.consecutive_irrelevant([True, False, False]) == 2
    assert metrics.consecutive_irrelevant([False, False]) == 2
    assert metrics.consecutive_irrelevant([False, True]) == 0
    assert metrics.consecutive_irrelevant([]) == 0
    curve = metrics.recall_curve(SMALL)
    assert [(p.screened, p.found) for p in curve[:4]] == [(0, 0), (1, 1), (2, 1), (3, 2)]
    assert (curve[-1].screened, curve[-1].found) == (10, 2)
    long = metrics.recall_curve([i % 7 == 0 for i in range(5000)], max_points=100)
    assert len(long) <= 102
    assert (long[0].screened, long[-1].screened, long[-1].found) == (0, 5000, 715)


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.wss([False, False], 0.95),
        lambda: metrics.wss([], 1.0),
        lambda: metrics.wss([True], 0),
        lambda: metrics.recall_at([True], 1.5),
    ],
)
def test_undefined_metrics_refuse(call):
    with pytest.raises(ValueError):
        call()
