"""Screening prioritisation metrics, computed from the order in which records were screened.

Pure Python. `labels_in_order` is the relevance (True = relevant) of each record in the order a
reviewer (or a simulation) screened them; it covers the whole dataset, so N = its length and the
number of relevant records R = its count of True.

Definitions (as in the active-learning literature, Cohen et al. 2006; ASReview):
- WSS@r = (TN + FN) / N - (1 - r), taken at the first point where recall r is reached. TN + FN
  are the records not screened yet at that point, so WSS@r = (N - n_r) / N - (1 - r) where n_r is
  the number of records screened when recall first reaches r.
- recall@x% = relevant records found after screening ceil(x * N) records, divided by R.
- RRF@10 = the proportion of relevant records found after screening 10 % of the records (the same
  quantity as recall@10%, reported under the name the literature uses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Recall targets are compared with a tolerance so that 0.95 * 20 = 19 is met by 19 records despite
# binary floating point.
_EPS = 1e-9


@dataclass(frozen=True)
class CurvePoint:
    screened: int
    found: int


def _counts(labels_in_order: Sequence[bool]) -> tuple[int, int]:
    n = len(labels_in_order)
    relevant = sum(1 for label in labels_in_order if label)
    if n == 0:
        raise ValueError("no records")
    if relevant == 0:
        raise ValueError("no relevant records: recall is undefined")
    return n, relevant


def screened_to_reach(labels_in_order: Sequence[bool], recall: float) -> int:
    """Records screened when recall first reaches `recall` (0 < recall <= 1)."""
    if not 0 < recall <= 1:
        raise ValueError("recall must be in (0, 1]")
    _, relevant = _counts(labels_in_order)
    needed = math.ceil(recall * relevant - _EPS)
    found = 0
    for position, label in enumerate(labels_in_order, start=1):
        if label:
            found += 1
            if found >= needed:
                return position
    raise AssertionError("unreachable: every relevant record is in the order")


def wss(labels_in_order: Sequence[bool], recall: float) -> float:
    """Work saved over sampling at `recall`: (TN + FN) / N - (1 - recall)."""
    n, _ = _counts(labels_in_order)
    screened = screened_to_reach(labels_in_order, recall)
    return (n - screened) / n - (1 - recall)


def recall_at(labels_in_order: Sequence[bool], fraction: float) -> float:
    """Share of relevant records found after screening ceil(fraction * N) records."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be in [0, 1]")
    n, relevant = _counts(labels_in_order)
    screened = math.ceil(fraction * n - _EPS)
    return sum(1 for label in labels_in_order[:screened] if label) / relevant


def rrf(labels_in_order: Sequence[bool], percent: float = 10) -> float:
    """Relevant records found (as a proportion of all relevant) after screening `percent` %."""
    return recall_at(labels_in_order, percent / 100)


def summary(labels_in_order: Sequence[bool]) -> dict[str, float]:
    """The metrics the simulate command reports, rounded for JSON."""
    return {
        "wss@95": round(wss(labels_in_order, 0.95), 4),
        "wss@100": round(wss(labels_in_order, 1.0), 4),
        "recall@10%": round(recall_at(labels_in_order, 0.10), 4),
        "recall@25%": round(recall_at(labels_in_order, 0.25), 4),
        "rrf@10": round(rrf(labels_in_order, 10), 4),
    }


def recall_curve(labels_in_order: Sequence[bool], max_points: int = 200) -> list[CurvePoint]:
    """(screened, found) points of the recall curve, thinned to at most `max_points` + 2.

    Every point where a relevant record was found is kept while there are few of them; the
    thinning keeps the first and last point so the chart's ends are exact.
    """
    points = [CurvePoint(0, 0)]
    found = 0
    for position, label in enumerate(labels_in_order, start=1):
        if label:
            found += 1
        points.append(CurvePoint(position, found))
    if len(points) <= max_points + 2:
        return points
    step = len(points) / max_points
    thinned = [points[math.floor(i * step)] for i in range(max_points)]
    thinned.append(points[-1])
    return thinned


def consecutive_irrelevant(labels_in_order: Sequence[bool]) -> int:
    """Irrelevant records screened since the last relevant one (all of them if none yet)."""
    count = 0
    for label in reversed(labels_in_order):
        if label:
            break
        count += 1
    return count
