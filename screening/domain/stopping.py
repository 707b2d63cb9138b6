"""Stopping rules for prioritised screening: when may a team stop before the end of the queue?

Pure Python with numpy and scipy; no Django.

BUSCAR (Callaghan and Mueller-Hansen 2020, "Statistical stopping criteria for automated
screening in systematic reviews", Systematic Reviews 9:273; reference implementation: the
`buscar` package's `calculate_h0`, unbiased urns). The null hypothesis is "recall is below the
target". Treat the last k screened records, for every k, as if they had been drawn at random
from an urn made of themselves and every record not screened yet. Had recall been below the
target, at least K = floor(r / target) + 1 relevant records would exist in total (r = relevant
found), so at least K - (r - r_k) of them would be in that urn (r_k = relevant among the last k).
The p-value of one urn is the hypergeometric probability of seeing r_k or fewer relevant records
in k draws from it; the test's p-value is the smallest over all k. The criterion is met when it
is below 1 - confidence. An urn that cannot hold that many relevant records (the null hypothesis
is impossible there: too few records remain) has p = 0.

Because the ranking shows the most likely relevant records first, the urn assumption is
conservative: a prioritised sample finds relevant records faster than a random one would, so
seeing few of them is stronger evidence than the test counts (the paper's argument).

The same test, inverted, estimates recall: the total number of relevant records R is bounded by
the smallest total the test rejects at a level. With R_a = the smallest total whose p-value is
below a, recall >= r / (R_a - 1) with confidence 1 - a (the lower bound at the owner's
confidence), and r / (R_0.5 - 1) is the median estimate. Recall cannot exceed 1, so the interval
is one-sided: [lower bound, 1].

Heuristic (what slrweb offered before): stop after N consecutive irrelevant records. Cheap and
popular; in Repke et al.'s evaluation of stopping methods (2026) it stopped far below 95 %
recall. Kept for comparison in `simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import hypergeom

DEFAULT_TARGET = 0.95
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class BuscarResult:
    screened: int
    relevant_found: int
    records: int  # every record of the stage, screened or not
    target: float
    confidence: float
    p_value: float  # of "recall < target"; 1.0 before anything relevant was found
    met: bool
    recall_estimate: float | None  # median estimate; None before anything relevant was found
    recall_lower: float | None  # one-sided lower bound at `confidence`

    @property
    def remaining(self) -> int:
        return self.records - self.screened


def _check(*, target: float, confidence: float, screened: int, records: int) -> None:
    if not 0 < target < 1:
        raise ValueError("the recall target must be between 0 and 1 (exclusive)")
    if not 0 < confidence < 1:
        raise ValueError("the confidence must be between 0 and 1 (exclusive)")
    if screened > records:
        raise ValueError("more records screened than there are records")


def _p_value_for_total(
    urn_found: np.ndarray, relevant_found: int, records: int, total: int
) -> float:
    """p-value of "there are `total` relevant records in all" (see the module docstring)."""
    screened = len(urn_found)
    urn_sizes = np.arange(1, screened + 1)
    population = records - (screened - urn_sizes)
    relevant_in_urn = total - (relevant_found - urn_found)
    possible = relevant_in_urn <= population
    if not possible.any():
        return 0.0
    p = hypergeom.cdf(
        urn_found[possible], population[possible], relevant_in_urn[possible], urn_sizes[possible]
    )
    # Urns where the null hypothesis is impossible contribute p = 0.
    return 0.0 if not possible.all() else float(p.min())


def _urn_found(labels_in_order: Sequence[bool]) -> np.ndarray:
    """Relevant records among the last k screened, for k = 1..n."""
    labels = np.asarray(labels_in_order, dtype=np.int64)
    return np.cumsum(labels[::-1])


def buscar_p_value(labels_in_order: Sequence[bool], *, records: int, target: float) -> float:
    """p-value of "recall < target" after screening `labels_in_order` of `records` records."""
    relevant_found = int(sum(bool(label) for label in labels_in_order))
    if relevant_found == 0 or len(labels_in_order) == 0:
        return 1.0
    total = math.floor(relevant_found / target) + 1
    return _p_value_for_total(_urn_found(labels_in_order), relevant_found, records, total)


def _smallest_rejected_total(
    urn_found: np.ndarray, relevant_found: int, records: int, level: float
) -> int:
    """The smallest total number of relevant records whose p-value is below `level`.

    The p-value falls as the assumed total grows, so a binary search finds it; a total beyond
    the found plus every unscreened record is impossible (p = 0).
    """
    low = relevant_found + 1
    high = relevant_found + (records - len(urn_found)) + 1
    while low < high:
        middle = (low + high) // 2
        if _p_value_for_total(urn_found, relevant_found, records, middle) < level:
            high = middle
        else:
            low = middle + 1
    return low


def buscar(
    labels_in_order: Sequence[bool],
    *,
    records: int,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BuscarResult:
    """The BUSCAR test and recall estimate after screening `labels_in_order` (relevance of each
    screened record, in the order screened) out of `records` records in all."""
    screened = len(labels_in_order)
    _check(target=target, confidence=confidence, screened=screened, records=records)
    relevant_found = int(sum(bool(label) for label in labels_in_order))
    p_value = buscar_p_value(labels_in_order, records=records, target=target)
    estimate = lower = None
    if relevant_found:
        urn_found = _urn_found(labels_in_order)
        median_total = _smallest_rejected_total(urn_found, relevant_found, records, 0.5)
        lower_total = _smallest_rejected_total(urn_found, relevant_found, records, 1 - confidence)
        estimate = relevant_found / (median_total - 1)
        lower = relevant_found / (lower_total - 1)
    return BuscarResult(
        screened=screened,
        relevant_found=relevant_found,
        records=records,
        target=target,
        confidence=confidence,
        p_value=p_value,
        met=p_value < 1 - confidence,
        recall_estimate=estimate,
        recall_lower=lower,
    )


def buscar_stop_index(
    labels_in_order: Sequence[bool],
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    check_every: int = 10,
) -> int:
    """Records screened when the BUSCAR criterion is first met, checking after every
    `check_every` records (as a team looks at the dashboard now and then); the whole list when
    it never is. `labels_in_order` covers every record (a replayed, fully labelled dataset)."""
    records = len(labels_in_order)
    _check(target=target, confidence=confidence, screened=0, records=records)
    if check_every < 1:
        raise ValueError("check_every must be at least 1")
    for screened in range(check_every, records, check_every):
        prefix = labels_in_order[:screened]
        if buscar_p_value(prefix, records=records, target=target) < 1 - confidence:
            return screened
    return records


def heuristic_stop_index(labels_in_order: Sequence[bool], *, streak: int) -> int:
    """Records screened when `streak` consecutive irrelevant records have first been seen (after
    at least one relevant one, as the hint on the progress panel counts); the whole list when
    never."""
    if streak < 1:
        raise ValueError("the streak must be at least 1")
    run = 0
    seen_relevant = False
    for index, label in enumerate(labels_in_order, start=1):
        if label:
            seen_relevant = True
            run = 0
            continue
        run += 1
        if seen_relevant and run >= streak:
            return index
    return len(labels_in_order)
