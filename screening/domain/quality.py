"""Quality assessment arithmetic: answer scales, consensus, totals, threshold, kappa, rotas.

Pure Python: no Django, no project imports.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

YES = Decimal("1")
PARTLY = Decimal("0.5")
NO = Decimal("0")


@dataclass(frozen=True)
class AnswerOption:
    key: str  # the keyboard key that picks it
    label: str
    value: Decimal


SCALES: dict[str, tuple[AnswerOption, ...]] = {
    "yes_no": (AnswerOption("y", "Yes", YES), AnswerOption("n", "No", NO)),
    "yes_partly_no": (
        AnswerOption("y", "Yes", YES),
        AnswerOption("p", "Partly", PARTLY),
        AnswerOption("n", "No", NO),
    ),
}


def scale_options(scale: str) -> tuple[AnswerOption, ...]:
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"Unknown answer scale {scale!r}.") from None


def answer_parse(scale: str, raw: str) -> Decimal:
    """Read an answer given as its key, label or value; refuse what the scale does not offer."""
    text = str(raw).strip().lower()
    for option in scale_options(scale):
        if text in (option.key, option.label.lower()):
            return option.value
        try:
            if Decimal(text) == option.value:
                return option.value
        except ArithmeticError:
            continue
    allowed = ", ".join(f"{o.label} ({o.key})" for o in scale_options(scale))
    raise ValueError(f"{raw!r} is not an answer on this scale; choose one of {allowed}.")


def answer_label(scale: str, value: Decimal | None) -> str:
    if value is None:
        return ""
    for option in SCALES.get(scale, ()) + SCALES["yes_partly_no"]:
        if option.value == value:
            return option.label
    return str(value)


def consensus_of(answers: Sequence[Decimal], assessors: int) -> Decimal | None:
    """The agreed answer when every assigned assessor answered the same; otherwise None."""
    if assessors < 1 or len(answers) != assessors:
        return None
    first = answers[0]
    return first if all(a == first for a in answers) else None


def total_of(consensus: Iterable[Decimal | None], criteria: int) -> Decimal | None:
    """The study's score: the sum of its consensus answers, once every criterion has one."""
    values = [v for v in consensus if v is not None]
    if criteria == 0 or len(values) != criteria:
        return None
    return sum(values, Decimal("0"))


def below_threshold(total: Decimal | None, threshold: Decimal | None) -> bool:
    """A study is excluded only when the threshold is on and its complete total is below it."""
    return threshold is not None and total is not None and total < threshold


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters over the items both rated; None when it is undefined.

    With perfect agreement on a single category the chance agreement is 1 and kappa is
    undefined; it is reported as 1.0 there because the raters never disagreed.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first.keys() | second.keys()) / (n * n)
    if expected == 1:
        return 1.0 if observed == 1 else None
    return (observed - expected) / (1 - expected)


def kappa_label(kappa: float | None) -> str:
    """Landis and Koch's (1977) wording for a kappa value."""
    if kappa is None:
        return "not enough data"
    for limit, label in (
        (0.0, "poor"),
        (0.20, "slight"),
        (0.40, "fair"),
        (0.60, "moderate"),
        (0.80, "substantial"),
    ):
        if kappa <= limit:
            return label
    return "almost perfect"


def round_robin(
    items: Sequence[int],
    people: Sequence[int],
    per_item: int,
    load: dict[int, int] | None = None,
) -> dict[int, list[int]]:
    """Give each item `per_item` distinct people, spreading the work evenly.

    Each item goes to the least loaded people (ties by their order in `people`), so existing
    work (`load`) is taken into account and the rota is deterministic.
    """
    if per_item < 1 or per_item > len(people):
        raise ValueError(f"Cannot give each study {per_item} of {len(people)} people.")
    counts = {person: (load or {}).get(person, 0) for person in people}
    order = {person: index for index, person in enumerate(people)}
    plan: dict[int, list[int]] = {}
    for item in items:
        chosen = sorted(people, key=lambda p: (counts[p], order[p]))[:per_item]
        chosen.sort(key=order.__getitem__)
        for person in chosen:
            counts[person] += 1
        plan[item] = chosen
    return plan
