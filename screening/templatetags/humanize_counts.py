from django import template

register = template.Library()


@register.filter
def thousands(value):
    """1905 -> '1,905' (the paper's style), regardless of locale settings."""
    if value is None or value == "":
        return ""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value
