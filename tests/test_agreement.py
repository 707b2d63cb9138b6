"""Agreement statistics against published worked examples (pure, no database)."""

import pytest

from screening.domain.agreement import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    raw_agreement,
)


def pairs_from_2x2(yes_yes, yes_no, no_yes, no_no):
    return (
        [("yes", "yes")] * yes_yes
        + [("yes", "no")] * yes_no
        + [("no", "yes")] * no_yes
        + [("no", "no")] * no_no
    )


def test_cohen_wikipedia_grant_proposals():
    # Wikipedia, "Cohen's kappa", Simple example: 50 grant proposals read by A and B;
    # both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    result = cohen_kappa(pairs_from_2x2(20, 5, 10, 15))
    assert result.subjects == 50
    assert result.observed == pytest.approx(0.7)
    assert result.expected == pytest.approx(0.5)
    assert result.kappa == pytest.approx(0.4)


@pytest.mark.parametrize(
    "cells,kappa",
    [
        # Wikipedia, "Cohen's kappa", Same percentages but different numbers: both tables have
        # p_o = 0.60, yet kappa is 0.1304 and 0.2593.
        ((45, 15, 25, 15), 0.1304),
        ((25, 35, 5, 35), 0.2593),
    ],
)
def test_cohen_wikipedia_same_agreement_different_kappa(cells, kappa):
    result = cohen_kappa(pairs_from_2x2(*cells))
    assert result.observed == pytest.approx(0.6)
    assert result.kappa == pytest.approx(kappa, abs=5e-5)


def test_cohen_perfect_and_undefined():
    assert cohen_kappa([("a", "a"), ("b", "b")]).kappa == pytest.approx(1.0)
    # Everyone said "a": chance agreement is 1, kappa undefined rather than a division by zero.
    assert cohen_kappa([("a", "a"), ("a", "a")]).kappa is None
    assert cohen_kappa([]).kappa is None


# Wikipedia, "Fleiss' kappa", Worked example: 14 raters, 10 subjects, 5 categories;
# P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_wikipedia_worked_example():
    result = fleiss_kappa(FLEISS_WIKIPEDIA)
    assert result.subjects == 10
    assert result.observed == pytest.approx(0.378, abs=5e-4)
    assert result.expected == pytest.approx(0.213, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)


def test_fleiss_with_two_raters_matches_scotts_pi_on_grant_proposals():
    # With two ratings per subject Fleiss' kappa is Scott's pi: pooled marginals of the
    # Wikipedia proposals (yes 55/100, no 45/100) give p_e 0.505 and pi (0.7-0.505)/0.495.
    labels = [list(pair) for pair in pairs_from_2x2(20, 5, 10, 15)]
    result = fleiss_kappa(fleiss_table(labels, ["yes", "no"]))
    assert result.expected == pytest.approx(0.505)
    assert result.kappa == pytest.approx((0.7 - 0.505) / 0.495)


def test_fleiss_rejects_uneven_rows():
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 1], [3, 0]])


def test_raw_agreement():
    assert raw_agreement([["a", "a"], ["a", "b"], ["b", "b", "b"], ["c"]]) == pytest.approx(2 / 3)
    assert raw_agreement([]) is None


# One implementation, checked against scikit-learn and the undefined case ---------------------


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_sklearn(seed):
    import random

    from sklearn import metrics

    generator = random.Random(seed)
    labels = ["include", "uncertain", "exclude"]
    pairs = [(generator.choice(labels), generator.choice(labels)) for _ in range(60)]
    # Mostly agreeing raters too, so kappa is not always near 0.
    pairs += [(label, label) for label in generator.choices(labels, k=40)]
    ours = cohen_kappa(pairs).kappa
    theirs = metrics.cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs])
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_cohen_kappa_matches_sklearn_on_the_wikipedia_table():
    from sklearn import metrics

    pairs = pairs_from_2x2(20, 5, 10, 15)
    theirs = metrics.cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs])
    assert cohen_kappa(pairs).kappa == pytest.approx(theirs) == pytest.approx(0.4)


def test_undefined_kappa_says_why_and_has_no_strength():
    from screening.domain.agreement import CHANCE_IS_ONE, NO_SUBJECTS

    everyone_yes = cohen_kappa([(1, 1)] * 12)
    assert everyone_yes.kappa is None and everyone_yes.observed == 1.0
    assert everyone_yes.undefined_reason == CHANCE_IS_ONE
    assert everyone_yes.strength == ""
    assert cohen_kappa([]).undefined_reason == NO_SUBJECTS
    assert fleiss_kappa([[2, 0], [2, 0]]).undefined_reason == CHANCE_IS_ONE


@pytest.mark.parametrize(
    "kappa,strength",
    [
        (-0.1, "poor"),
        (0.0, "slight"),
        (0.2, "slight"),
        (0.4, "fair"),
        (0.41, "moderate"),
        (0.8, "substantial"),
        (0.81, "almost perfect"),
        (1.0, "almost perfect"),
    ],
)
def test_landis_koch_strength(kappa, strength):
    from screening.domain.agreement import Agreement

    assert Agreement(10, 0.5, 0.5, kappa).strength == strength


def test_quality_domain_has_no_second_kappa():
    from screening.domain import quality

    assert not hasattr(quality, "cohen_kappa") and not hasattr(quality, "kappa_label")
