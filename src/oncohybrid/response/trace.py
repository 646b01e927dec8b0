"""Formatting of numbers for rule traces (display only — decisions never use these strings).

criteria.md §1.2: display rounding is defined separately from decision logic; a trace may
say "+20%" for +19.96 %, but the category was decided on the exact Decimal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_TENTH = Decimal("0.1")


def num(value: Decimal) -> str:
    """``Decimal('68.0')`` → ``"68"``, ``Decimal('12.50')`` → ``"12.5"`` (no exponent)."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def mm(value: Decimal) -> str:
    """A length for a trace line: ``"68 mm"``."""
    return f"{num(value)} mm"


def pct(value: Decimal | None) -> str:
    """A signed percent change rounded half-up to 0.1 for display: ``"+24%"``, ``"-30.5%"``."""
    if value is None:
        return "n/a"
    shown = value.quantize(_TENTH, rounding=ROUND_HALF_UP)
    text = num(shown)
    if shown > 0:
        text = "+" + text
    return text + "%"


def signed_mm(value: Decimal) -> str:
    """A signed length change: ``"+13 mm"``, ``"-4 mm"``."""
    text = num(value)
    return ("+" + text if value > 0 else text) + " mm"


def display_pct(value: Decimal | None) -> Decimal | None:
    """The rounded percent stored in JSON output (0.1 precision, half-up)."""
    if value is None:
        return None
    return value.quantize(_TENTH, rounding=ROUND_HALF_UP)
