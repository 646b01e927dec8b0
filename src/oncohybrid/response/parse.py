"""Read a response case (JSON) into the engine's model, or say exactly what is wrong.

The contract is ``case.schema.json`` (documented in ``docs/response-case.md``). Numbers
are read with ``parse_float=Decimal`` so that 49.8 stays 49.8 and thresholds are decided
exactly (criteria.md §1.2). Every problem becomes an :class:`~oncohybrid.errors.InputError`
whose message starts with the JSON path in bracket form, e.g.
``timepoints[2].lesions[0].ld_mm: negative length -3``.

Hostile input (issue #12 item 6) is refused here, before any criterion runs, with the path
of the offending value: NaN and Infinity (not JSON numbers, RFC 8259 §6, though Python's
``json`` reads them), magnitudes outside ±1e9 or non-zero ones below 1e-9, more than 28
significant digits (the decimal context's precision, beyond which "exact" is a lie),
nesting deeper than 64 levels, lone UTF-16 surrogates (not Unicode scalar values, so
they cannot be printed as UTF-8), and dates outside 1900–2199.

Example::

    >>> case = load_case('{"criteria": "recist1.1", "timepoints": [{"date": "2024-01-05",'
    ...     ' "lesions": [{"id": "L1", "role": "target", "ld_mm": 32}]}]}')
    >>> case.baseline.lesions["L1"].ld_mm
    Decimal('32')
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from oncohybrid.errors import InputError
from oncohybrid.response.model import Case, LesionObs, Role, Special, State, Timepoint
from oncohybrid.response.registry import CRITERIA

__all__ = ["load_case", "json_path", "schema", "MAX_ABS", "MIN_ABS", "MAX_DEPTH"]

#: Largest magnitude of any number in a case: a 1 km lesion, SUV 10^9 and 10^9 days are
#: all far beyond the real range, and keeping products and percent changes below ~1e20
#: keeps every quantize/round inside the 28-digit decimal context (no InvalidOperation).
MAX_ABS = Decimal("1e9")
#: Smallest non-zero magnitude: dividing by 1e-400 would overflow the same context.
MIN_ABS = Decimal("1e-9")
#: Significant digits a number may carry: the default decimal context's precision.
MAX_DIGITS = 28
#: Deepest nesting of objects and lists; a real case needs 5 (case → timepoints →
#: timepoint → lesions → lesion) plus what an option or extra field holds.
MAX_DEPTH = 64
#: Dates a case may carry (the engine adds windows of up to 3650 days to them).
MIN_YEAR, MAX_YEAR = 1900, 2199

_SURROGATE = re.compile("[\ud800-\udfff]")
# One JSON string (escapes included) or one structural character; used to measure
# nesting before json.loads recurses into it (RecursionError at ~1000 levels).
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')

MEASURE_FIELDS = (
    "ld_mm",
    "sa_mm",
    "ldi_mm",
    "sdi_mm",
    "viable_ld_mm",
    "hu_mean",
    "sul_peak",
    "suv_max",
)
_LESION_SCALARS = (
    "split_from",
    "merged_into",
    "cytology",
    "hcc_typical",
    "intratumoral_nodule",
    "pet_positive",
    "ct_correlate",
)
_LESION_KNOWN = {"id", "role", "site", "nodal", "deauville", "state", *MEASURE_FIELDS}
_LESION_KNOWN.update(_LESION_SCALARS)
_TP_BOOLS = (
    "new_lesions",
    "arterial_phase",
    "portal_venous_phase",
    "markers_normal",
    "pet_done",
    "clinical_trigger",
)
_TP_KNOWN = {
    "date",
    "lesions",
    "references",
    "ttv_ml",
    "spleen_length_mm",
    "marrow",
    "cycles",
    "assessed",
    "modality",
    "slice_thickness_mm",
    "new_therapy",
    *_TP_BOOLS,
}
_CASE_KNOWN = {"criteria", "patient_id", "treatment_start", "options", "timepoints"}


def _is_number(_checker: Any, value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# JSON numbers arrive as Decimal; teach jsonschema that a Decimal is a "number".
_Validator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_number),
)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The case JSON Schema shipped with the package (``response/case.schema.json``)."""
    text = resources.files("oncohybrid.response").joinpath("case.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=4)
def _declared(kind: str) -> frozenset[str]:
    """Fields the schema declares for a ``lesion`` or ``timepoint``: not "unknown", even
    when only one criterion reads them (they travel in ``extra``)."""
    return frozenset(schema()["$defs"][kind]["properties"])


@lru_cache(maxsize=1)
def _validator() -> Any:
    return _Validator(schema())


def json_path(parts: Any) -> str:
    """``["timepoints", 2, "lesions", 0, "ld_mm"]`` → ``timepoints[2].lesions[0].ld_mm``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(case)"


def _show(value: Any) -> str:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value, default=str)


_TYPE_WORDS = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}


def _schema_message(err: jsonschema.ValidationError) -> tuple[str, str]:
    """Turn one jsonschema error into (path, physician-readable problem)."""
    path = list(err.absolute_path)
    sch = err.schema if isinstance(err.schema, dict) else {}
    v = err.validator
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return json_path(path), f"missing required field {missing!r}"
    if v == "minimum" or v == "exclusiveMinimum":
        if sch.get("x-kind") == "length":
            return json_path(path), f"negative length {_show(err.instance)}"
        if "x-error" in sch:
            return json_path(path), f"{sch['x-error']}, got {_show(err.instance)}"
        limit = err.validator_value
        if v == "minimum" and limit == 0:
            return json_path(path), f"negative value {_show(err.instance)}"
        word = "≥" if v == "minimum" else ">"
        return json_path(path), f"must be {word} {limit}, got {_show(err.instance)}"
    if v == "maximum" and "x-error" not in sch:
        return json_path(path), f"must be ≤ {err.validator_value}, got {_show(err.instance)}"
    if "x-error" in sch and v in ("enum", "const", "pattern", "maximum", "minimum", "type"):
        return json_path(path), f"{sch['x-error']}, got {_show(err.instance)}"
    if v == "minItems" and "x-error-minItems" in sch:
        return json_path(path), sch["x-error-minItems"]
    if v == "type" and sch.get("x-kind") in ("length", "value"):
        return json_path(path), (
            'expected a number or one of "too_small", "absent", "not_evaluable", '
            f"got {_show(err.instance)}"
        )
    if v == "type":
        want = err.validator_value
        wants = [want] if isinstance(want, str) else list(want)
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wants)
        return json_path(path), f"expected {words}, got {_show(err.instance)}"
    if v == "enum":
        allowed = ", ".join(json.dumps(a) for a in err.validator_value)
        return json_path(path), f"expected one of {allowed}, got {_show(err.instance)}"
    if v == "minLength":
        return json_path(path), "must not be empty"
    return json_path(path), err.message


def _sort_key(err: jsonschema.ValidationError) -> tuple[Any, ...]:
    # Report the first problem in document order; among errors at one place the
    # deepest (most specific) wins.
    key = [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in err.absolute_path]
    return (key, -len(list(err.absolute_schema_path)))


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, naming the path to the deep value.

    A linear scan over strings and brackets, so 100k-deep nesting costs milliseconds and
    no recursion; malformed text is left to ``json.loads`` to report.
    """
    depth = 0
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    # Each frame: [is_object, key or index, expecting a key]
    frames: list[list[Any]] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c == "{" or c == "[":
            if depth >= MAX_DEPTH:
                parts = [f[1] for f in frames]
                raise InputError(
                    f"{json_path(parts)}: nested deeper than {MAX_DEPTH} levels"
                )
            frames.append([c == "{", 0 if c == "[" else None, c == "{"])
            depth += 1
        elif c == "}" or c == "]":
            if frames:
                frames.pop()
                depth -= 1
        elif c == ",":
            if frames:
                top = frames[-1]
                if top[0]:
                    top[2] = True
                elif isinstance(top[1], int):
                    top[1] += 1
        elif c == '"' and frames and frames[-1][0] and frames[-1][2]:
            try:
                frames[-1][1] = json.loads(tok)
            except ValueError:
                frames[-1][1] = "?"
            frames[-1][2] = False


def _parse_int(text: str) -> int | Decimal:
    # int() refuses more than 4300 digits (CVE-2020-10735 guard) with a ValueError that
    # carries no position; a Decimal keeps the value so the value check can name its path.
    return int(text) if len(text) <= 30 else Decimal(text)


def _problem(value: Any) -> str | None:
    """Why one scalar of a case is refused, or None."""
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad:
            return (
                f"not valid Unicode text: lone surrogate {ascii(bad.group())[1:-1]} "
                f"at character {bad.start() + 1}"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_ABS:
            # str() of an int over 4300 digits raises; say its size instead.
            shown = str(value) if value.bit_length() < 100 else (
                f"with about {int(value.bit_length() * 0.30103) + 1} digits"
            )
            return f"number {shown} is out of range (limit ±1E+9)"
        dec = Decimal(value)
    else:
        dec = value if isinstance(value, Decimal) else Decimal(repr(value))
        if not dec.is_finite():
            return f"not a finite number ({value}); NaN and Infinity are not JSON numbers"
    if dec == 0:
        return None
    shown = _short(dec)
    if abs(dec) > MAX_ABS:
        return f"number {shown} is out of range (limit ±1E+9)"
    if abs(dec) < MIN_ABS:
        return f"number {shown} is too close to zero (non-zero values must be at least 1E-9)"
    if len(dec.normalize().as_tuple().digits) > MAX_DIGITS:
        return f"number {shown} has more than {MAX_DIGITS} significant digits"
    return None


def _short(dec: Decimal) -> str:
    text = str(dec)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _check_values(raw: Any) -> None:
    """Walk the parsed case in document order (iteratively: no recursion limit) and refuse
    the first hostile value, naming its JSON path (see the module docstring)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise InputError(f"{json_path(path)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            children = []
            for key, value in node.items():
                if not isinstance(key, str):
                    raise InputError(f"{json_path(path)}: field name {key!r} is not a string")
                bad = _problem(key)
                if bad:
                    raise InputError(f"{json_path(path)}: field name {ascii(key)} is {bad}")
                children.append((value, (*path, key)))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend(reversed([(v, (*path, i)) for i, v in enumerate(node)]))
        else:
            bad = _problem(node)
            if bad:
                raise InputError(f"{json_path(path)}: {bad}")


def _read_json(data: str | Path) -> Any:
    if isinstance(data, Path) or not data.lstrip().startswith(("{", "[")):
        path = Path(data)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{name}: no such case file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: cannot read case file ({exc})") from None
    else:
        name, text = "case JSON", data
    _check_depth(text)
    try:
        # NaN/Infinity become Decimals so that _check_values names their path.
        return json.loads(
            text, parse_float=Decimal, parse_int=_parse_int, parse_constant=Decimal
        )
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _exact(value: Any) -> Any:
    """Python floats (dict input) → Decimal via their shortest repr (49.8 → Decimal('49.8'))."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def _measure(value: Any) -> Decimal | Special | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Special(value)
    return value if isinstance(value, Decimal) else Decimal(value)


def _date(value: str, where: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{where}: bad date {value!r}: {exc}") from None
    if not MIN_YEAR <= date.year <= MAX_YEAR:
        # 9999-12-31 plus a 42-day window overflows datetime.date (OverflowError).
        raise InputError(
            f"{where}: implausible date {value}: expected a year from {MIN_YEAR} to {MAX_YEAR}"
        )
    return date


def load_case(data: dict | str | Path, *, criteria: str | None = None) -> Case:
    """Parse and validate one case; ``criteria`` (the CLI's ``--criteria``) overrides the file.

    ``data`` is a dict (already parsed JSON), JSON text, or a path to a JSON file.
    Raises :class:`InputError` (exit code 2) naming the JSON path and the problem.
    Role, site and nodal status are carried forward from a lesion's first appearance
    (split fragments inherit them from the lesion they split from).
    """
    if isinstance(data, str | Path):
        raw = _read_json(data)
        _check_values(raw)
    else:
        _check_values(data)
        raw = _exact(data)
    if not isinstance(raw, dict):
        raise InputError(f"(case): expected a JSON object, got {_show(raw)}")
    errors = list(_validator().iter_errors(raw))
    if errors:
        where, problem = _schema_message(min(errors, key=_sort_key))
        raise InputError(f"{where}: {problem}")

    warnings: list[str] = []
    name = criteria if criteria is not None else raw.get("criteria")
    if name is None:
        raise InputError("criteria: missing; give it in the case file or with --criteria")
    key = name.strip().lower()
    if key not in CRITERIA:
        raise InputError(
            f"criteria: unknown criteria {name!r}; expected one of {', '.join(CRITERIA)}"
        )
    for extra_key in sorted(set(raw) - _CASE_KNOWN):
        warnings.append(f"{extra_key}: unknown field ignored")

    treatment_start = (
        _date(raw["treatment_start"], "treatment_start") if "treatment_start" in raw else None
    )
    known: dict[str, tuple[Role, str | None, bool]] = {}  # id → role, site, nodal
    timepoints: list[Timepoint] = []
    prev_date: dt.date | None = None
    for ti, tp_raw in enumerate(raw["timepoints"]):
        tpath = f"timepoints[{ti}]"
        date = _date(tp_raw["date"], f"{tpath}.date")
        if prev_date is not None and date <= prev_date:
            raise InputError(
                f"{tpath}.date: dates out of order: {date} is not after "
                f"timepoints[{ti - 1}].date {prev_date}"
            )
        if ti == 0 and treatment_start is not None and date > treatment_start:
            raise InputError(
                f"{tpath}.date: missing baseline: the first timepoint {date} is after "
                f"treatment_start {treatment_start}"
            )
        prev_date = date
        lesions: dict[str, LesionObs] = {}
        pending: list[tuple[int, dict[str, Any]]] = []
        for li, les in enumerate(tp_raw.get("lesions", [])):
            lpath = f"{tpath}.lesions[{li}]"
            lid = les["id"]
            if lid in lesions or any(p[1]["id"] == lid for p in pending):
                raise InputError(f"{lpath}.id: duplicate lesion id {lid!r} in this timepoint")
            pending.append((li, les))
            lesions[lid] = None  # type: ignore[assignment]  # placeholder keeps order
        for li, les in pending:
            lpath = f"{tpath}.lesions[{li}]"
            lid = les["id"]
            role_s = les.get("role")
            parent = les.get("split_from")
            for link in ("split_from", "merged_into"):
                ref = les.get(link)
                if ref is not None and ref not in known and ref not in lesions:
                    raise InputError(f"{lpath}.{link}: unknown lesion id {ref!r}")
                if ref == lid:
                    raise InputError(f"{lpath}.{link}: a lesion cannot refer to itself")
            if lid in known:
                role, site, nodal = known[lid]
                if role_s is not None and Role(role_s) != role:
                    raise InputError(
                        f"{lpath}.role: lesion {lid!r} was {role.value!r} at its first "
                        f"appearance and cannot become {role_s!r}"
                    )
            elif role_s is not None:
                role, site, nodal = Role(role_s), None, False
            elif parent is not None and parent in known:
                role, site, nodal = known[parent]
            else:
                raise InputError(
                    f"{lpath}.id: unknown lesion id {lid!r}: not seen at an earlier "
                    "timepoint and no role given"
                )
            site = les.get("site", site)
            nodal = les.get("nodal", nodal)
            if lid not in known:
                known[lid] = (role, site, nodal)
            dv = les.get("deauville")
            extra = {k: v for k, v in les.items() if k not in _LESION_KNOWN}
            for k in sorted(set(extra) - _declared("lesion")):
                warnings.append(f"{lpath}.{k}: unknown field ignored")
            lesions[lid] = LesionObs(
                id=lid,
                role=role,
                site=site,
                nodal=bool(nodal),
                ld_mm=_measure(les.get("ld_mm")),
                sa_mm=_measure(les.get("sa_mm")),
                ldi_mm=_measure(les.get("ldi_mm")),
                sdi_mm=_measure(les.get("sdi_mm")),
                viable_ld_mm=_measure(les.get("viable_ld_mm")),
                hu_mean=_measure(les.get("hu_mean")),
                sul_peak=_measure(les.get("sul_peak")),
                suv_max=_measure(les.get("suv_max")),
                deauville=dv,
                state=State(les["state"]) if "state" in les else None,
                extra=extra,
                **{k: les.get(k) for k in _LESION_SCALARS},
            )
        extra_tp = {k: v for k, v in tp_raw.items() if k not in _TP_KNOWN}
        for k in sorted(set(extra_tp) - _declared("timepoint")):
            warnings.append(f"{tpath}.{k}: unknown field ignored")
        refs = {k: Decimal(v) for k, v in tp_raw.get("references", {}).items()}
        timepoints.append(
            Timepoint(
                index=ti,
                date=date,
                lesions=lesions,
                references=refs,
                ttv_ml=_opt_dec(tp_raw.get("ttv_ml")),
                spleen_length_mm=_opt_dec(tp_raw.get("spleen_length_mm")),
                marrow=tp_raw.get("marrow"),
                cycles=tp_raw.get("cycles"),
                extra=extra_tp,
                assessed=tp_raw.get("assessed", True),
                modality=tp_raw.get("modality"),
                slice_thickness_mm=_opt_dec(tp_raw.get("slice_thickness_mm")),
                new_therapy=tp_raw.get("new_therapy", False),
                **{k: tp_raw.get(k) for k in _TP_BOOLS},
            )
        )
    return Case(
        criteria=key,
        timepoints=timepoints,
        options=dict(raw.get("options", {})),
        treatment_start=treatment_start,
        patient_id=raw.get("patient_id"),
        warnings=warnings,
    )


def _opt_dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(value)
