"""Public types of the SUV computation: normalisations, units, overrides, the result
and its JSON schema (PS3.3 C.8.9.1, C.8.9.2; ``oncohybrid suv --json``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from oncohybrid.dicom.suv.headers import _iso
from oncohybrid.errors import InputError, SUVError, SUVHeaderError

PLAUSIBILITY_CHECKS = frozenset({
    "weight", "height", "dose", "half-life", "uptake", "injection-day", "rescale-slope",
    "series-consistency",
})


class Normalisation(StrEnum):
    """SUV normalisation; values are the (0054,1006) *SUV Type* codes (PS3.3 C.8.9.1.1.3)."""

    BW = "BW"
    LBM_JANMA = "LBMJANMA"  # SUL, Janmahasatian 2005: default for PERCIST
    LBM_JAMES128 = "LBMJAMES128"  # James 1976
    LBM_JAMES120 = "LBM"  # "Morgan"/calculate-suv James variant; only by explicit name
    BSA = "BSA"  # Du Bois, cm²
    IBW = "IBW"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def ucum_unit(self) -> str:
        """UCUM unit of the SUV (Slicer RWVM convention)."""
        return "{SUVbsa}cm2/ml" if self is Normalisation.BSA else "{" + _UCUM[self] + "}g/ml"


_LABELS = {
    Normalisation.BW: "SUVbw",
    Normalisation.LBM_JANMA: "SUL (Janmahasatian)",
    Normalisation.LBM_JAMES128: "SUVlbm (James 128)",
    Normalisation.LBM_JAMES120: "SUVlbm (James 120, Morgan)",
    Normalisation.BSA: "SUVbsa",
    Normalisation.IBW: "SUVibw",
}
_UCUM = {
    Normalisation.BW: "SUVbw",
    Normalisation.LBM_JANMA: "SUVlbm",
    Normalisation.LBM_JAMES128: "SUVlbm",
    Normalisation.LBM_JAMES120: "SUVlbm",
    Normalisation.IBW: "SUVibw",
}


class Units(StrEnum):
    """(0054,1001) *Units* values that can be converted to SUV (PS3.3 C.8.9.1.1.3)."""

    BQML = "BQML"
    CNTS = "CNTS"
    GML = "GML"
    CM2ML = "CM2ML"
    CPS = "CPS"


class DecayCorrection(StrEnum):
    """(0054,1102) *Decay Correction* (PS3.3 C.8.9.1.1.6)."""

    START = "START"
    ADMIN = "ADMIN"
    NONE = "NONE"



@dataclass(frozen=True)
class SUVOverrides:
    """User-supplied values that replace header values; each is recorded as an override.

    ``injection_time`` may be a full datetime or a time of day (then treated like a TM-only
    (0018,1072), midnight rule included). ``unknown_sex`` decides LBM/IBW for sex O/empty:
    ``"mean"`` of the male and female formulas (IBSI, MIRP) or ``"omit"`` (refuse them).
    """

    dose_bq: float | None = None
    injection_time: datetime | time | None = None
    reference_time: datetime | None = None
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    half_life_s: float | None = None
    unknown_sex: str = "mean"
    time_tolerance_s: float = 2.0
    allow_implausible: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("dose_bq", "weight_kg", "height_m", "half_life_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise SUVHeaderError(f"override {name} must be a positive number, got {v!r}")
        if self.sex is not None and self.sex.upper() not in ("M", "F", "O"):
            raise SUVHeaderError(f"override sex must be M, F or O, got {self.sex!r}")
        if self.unknown_sex not in ("mean", "omit"):
            raise SUVHeaderError(
                f"unknown_sex must be 'mean' or 'omit', got {self.unknown_sex!r}")
        object.__setattr__(self, "allow_implausible", frozenset(self.allow_implausible))
        unknown = self.allow_implausible - PLAUSIBILITY_CHECKS - {"all"}
        if unknown:
            raise InputError(
                f"--allow-implausible {', '.join(sorted(unknown))}: not a plausibility check; "
                f"known: all, {', '.join(sorted(PLAUSIBILITY_CHECKS))}")

    def allows(self, check: str) -> bool:
        """True when the user allowed values outside the plausible range of ``check``."""
        return check in self.allow_implausible or "all" in self.allow_implausible

    def given(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("dose_bq", "injection_time", "reference_time", "weight_kg", "height_m",
                     "sex", "half_life_s"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v.isoformat() if isinstance(v, datetime | time) else v
        if self.allow_implausible:
            out["allow_implausible"] = sorted(self.allow_implausible)
        return out


@dataclass(frozen=True)
class SUVScaling:
    """SUV factors of one PET series with everything they were computed from.

    ``factors`` maps each computable normalisation to the factor that multiplies the
    rescaled pixel value. When factors differ between slices/frames (Decay Correction
    NONE, per-slice Philips factors) ``per_slice`` maps (0008,0018) *SOP Instance UID*
    (or the 0-based frame index as a string for one multi-frame object) to per-slice
    factors and ``factors`` holds those of the earliest-acquired slice.
    """

    units: Units
    decay_correction: DecayCorrection
    reference_time: datetime | None
    reference_time_source: str
    injected_dose_bq: float | None
    dose_at_reference_bq: float | None
    half_life_s: float | None
    weight_kg: float | None
    height_m: float | None
    sex: str
    factors: dict[Normalisation, float]
    per_slice: dict[str, dict[Normalisation, float]] | None
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def factor(self, norm: Normalisation = Normalisation.BW,
               sop_instance_uid: str | None = None) -> float:
        """Factor for ``norm`` (and one slice/frame); raises :class:`SUVError` with the reason
        when that normalisation is unavailable (no height, James collapse, ...)."""
        norm = Normalisation(norm)
        if norm not in self.factors:
            reason = self.provenance.get("normalisations", {}).get(norm.value, {}).get(
                "reason", "not computed")
            raise SUVError(f"{norm.label} is not available for this series: {reason}")
        if sop_instance_uid is None:
            if self.per_slice is not None:
                raise SUVError(
                    f"{norm.label} factors differ per slice/frame "
                    f"({self.provenance.get('per_slice_reason', '')}); pass sop_instance_uid"
                )
            return self.factors[norm]
        if self.per_slice is None:
            return self.factors[norm]
        try:
            return self.per_slice[str(sop_instance_uid)][norm]
        except KeyError:
            raise SUVError(
                f"no slice/frame {sop_instance_uid!r} in this series' SUV factors"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The ``oncohybrid suv --json`` document (schema :data:`SUV_JSON_SCHEMA`), without
        ``suvbw_max`` which needs pixels."""

        def f(norm: Normalisation) -> float | None:
            return self.factors.get(norm)

        per_slice = None
        if self.per_slice is not None:
            per_slice = [
                {"key": key, **{n.value: v for n, v in fs.items()}}
                for key, fs in self.per_slice.items()
            ]
        return {
            "units": self.units.value,
            "decay_correction": self.decay_correction.value,
            "reference_time": _iso(self.reference_time),
            "reference_time_source": self.reference_time_source,
            "injected_dose_bq": self.injected_dose_bq,
            "dose_at_reference_bq": self.dose_at_reference_bq,
            "half_life_s": self.half_life_s,
            "weight_kg": self.weight_kg,
            "height_m": self.height_m,
            "sex": self.sex,
            "suvbw_factor": f(Normalisation.BW),
            "sul_factor": f(Normalisation.LBM_JANMA),
            "suvbsa_factor": f(Normalisation.BSA),
            "suvibw_factor": f(Normalisation.IBW),
            "factors": {n.value: v for n, v in self.factors.items()},
            "per_slice": per_slice,
            "warnings": list(self.warnings),
            "provenance": self.provenance,
        }


_NUM_OR_NULL = {"type": ["number", "null"]}
SUV_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "oncohybrid suv --json",
    "type": "object",
    "required": [
        "units", "decay_correction", "reference_time", "reference_time_source",
        "injected_dose_bq", "dose_at_reference_bq", "suvbw_factor", "sul_factor",
        "suvbsa_factor", "suvibw_factor", "per_slice", "warnings", "provenance",
    ],
    "properties": {
        "units": {"enum": [u.value for u in Units]},
        "decay_correction": {"enum": [d.value for d in DecayCorrection]},
        "reference_time": {"type": ["string", "null"]},
        "reference_time_source": {"type": "string"},
        "injected_dose_bq": _NUM_OR_NULL,
        "dose_at_reference_bq": _NUM_OR_NULL,
        "half_life_s": _NUM_OR_NULL,
        "weight_kg": _NUM_OR_NULL,
        "height_m": _NUM_OR_NULL,
        "sex": {"enum": ["M", "F", "O"]},
        "suvbw_factor": _NUM_OR_NULL,
        "sul_factor": _NUM_OR_NULL,
        "suvbsa_factor": _NUM_OR_NULL,
        "suvibw_factor": _NUM_OR_NULL,
        "suvbw_max": _NUM_OR_NULL,
        "factors": {
            "type": "object",
            "propertyNames": {"enum": [n.value for n in Normalisation]},
            "additionalProperties": {"type": "number"},
        },
        "per_slice": {
            "type": ["array", "null"],
            "items": {"type": "object", "required": ["key"],
                      "properties": {"key": {"type": "string"}}},
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "provenance": {"type": "object"},
        "volume_problem": {"type": ["string", "null"]},
        "volume_notes": {"type": "array", "items": {"type": "string"}},
    },
}

