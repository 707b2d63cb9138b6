"""Data extraction values: validation per field kind, comparison and display.

Pure Python: no Django, no project imports. Values are JSON-ready: text -> str,
number -> int or float, choice -> str, multi choice -> list[str] in the field's order,
yes/no -> bool; an empty answer is None.
"""

import math
from collections.abc import Sequence

TEXT = "text"
LONG_TEXT = "long_text"
NUMBER = "number"
CHOICE = "choice"
MULTI_CHOICE = "multi_choice"
YES_NO = "yes_no"
KINDS = (TEXT, LONG_TEXT, NUMBER, CHOICE, MULTI_CHOICE, YES_NO)
TEXT_MAX = {TEXT: 500, LONG_TEXT: 20_000}
MULTI_SEPARATOR = "; "

# A stored (JSON) value, as described above.
Value = str | int | float | bool | list[str] | None


class ValueInvalid(ValueError):
    """The raw input does not fit the field; the message is meant for the user."""


def choices_parse(raw: str) -> list[str]:
    """One choice per line, stripped, blank lines and repeats dropped, order kept."""
    seen: list[str] = []
    for line in raw.splitlines():
        choice = line.strip()
        if choice and choice not in seen:
            seen.append(choice)
    return seen


def value_clean(kind: str, raw: str | Sequence[str] | None, choices: Sequence[str] = ()) -> Value:
    """Turn form input into the stored value, or raise ValueInvalid with a clear message."""
    if kind not in KINDS:
        raise ValueInvalid(f"Unknown field kind {kind!r}.")
    if kind == MULTI_CHOICE:
        picked = [raw] if isinstance(raw, str) else list(raw or [])
        picked = [p.strip() for p in picked if p and p.strip()]
        unknown = [p for p in picked if p not in choices]
        if unknown:
            raise ValueInvalid(f"{', '.join(unknown)} is not one of the choices.")
        return [c for c in choices if c in picked] or None
    text = raw if isinstance(raw, str) else (raw[-1] if raw else "")
    text = (text or "").strip()
    if not text:
        return None
    if kind in TEXT_MAX:
        if len(text) > TEXT_MAX[kind]:
            raise ValueInvalid(f"Keep this under {TEXT_MAX[kind]:,} characters.")
        return text
    if kind == NUMBER:
        # A lone decimal comma ("0,5") is common in European spreadsheets.
        candidate = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
        try:
            number = float(candidate)
        except ValueError:
            raise ValueInvalid(f"{text!r} is not a number.") from None
        if not math.isfinite(number):
            raise ValueInvalid(f"{text!r} is not a finite number.")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == CHOICE:
        if text not in choices:
            raise ValueInvalid(f"{text!r} is not one of the choices.")
        return text
    lowered = text.lower()
    if lowered in ("yes", "y", "true", "1", "on"):
        return True
    if lowered in ("no", "n", "false", "0", "off"):
        return False
    raise ValueInvalid("Answer yes or no.")


def values_equal(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.split()) == " ".join(b.split())
    if is_number(a) and is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_display(value: object) -> str:
    """How a stored value reads in a table or a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return MULTI_SEPARATOR.join(str(v) for v in value)
    return str(value)


def value_as_input(value: object) -> str | list[str]:
    """The value as a form field would send it back (so a draft round-trips)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


# Spreadsheets run a cell starting with one of these as a formula (CSV injection); imported
# titles are untrusted, so such text cells get a leading apostrophe, which spreadsheets hide.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text
