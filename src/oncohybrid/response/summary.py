"""The one number a reader looks at first in each criterion's timepoint result.

Used by the CLI tables (``respond``, ``assess``) and reports, so every criterion shows its
key quantity: the sum of diameters (RECIST family), SULpeak (PERCIST), SUVmax (EORTC),
SPD (Lugano CT), the highest Deauville score (Lugano PET), total tumour volume (RECIP).
"""

from __future__ import annotations

from typing import Any

# (JSON key in a timepoint result, unit shown), in order of preference.
KEY_NUMBERS: tuple[tuple[str, str], ...] = (
    ("sum_mm", "mm"),
    ("sum_sul_peak", "SUL"),
    ("sul_peak", "SUL"),
    ("suv", "SUV"),
    ("spd_mm2", "mm²"),
    ("ttv_ml", "ml"),
    ("max_deauville", "DS"),
)


def key_number(tp: dict[str, Any]) -> tuple[str, Any] | None:
    """``(formatted value with unit, raw value)`` of a timepoint result, or None."""
    for key, unit in KEY_NUMBERS:
        value = tp.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = f"{value:g} {unit}" if unit != "DS" else f"DS {value}"
            return shown, value
    return None


def change_vs_baseline(tp: dict[str, Any]) -> float | None:
    value = tp.get("change_from_baseline_pct", tp.get("change_pct"))
    return value if isinstance(value, int | float) else None


def change_vs_nadir(tp: dict[str, Any]) -> float | None:
    value = tp.get("change_from_nadir_pct")
    return value if isinstance(value, int | float) else None
