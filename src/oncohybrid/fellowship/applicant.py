"""An applicant's declaration (JSON, ``applicant.schema.json``), parsed or refused.

Every problem is an :class:`~oncohybrid.errors.InputError` whose message starts with the
JSON path, e.g. ``$.board_certification.date: '2018-02-30' is not a valid date``. What
the schema accepts is judged by the rules (:mod:`oncohybrid.fellowship.rules`): a language
missing from ``languages`` or a certification date after the deadline is a failed rule,
not invalid input.

>>> a = parse_applicant({"applicant_id": "A1", "name": "Dr A", "board_certification":
...     {"date": "2019-05-02", "country": "it", "specialty": "radiology"},
...     "society_membership": {"society": "ESR", "category": "full", "fee_paid_years": [2021]},
...     "languages": {"en": "C1", "fr": "native"}, "wishes_to_subspecialise": True,
...     "declares_hybrid_imaging_knowledge": True, "declares_research_interest": True,
...     "interview_available": True, "submitted_at": "2021-06-01T10:00:00+02:00",
...     "track": "research"})
>>> a.certification_country, a.languages["fr"]
('IT', 'native')
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from oncohybrid.errors import InputError
from oncohybrid.fellowship.call import Call, json_path

__all__ = ["Applicant", "OtherApplication", "parse_applicant", "load_applicant",
           "applicant_schema"]


@dataclass(frozen=True)
class OtherApplication:
    programme: str
    topic: str
    status: str  # submitted | withdrawn


@dataclass(frozen=True)
class Applicant:
    applicant_id: str
    name: str
    certification_date: dt.date
    certification_country: str
    specialty: str
    society: str
    membership_category: str
    fee_paid_years: tuple[int, ...]
    languages: dict[str, str]  # ISO 639-1 (lower case) -> "A1".."C2" | "native"
    wishes_to_subspecialise: bool
    declares_hybrid_imaging_knowledge: bool
    declares_research_interest: bool
    interview_available: bool
    submitted_at: dt.datetime
    track: str
    other_applications: tuple[OtherApplication, ...]
    time_zone: str | None
    data: dict[str, Any]


@lru_cache(maxsize=1)
def applicant_schema() -> dict[str, Any]:
    text = resources.files("oncohybrid.fellowship").joinpath("applicant.schema.json")
    return json.loads(text.read_text())


def parse_applicant(data: Any, call: Call | None = None, source: str = "") -> Applicant:
    """Validate against the schema (and the call's tracks when given)."""
    pre = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise InputError(f"{pre}$: an applicant is a JSON object, got {type(data).__name__}")
    errors = sorted(Draft202012Validator(applicant_schema()).iter_errors(data),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        path = json_path(e.absolute_path)
        if e.validator == "required":
            missing = next((r for r in e.validator_value if r not in e.instance), None)
            path = f"{path}.{missing}" if missing else path
            raise InputError(f"{pre}{path}: required field is missing")
        raise InputError(f"{pre}{path}: {e.message}")
    bc = data["board_certification"]
    try:
        cert_date = dt.date.fromisoformat(bc["date"])
    except ValueError:
        raise InputError(f"{pre}$.board_certification.date: {bc['date']!r} is not a valid "
                         "date") from None
    try:
        text = data["submitted_at"]
        submitted = dt.datetime.fromisoformat(text[:10] + "T" + text[11:].replace("z", "Z"))
    except ValueError:
        raise InputError(f"{pre}$.submitted_at: {data['submitted_at']!r} is not a valid "
                         "ISO 8601 date-time") from None
    if submitted.utcoffset() is None:  # the pattern asks for it; belt and braces
        raise InputError(f"{pre}$.submitted_at: the time needs an offset (Z or +hh:mm)")
    tz = data.get("time_zone")
    if tz is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"{pre}$.time_zone: unknown IANA time zone {tz!r}") from None
    langs: dict[str, str] = {}
    for code, level in data["languages"].items():
        key = code.lower()
        if key in langs:
            raise InputError(f"{pre}$.languages.{code}: language given twice")
        langs[key] = "native" if level.lower() == "native" else level.upper()
    if call is not None and data["track"] not in call.tracks:
        raise InputError(f"{pre}$.track: {data['track']!r} is not a track of call {call.id} "
                         f"({', '.join(call.tracks)})")
    sm = data["society_membership"]
    return Applicant(
        applicant_id=data["applicant_id"], name=data["name"],
        certification_date=cert_date, certification_country=bc["country"].upper(),
        specialty=bc["specialty"], society=sm["society"], membership_category=sm["category"],
        fee_paid_years=tuple(sm["fee_paid_years"]), languages=langs,
        wishes_to_subspecialise=data["wishes_to_subspecialise"],
        declares_hybrid_imaging_knowledge=data["declares_hybrid_imaging_knowledge"],
        declares_research_interest=data["declares_research_interest"],
        interview_available=data["interview_available"], submitted_at=submitted,
        track=data["track"],
        other_applications=tuple(OtherApplication(o["programme"], o.get("topic", ""),
                                                  o["status"])
                                 for o in data.get("other_applications") or []),
        time_zone=tz, data=data,
    )


def load_applicant(path: str | Path, call: Call | None = None) -> Applicant:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the applicant file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: $: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    return parse_applicant(data, call, str(p))
