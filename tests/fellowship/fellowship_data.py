"""The applicant builder of the fellowship tests."""

from __future__ import annotations

import copy
from typing import Any

#: An applicant who meets every rule of the bundled ESOR 2021 call.
GOOD: dict[str, Any] = {
    "applicant_id": "APP-001",
    "name": "Dr Giulia Bianchi",
    "email": "giulia@example.org",
    "time_zone": "Europe/Rome",
    "board_certification": {"date": "2019-11-04", "country": "IT", "specialty": "radiology"},
    "society_membership": {"society": "ESR", "category": "full", "fee_paid_years": [2020, 2021]},
    "languages": {"en": "C1", "fr": "B2", "it": "native"},
    "wishes_to_subspecialise": True,
    "declares_hybrid_imaging_knowledge": True,
    "declares_research_interest": True,
    "interview_available": True,
    "submitted_at": "2021-06-10T14:00:00+02:00",
    "track": "research",
    "other_applications": [],
    "evidence": {"publications": ["Bianchi G et al. Eur Radiol 2020"]},
}


def applicant(**changes: Any) -> dict[str, Any]:
    """GOOD with dotted-path changes, e.g. ``applicant(**{"languages.fr": "B1"})``; a value
    of ``...`` deletes the field."""
    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


