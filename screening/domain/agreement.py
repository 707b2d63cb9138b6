"""Inter-rater agreement: raw agreement, Cohen's kappa (2 raters), Fleiss' kappa (n raters).

The one implementation of these statistics: the screening dashboard feeds them stored
decisions, Table 5 the quality assessors' answers. Pure functions over plain values.
"""

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

NO_SUBJECTS = "no study was rated by both"
CHANCE_IS_ONE = "every rating is in one category, so chance agreement is 1"


@dataclass(frozen=True)
class Agreement:
    subjects: int
    observed: float | None  # raw (observed) agreement
    expected: float | None  # agreement expected by chance
    kappa: float | None  # None when undefined (no subjects, or chance agreement is 1)

    @property
    def undefined_reason(self) -> str:
        """Why kappa is undefined ("" when it is defined), for "-" and its explanation."""
        if self.kappa is not None:
            return ""
        return NO_SUBJECTS if self.subjects == 0 else CHANCE_IS_ONE

    @property
    def strength(self) -> str:
        """Landis and Koch's (1977) wording for kappa; "" when kappa is undefined."""
        if self.kappa is None:
            return ""
        if self.kappa < 0:
            return "poor"
        for upper, label in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate")):
            if self.kappa <= upper:
                return label
        return "substantial" if self.kappa <= 0.80 else "almost perfect"


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> Agreement:
    """Cohen (1960): kappa = (p_o - p_e) / (1 - p_e) for two raters' labels of the same subjects.

    `pairs` holds (rater A's label, rater B's label) per subject; p_e uses each rater's own
    marginal distribution.
    """
    n = len(pairs)
    if n == 0:
        return Agreement(0, None, None, None)
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    return Agreement(n, observed, expected, _kappa(observed, expected))


def fleiss_kappa(table: Sequence[Sequence[int]]) -> Agreement:
    """Fleiss (1971): agreement of a fixed number n of ratings per subject.

    `table[i][j]` is how many raters put subject i in category j; every row sums to the same n
    (n >= 2). Raters need not be the same people for every subject.
    """
    rows = [list(row) for row in table if sum(row) > 0]
    if not rows:
        return Agreement(0, None, None, None)
    n = sum(rows[0])
    if n < 2 or any(sum(row) != n for row in rows):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per subject")
    subjects = len(rows)
    categories = len(rows[0])
    p_j = [sum(row[j] for row in rows) / (subjects * n) for j in range(categories)]
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in rows]
    observed = sum(p_i) / subjects
    expected = sum(p * p for p in p_j)
    return Agreement(subjects, observed, expected, _kappa(observed, expected))


def fleiss_table(
    ratings: Sequence[Sequence[Hashable]], categories: Sequence[Hashable]
) -> list[list[int]]:
    """Turn per-subject label lists into the count table `fleiss_kappa` reads."""
    return [[Counter(labels)[c] for c in categories] for labels in ratings]


def raw_agreement(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of subjects on which every rater gave the same label."""
    rated = [labels for labels in ratings if len(labels) >= 2]
    if not rated:
        return None
    return sum(1 for labels in rated if len(set(labels)) == 1) / len(rated)


def _kappa(observed: float, expected: float) -> float | None:
    # Floating sums of shares can land a hair off 1.0; compare with a tolerance.
    if expected >= 1 - 1e-12:
        # Every rating in one category: chance explains all agreement and kappa is undefined
        # (not 1, even though the raters never disagreed).
        return None
    return (observed - expected) / (1 - expected)
