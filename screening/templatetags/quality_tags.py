"""Template filters of the quality and extraction pages."""

from decimal import Decimal

from django import template

from ..domain import extraction as values
from ..domain.quality import answer_label

register = template.Library()


@register.filter
def qc_label(value: Decimal | None, scale: str) -> str:
    """An answer's label on the review's scale: 1 -> Yes, 0.5 -> Partly, 0 -> No."""
    return answer_label(scale, value)


@register.filter
def qc_number(value: Decimal | float | None) -> str:
    """A score without trailing zeros (3, 0.5, 3.47); empty when missing."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


@register.filter
def extraction_display(value) -> str:
    return values.value_display(value)


@register.filter
def in_list(value, items) -> bool:
    return value in (items or [])


@register.filter
def qc_answered(row, user_id: int) -> int:
    """How many criteria of a study this assessor has answered."""
    return row.answered_by(user_id)


@register.filter
def qc_marked_done(row, user_id: int) -> bool:
    """Whether this assessor has marked the study done."""
    assignment = row.assignment_of(user_id)
    return bool(assignment and assignment.completed_at)


@register.filter
def as_inputs(value) -> list[str]:
    """A stored value as the list of form values that would submit it again."""
    form_value = values.value_as_input(value)
    return form_value if isinstance(form_value, list) else [form_value]


@register.filter
def as_input_value(value):
    return values.value_as_input(value)
