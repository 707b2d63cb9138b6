"""Quality assessment arithmetic: answer scales, consensus, totals, threshold, rotas.

Agreement between assessors (kappa) is `screening.domain.agreement`, shared with screening.

Pure Python: no Django, no project imports.
"""

from collections.abc import Iterable, Sequence
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
