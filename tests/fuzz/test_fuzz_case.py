"""Fuzzing the response case parser and every criterion (issue #12, acceptance "Fuzzing").

Hypothesis builds case files that are mostly well-formed (so they reach the criteria, where
the crashes hide) with hostile values mixed in: extreme or non-finite numbers, wrong types,
unknown options, lone surrogates, odd dates. Each case goes through ``load_case`` and
``assess_case`` under every criterion. The only allowed outcomes:

* an :class:`~oncohybrid.errors.InputError` (the CLI's exit-2 path) whose message starts
  with a JSON path or the case file's name, or
* an assessment whose ``to_json()`` is standard JSON (``allow_nan=False``) and survives a
  ``json.loads`` round trip.

The CI budget is fixed and derandomized (same examples every run, < 60 s in all on the
project's 2-core CI). A longer run: ``ONCOHYBRID_FUZZ_EXAMPLES=20000 pytest tests/fuzz/
test_fuzz_case.py`` (randomized unless ``ONCOHYBRID_FUZZ_DERANDOMIZE=1``); see docs/fuzzing.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncohybrid.errors import InputError
from oncohybrid.response import CRITERIA, assess_case, load_case

EXAMPLES = int(os.environ.get("ONCOHYBRID_FUZZ_EXAMPLES", "150"))
DERANDOMIZE = os.environ.get("ONCOHYBRID_FUZZ_DERANDOMIZE", "1" if EXAMPLES <= 1000 else "0")
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE == "1",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A refusal names where: a JSON path ("timepoints[1].lesions[0].ld_mm", "options",
# "criteria", "(case)") or the file ("case JSON: invalid JSON at line …").
PATH_PREFIX = re.compile(r"^(\(case\)|case JSON|[A-Za-z_][\w\-]*(\[\d+\])*(\.[^\s:]+)*)[:\s]")

# --- values -------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1e400"),
    Decimal("1e-400"), Decimal("-0"), 10**40, -(10**9) - 1, Decimal("1e9"), Decimal("1e-9"),
    Decimal("0.1234567890123456789012345678901"), 0, -1, 2**31, float("nan"),
]
plain_number = st.one_of(
    st.integers(min_value=0, max_value=400),
    st.decimals(min_value=0, max_value=400, places=2, allow_nan=False, allow_infinity=False),
)
# One hostile number in ~40 keeps most hostile cases past the first refusal.
number = st.one_of(*[plain_number] * 39, st.sampled_from(HOSTILE_NUMBERS))
measure = st.one_of(
    st.none(), number, number, number, st.sampled_from(["too_small", "absent", "not_evaluable"])
)
plain_measure = st.one_of(
    st.none(), plain_number, plain_number, plain_number,
    st.sampled_from(["too_small", "absent", "not_evaluable"]),
)
text = st.one_of(
    st.sampled_from(["liver", "lung", "lymph node", "bone", "spleen", "", "\ud800", "x" * 300]),
    st.text(max_size=8),
)
plain_text = st.sampled_from(["liver", "lung", "lymph node", "bone", "spleen", "mediastinum"])
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), number, text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)

OPTION_VALUES: dict[str, Any] = {
    "confirmation": st.booleans(),
    "confirm_days": st.integers(-1, 4000),
    "min_sd_days": st.integers(-1, 4000),
    "max_nr_ne": st.integers(0, 3),
    "accept_sd": st.booleans(),
    "missing_as_ne": st.booleans(),
    "sticky_pr": st.booleans(),
    "cr_then_pr": st.sampled_from(["query", "pd", "pr", "ne", "x"]),
    "strict_baseline": st.booleans(),
    "too_small_mm": number,
    "choi_reference": st.sampled_from(["baseline", "nadir"]),
    "choi_variant": st.sampled_from(["choi", "mchoi"]),
    "irecist_min_confirm_days": st.integers(0, 4000),
    "irecist_max_confirm_days": st.integers(0, 4000),
    "porta_hepatis_node_mm": number,
    "percist_measure": st.sampled_from(["hottest", "sum5", "x"]),
    "percist_pmd_reference": st.sampled_from(["baseline", "nadir"]),
    "percist_liver_gate": st.sampled_from(["both", "either"]),
    "percist_unlisted_lesions": st.sampled_from(["ne", "warn", "ignore"]),
    "percist_liver_max_change_pct": number,
    "percist_liver_max_change_sul": st.one_of(number, st.just("0.3"), st.just("x")),
    "percist_uptake_tolerance_min": number,
    "eortc_aggregate": st.sampled_from(["sum", "hottest", "x"]),
    "eortc_metric": st.sampled_from(["auto", "suv_max", "sul_peak", "suv_mean", "x"]),
    "krenning_liver_tolerance_pct": number,
    "krenning_prrt_cutoff": st.one_of(st.integers(-1, 6), text),
    "lugano_uptake_change_pct": number,
    "lugano_score3_positive": st.booleans(),
    "lugano_increment_basis": st.sampled_from(["nadir", "current"]),
    "deauville_score5_liver_multiple": st.one_of(number, text),
}
options = st.dictionaries(
    st.sampled_from(sorted(OPTION_VALUES)), st.none(), max_size=5
).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.one_of(OPTION_VALUES[k], OPTION_VALUES[k], OPTION_VALUES[k], junk) for k in keys}
    )
)

plain_options = st.dictionaries(
    st.sampled_from(sorted(OPTION_VALUES)), st.none(), max_size=4
).flatmap(lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys}))

REFERENCE_KEYS = [
    "liver_sul_mean", "liver_sul_sd", "blood_pool_sul_mean", "blood_pool_sul_sd",
    "mediastinum_suv_max", "liver_suv_max", "spleen_suv_max", "kidney_suv_max",
]
LESION_IDS = ["L1", "L2", "L3", "N1", "N2", "B1", "X1", "X2"]


@st.composite
def lesion(draw: st.DrawFn, lid: str, role: str | None, hostile: bool) -> dict[str, Any]:
    num = number if hostile else plain_number
    out: dict[str, Any] = {"id": lid}
    if role is not None:
        out["role"] = role
    for field in ("ld_mm", "sa_mm", "ldi_mm", "sdi_mm", "viable_ld_mm", "sul_peak", "suv_max"):
        if draw(st.integers(0, 2)):
            value = draw(measure if hostile else plain_measure)
            if value is not None:
                out[field] = value
    optional = {
        "nodal": st.booleans(),
        "site": text if hostile else plain_text,
        "hu_mean": st.one_of(st.integers(-1000, 3000), num, st.just("not_evaluable")),
        "deauville": st.one_of(st.integers(0 if hostile else 1, 6 if hostile else 5), st.just("X")),
        "state": st.sampled_from(
            ["present", "absent", "increased", "unequivocal_progression", "equivocal",
             "unequivocal", "not_evaluable"]
        ),
        "cytology": st.sampled_from(["positive", "negative"]),
        "hcc_typical": st.booleans(),
        "intratumoral_nodule": st.booleans(),
        "pet_positive": st.booleans(),
        "ct_correlate": st.booleans(),
        "tlg": num,
        "typical_of_tumour": st.booleans(),
        "pattern": st.sampled_from(["infection", "tumour"]),
        "uptake_change": st.sampled_from(["increased", "decreased", "unchanged", "x"]),
        "physiological_background": st.booleans(),
        "krenning": st.integers(0, 4),
        "suv_mean": num,
    }
    if hostile:
        optional["weird"] = junk
        optional["split_from"] = st.sampled_from(LESION_IDS)
        optional["merged_into"] = st.sampled_from(LESION_IDS)
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        out[key] = draw(optional[key])
    if role == "target" and not hostile and draw(st.integers(0, 5)):
        # Mostly a measurable baseline target, so the RECIST family gets past its baseline.
        out["sa_mm" if out.get("nodal") else "ld_mm"] = draw(st.integers(10, 150))
    return out


@st.composite
def case(draw: st.DrawFn, hostile: bool | None = None) -> dict[str, Any]:
    """One case; ``hostile`` (drawn when None) mixes in extreme values, junk and bad dates."""
    if hostile is None:
        hostile = draw(st.integers(0, 3)) == 0
    num = number if hostile else plain_number
    criteria = draw(st.sampled_from(sorted(CRITERIA)))
    start = dt.date(2024, 1, 5)
    n = draw(st.integers(1, 4))
    timepoints = []
    seen: list[str] = []
    day = 0
    for i in range(n):
        if i:
            gaps = [0, 1, 27, 28, 42, 56, 60, 90] if hostile else [1, 27, 28, 42, 56, 60, 90]
            day += draw(st.sampled_from(gaps))
        tp: dict[str, Any] = {"date": (start + dt.timedelta(days=day)).isoformat()}
        lesions = []
        ids = draw(st.lists(st.sampled_from(LESION_IDS), min_size=0 if hostile or i else 1,
                            max_size=5, unique=not hostile))
        for lid in ids:
            if lid in seen and not (hostile and draw(st.booleans())):
                role = None
            elif i == 0:
                role = draw(st.sampled_from(["target", "target", "non-target"]))
            else:
                role = draw(st.sampled_from(["new", "new", "target", "non-target"]))
            seen.append(lid)
            lesions.append(draw(lesion(lid, role, hostile)))
        tp["lesions"] = lesions
        if draw(st.integers(0, 3)):
            tp["references"] = draw(
                st.dictionaries(st.sampled_from(REFERENCE_KEYS), num, max_size=6)
            )
        visit = {
            "ttv_ml": num,
            "spleen_length_mm": num,
            "new_lesions": st.booleans(),
            "assessed": st.booleans(),
            "modality": st.sampled_from(["CT", "MR", "PET"]),
            "slice_thickness_mm": num,
            "markers_normal": st.booleans(),
            "arterial_phase": st.booleans(),
            "portal_venous_phase": st.booleans(),
            "pet_done": st.booleans(),
            "clinical_trigger": st.booleans(),
            "new_therapy": st.booleans(),
            "marrow": st.sampled_from(["normal", "involved", "new", "x"]),
            "cycles": st.integers(0, 12),
            "phase": st.sampled_from(["interim", "end_of_treatment", "x"]),
            "uptake_change": st.sampled_from(["increased", "decreased", "x"]),
            "comparable": st.booleans(),
            "liver_abnormal": st.booleans(),
            "pet": st.booleans(),
            "ct": st.booleans(),
            "clinical_deterioration": st.booleans(),
            "uptake_min": num,
            "glucose_mg_dl": num,
            "segmentation": st.sampled_from(["manual", "auto"]),
        }
        if criteria == "recip" and draw(st.integers(0, 4)):
            tp["ttv_ml"] = draw(num)
        for key in draw(st.lists(st.sampled_from(sorted(visit)), max_size=5, unique=True)):
            tp[key] = draw(visit[key])
        timepoints.append(tp)
    out: dict[str, Any] = {"criteria": criteria, "timepoints": timepoints}
    if draw(st.booleans()):
        out["options"] = draw(options if hostile else plain_options)
    if draw(st.booleans()):
        dates = ["2024-01-05", "2024-01-10", "2023-12-01"]
        if hostile:
            dates += ["9999-12-31", "2024-02-30", "1899-12-31"]
        out["treatment_start"] = draw(st.sampled_from(dates))
    if draw(st.integers(0, 9)) == 0:
        out["patient_id"] = draw(text if hostile else plain_text)
    return out


_RAW = re.compile(r'"\\u0000RAW(.*?)RAW\\u0000"')


def _json_text(data: Any) -> str:
    """JSON text as a hostile writer would produce it: Decimals verbatim, NaN allowed."""
    return _RAW.sub(lambda m: m.group(1), json.dumps(_raw_decimals(data), ensure_ascii=True))


def _raw_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}.get(
            str(value), str(value)
        )
        return f"\u0000RAW{text}RAW\u0000"
    if isinstance(value, dict):
        return {k: _raw_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_raw_decimals(v) for v in value]
    return value


def _check(source: Any) -> None:
    try:
        result = assess_case(load_case(source))
    except InputError as exc:
        message = str(exc)
        assert PATH_PREFIX.match(message), message
        assert "Traceback" not in message
        return
    out = result.to_json()
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # printable on a UTF-8 stdout (no lone surrogates)
    assert json.loads(text) == out
    assert out["criteria"] in CRITERIA
    assert len(out["timepoints"]) == len(load_case(source).timepoints)


@FUZZ
@given(case())
def test_fuzz_case_dict_through_every_criterion(data):
    """A dict case (as services.assess passes it), assessed under the criterion it names."""
    _check(data)


@FUZZ
@given(case())
def test_fuzz_case_json_text(data):
    """The same cases written as JSON text (NaN/Infinity tokens and long numbers verbatim)."""
    _check(_json_text(data))


@FUZZ
@given(case(), st.data())
def test_fuzz_case_text_mutations(data, draw):
    """Byte-level damage to a JSON case: cut, duplicated, or a character replaced."""
    text = _json_text(data)
    op = draw.draw(st.integers(0, 2))
    at = draw.draw(st.integers(0, max(len(text) - 1, 0)))
    if op == 0:
        text = text[:at]
    elif op == 1:
        text = text[:at] + text[at:at + 20] + text[at:]
    else:
        text = text[:at] + draw.draw(st.sampled_from(list('{}[],:"0-.eE\\ x'))) + text[at + 1:]
    if not text.lstrip().startswith(("{", "[")):
        text = "{" + text
    _check(text)
