"""Treatment-response criteria: one module per criterion, a shared case model and trace.

``load_case`` reads and validates a case (``parse.py``, schema ``case.schema.json``);
``assess_case`` dispatches to the criterion named in the case (``registry.py``).
"""

from __future__ import annotations

from oncohybrid.response.model import Assessment, Case
from oncohybrid.response.parse import load_case
from oncohybrid.response.registry import CRITERIA, get_assessor

__all__ = ["CRITERIA", "Assessment", "Case", "assess_case", "load_case"]


def assess_case(case: Case) -> Assessment:
    """Assess ``case`` under ``case.criteria`` (see ``registry.CRITERIA``)."""
    return get_assessor(case.criteria)(case)
