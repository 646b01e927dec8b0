"""Criterion name (as in the case file's ``criteria``) → module implementing ``assess``.

Each module ``oncohybrid.response.<module>`` defines ``assess(case: Case) -> Assessment``.
Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from oncohybrid.errors import InputError
from oncohybrid.response.model import Assessment, Case

CRITERIA: dict[str, str] = {
    "recist1.1": "recist",
    "irecist": "irecist",
    "mrecist": "mrecist",
    "choi": "choi",
    "percist": "percist",
    "eortc": "eortc",
    "lugano-pet": "lugano",
    "lugano-ct": "lugano",
    "lugano": "lugano",
    "lyric": "lyric",
    "recip": "recip",
    "krenning": "krenning",
}


def get_assessor(name: str) -> Callable[[Case], Assessment]:
    """The ``assess`` function for a criterion name; InputError for an unknown name."""
    key = name.strip().lower()
    if key not in CRITERIA:
        raise InputError(
            f"criteria: unknown criteria {name!r}; expected one of {', '.join(CRITERIA)}"
        )
    module = importlib.import_module(f"oncohybrid.response.{CRITERIA[key]}")
    return module.assess
