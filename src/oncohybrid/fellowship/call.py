"""A fellowship call: YAML data validated by ``call.schema.json``, never code.

The call holds everything the rules need (deadline and its time zone, the list of
countries, the language levels, the society, the grant) so that next year's call is a new
file, not a new release. Rule ids are fixed (:data:`oncohybrid.fellowship.rules.RULES`);
their parameters come from the call and are checked here, so that a malformed call is
refused at load time with the JSON path of the wrong value
(``calls/x.yaml: $.rules[4].params.min_level: 'D1' is not a CEFR level``).

The bundled call ``esor-gustave-roussy-2021`` is package data
(``fellowship/calls/esor-gustave-roussy-2021.yaml``).

>>> call = bundled_call("esor-gustave-roussy-2021")
>>> call.deadline_end.isoformat()
'2021-06-16T00:00:00+02:00'
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jsonschema import Draft202012Validator

from oncohybrid.errors import InputError

__all__ = ["Call", "RuleSpec", "RubricItem", "ModuleTemplate", "load_call", "parse_call",
           "bundled_call", "bundled_ids", "call_schema", "CEFR_LEVELS", "cefr_rank",
           "json_path", "DEFAULT_CALL"]

DEFAULT_CALL = "esor-gustave-roussy-2021"

#: The Common European Framework of Reference for Languages, lowest first (Council of
#: Europe 2001, ch. 3; Companion Volume 2020). "native" ranks with C2 (issue #13).
CEFR_LEVELS = ("A1", "A2", "B1", "B2", "C1", "C2")


def cefr_rank(level: str) -> int:
    """0 (A1) … 5 (C2); ``native`` counts as C2.

    >>> cefr_rank("native") == cefr_rank("C2") > cefr_rank("C1")
    True
    """
    text = level.strip()
    if text.lower() == "native":
        return CEFR_LEVELS.index("C2")
    return CEFR_LEVELS.index(text.upper())


def json_path(parts: Any) -> str:
    """``$.rules[2].params`` from a jsonschema error path."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


@dataclass(frozen=True)
class RuleSpec:
    id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class RubricItem:
    id: str
    label: str
    weight: Decimal


@dataclass(frozen=True)
class ModuleTemplate:
    id: str
    label: str
    weeks: int


@dataclass(frozen=True)
class Call:
    """One call for applications, as validated data."""

    id: str
    title: str
    programme: str
    topic: str
    society: dict[str, str]
    host: dict[str, str]
    places: int
    tracks: tuple[str, ...]
    deadline_date: dt.date
    deadline_zone: str
    start: dt.date
    duration_months: int
    postponement: bool
    grant_total_eur: Decimal
    grant_payments: int
    grant_paid_by: str
    rules: tuple[RuleSpec, ...]
    rubric: tuple[RubricItem, ...]
    modules: tuple[ModuleTemplate, ...]
    source: dict[str, Any]

    @property
    def deadline_end(self) -> dt.datetime:
        """The first instant after the deadline: midnight after the deadline day in the
        call's time zone (so "end of day" includes 23:59:59.999999 local time, whatever
        the summer-time offset of that day)."""
        day_after = self.deadline_date + dt.timedelta(days=1)
        return dt.datetime.combine(day_after, dt.time(0), tzinfo=ZoneInfo(self.deadline_zone))

    @property
    def end(self) -> dt.date:
        """The last day of the fellowship year."""
        y, m = divmod(self.start.month - 1 + self.duration_months, 12)
        return dt.date(self.start.year + y, m + 1, 1) - dt.timedelta(days=1)

    def rule(self, rule_id: str) -> RuleSpec | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@lru_cache(maxsize=1)
def call_schema() -> dict[str, Any]:
    text = resources.files("oncohybrid.fellowship").joinpath("call.schema.json").read_text()
    return json.loads(text)


def _plain(obj: Any) -> Any:
    """YAML dates become ISO strings (the schema speaks JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    return obj


def _zone(name: str, where: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{where}: unknown IANA time zone {name!r}") from None
    return name


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a valid date (YYYY-MM-DD)") from None


# Parameters of each rule: name -> (python type check, description).
_PARAMS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "board_certification_recent": {"max_years": (int, True), "specialty": (str, True)},
    "european_radiologist": {"countries": (list, True)},
    "society_full_member": {"society": (str, True), "category": (str, True)},
    "membership_fee_paid": {"year": (int, True)},
    "english_level": {"language": (str, False), "min_level": (str, True)},
    "french_level": {"language": (str, False), "min_level": (str, True)},
    "language_level": {"language": (str, True), "min_level": (str, True)},
    "single_application": {"programme_family": (str, False)},
    "deadline": {},
    "interview_available": {},
    "subspecialty_intent": {},
    "hybrid_imaging_knowledge": {},
    "research_interest": {},
}


def _check_params(rule_id: str, params: dict[str, Any], where: str) -> dict[str, Any]:
    spec = _PARAMS[rule_id]
    for name in params:
        if name not in spec:
            raise InputError(f"{where}.{name}: unknown parameter of rule {rule_id!r} "
                             f"(known: {', '.join(spec) or 'none'})")
    for name, (kind, required) in spec.items():
        if name not in params:
            if required:
                raise InputError(f"{where}.{name}: required parameter of rule {rule_id!r} "
                                 "is missing")
            continue
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise InputError(f"{where}.{name}: expected {getattr(kind, '__name__', kind)}, "
                             f"got {value!r}")
    out = dict(params)
    if "min_level" in out:
        if str(out["min_level"]).upper() not in CEFR_LEVELS:
            raise InputError(f"{where}.min_level: {out['min_level']!r} is not a CEFR level "
                             f"({', '.join(CEFR_LEVELS)})")
        out["min_level"] = str(out["min_level"]).upper()
    if rule_id == "english_level":
        out.setdefault("language", "en")
    if rule_id == "french_level":
        out.setdefault("language", "fr")
    if "countries" in out:
        bad = [c for c in out["countries"] if not (isinstance(c, str) and len(c) == 2
                                                   and c.isalpha() and c.isupper())]
        if bad or not out["countries"]:
            hint = (" (YAML 1.1 reads an unquoted NO as false: write \"NO\")"
                    if any(isinstance(b, bool) for b in bad) else "")
            raise InputError(f"{where}.countries: expected ISO 3166-1 alpha-2 codes, got "
                             f"{bad[0] if bad else 'an empty list'!r}{hint}")
    if "max_years" in out and out["max_years"] < 0:
        raise InputError(f"{where}.max_years: must not be negative")
    return out


def parse_call(data: Any, source: str = "call") -> Call:
    """Validate a call (already parsed YAML/JSON) and build the :class:`Call`."""
    data = _plain(data)
    if not isinstance(data, dict):
        raise InputError(f"{source}: $: a call is a mapping (YAML object), got "
                         f"{type(data).__name__}")
    errors = sorted(Draft202012Validator(call_schema()).iter_errors(data),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        raise InputError(f"{source}: {json_path(e.absolute_path)}: {e.message}")
    rules = []
    seen: set[str] = set()
    for i, r in enumerate(data["rules"]):
        where = f"{source}: $.rules[{i}]"
        if r["id"] in seen and r["id"] != "language_level":
            raise InputError(f"{where}.id: rule {r['id']!r} appears twice")
        seen.add(r["id"])
        rules.append(RuleSpec(r["id"], _check_params(r["id"], r.get("params") or {},
                                                     f"{where}.params")))
    rubric = tuple(RubricItem(x["id"], x["label"], Decimal(str(x["weight"])))
                   for x in data.get("rubric") or [])
    if rubric and sum(x.weight for x in rubric) != Decimal("1"):
        raise InputError(f"{source}: $.rubric: the weights add up to "
                         f"{sum(x.weight for x in rubric)}, not 1")
    modules = tuple(ModuleTemplate(x["id"], x["label"], int(x["weeks"]))
                    for x in data.get("modules") or [])
    total = Decimal(data["grant"]["total_eur"])
    _zone(data["host"]["time_zone"], f"{source}: $.host.time_zone")
    return Call(
        id=data["id"], title=data["title"], programme=data["programme"],
        topic=data.get("topic", ""), society=dict(data["society"]), host=dict(data["host"]),
        places=data["places"], tracks=tuple(data["tracks"]),
        deadline_date=_date(data["deadline"]["date"], f"{source}: $.deadline.date"),
        deadline_zone=_zone(data["deadline"]["time_zone"], f"{source}: $.deadline.time_zone"),
        start=_date(data["start"], f"{source}: $.start"),
        duration_months=data["duration_months"], postponement=bool(data.get("postponement")),
        grant_total_eur=total, grant_payments=data["grant"]["payments"],
        grant_paid_by=data["grant"].get("paid_by", ""),
        rules=tuple(rules), rubric=rubric, modules=modules, source=data,
    )


def load_call(path: str | Path) -> Call:
    """Read and validate a call file (YAML or JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the call ({exc})") from None
    return parse_call_text(text, str(p))


def parse_call_text(text: str, source: str = "call") -> Call:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{source}: not valid YAML{where}: {problem}") from None
    return parse_call(data, source)


def bundled_ids() -> list[str]:
    folder = resources.files("oncohybrid.fellowship").joinpath("calls")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=8)
def bundled_call(call_id: str = DEFAULT_CALL) -> Call:
    """A call shipped with the package."""
    if call_id not in bundled_ids():
        raise InputError(f"--call: no bundled call {call_id!r} (bundled: "
                         f"{', '.join(bundled_ids())})")
    text = resources.files("oncohybrid.fellowship").joinpath("calls", f"{call_id}.yaml")
    return parse_call_text(text.read_text(encoding="utf-8"), f"calls/{call_id}.yaml")
