"""Recognise dual-energy CT series from their headers and record which is which.

Vendors export dual-/multi-energy CT as ordinary CT series; what each series holds is
told, in this order of trust, by:

1. the Multi-energy CT modules of PS3.3 (C.8.2.2 "Multi-energy CT Image", C.8.32):
   (0018,9361) *Multi-energy CT Acquisition* ``YES``, (0018,937C) *Monoenergetic Energy
   Equivalent* (keV) of a virtual monoenergetic image, (0018,9381) *Decomposition Material
   Sequence* / (0018,937E) *Decomposition Method* of a material image;
2. (0008,0008) *Image Type* tokens: GE GSI ``MONOCHROMATIC`` (energy in the series
   description, e.g. "70keV"), Philips Spectral ``MONOE``, GE/Philips material density
   (``MATERIAL``, ``IODINE``, ``WATER``, ``GSI MD``), Siemens ``VNC``/``IODINE`` maps, and
   Siemens dual-source tube images carrying ``DUAL``/``DE`` (tube A low kV, tube B high kV);
3. (0018,0060) *KVP* and a tin pre-filter ((0018,7050) *Filter Material* ``TIN``/``SN`` or
   "Sn" before the kV in (0008,103E) *Series Description*, as Siemens labels "Sn150kV").

The result is a :class:`DectSeriesInfo` naming the role, the kV and filter, the keV of a
monoenergetic image, the material of a material image and the ``source`` that decided.
:func:`pair_low_high` checks a low/high pair before a decomposition.

References: PS3.3 2024b C.8.2.2, C.8.32 (Multi-energy CT); McCollough CH et al.,
Radiology 2015;276:637-653 (vendor implementations of dual-energy CT).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from oncohybrid.errors import DicomError

__all__ = [
    "DectError",
    "DectRole",
    "DectSeriesInfo",
    "classify_dect",
    "pair_low_high",
]


class DectError(DicomError):
    """A dual-energy input that cannot be used as given (names the attribute); exit 2."""

    exit_code = 2


class DectRole(enum.StrEnum):
    """What a dual-energy CT series holds."""

    TUBE_SPECTRUM = "tube_spectrum"  # one spectrum's images (low or high kV)
    MIXED = "mixed"  # blended low/high image ("MIX", weighted average)
    MONOENERGETIC = "monoenergetic"  # virtual monoenergetic image (keV)
    MATERIAL_DENSITY = "material_density"  # iodine, water, calcium … density map
    VIRTUAL_NON_CONTRAST = "virtual_non_contrast"
    SINGLE_ENERGY = "single_energy"  # a plain CT series with nothing dual-energy about it


@dataclass(frozen=True)
class DectSeriesInfo:
    """A series' dual-energy role, from the headers of one of its images."""

    role: DectRole
    source: str  # which attribute decided: "multi-energy module", "image type", "kvp" …
    kvp: float | None = None
    tin_filter: bool = False
    energy_kev: float | None = None
    material: str | None = None
    dual_energy: bool = False  # the headers say this came from a dual-energy acquisition
    series_description: str = ""

    @property
    def spectrum_label(self) -> str:
        """``"80kV"``, ``"Sn150kV"``; empty without a kV."""
        if self.kvp is None:
            return ""
        return f"{'Sn' if self.tin_filter else ''}{self.kvp:g}kV"

    def to_json(self) -> dict[str, object]:
        return {"role": self.role.value, "source": self.source, "kvp": self.kvp,
                "tin_filter": self.tin_filter, "energy_kev": self.energy_kev,
                "material": self.material, "dual_energy": self.dual_energy,
                "series_description": self.series_description}


_KEV = re.compile(r"(\d+(?:\.\d+)?)\s*KEV", re.IGNORECASE)
_SN_KV = re.compile(r"(?<![A-Z0-9])SN\s*(\d+(?:\.\d+)?)\s*KV", re.IGNORECASE)
_MATERIALS = ("IODINE", "WATER", "CALCIUM", "URIC", "FAT")


def _tokens(ds: Dataset) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in items]


def _float(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def _kvp(ds: Dataset) -> float | None:
    kvp = _float(ds.get("KVP"))
    if kvp is None:  # enhanced CT: CT X-Ray Details in the shared functional groups
        for seq in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            groups = ds.get(seq)
            if groups:
                details = groups[0].get("CTXRayDetailsSequence")
                if details:
                    kvp = _float(details[0].get("KVP"))
                    if kvp is not None:
                        break
    return kvp if kvp is not None and kvp > 0 else None


def _tin(ds: Dataset, description: str) -> bool:
    material = ds.get("FilterMaterial")
    values = [material] if isinstance(material, str) else list(material or [])
    if any(str(v).strip().upper() in ("TIN", "SN") for v in values):
        return True
    return bool(_SN_KV.search(description))


def _multi_energy_material(ds: Dataset) -> str | None:
    seq = ds.get("DecompositionMaterialSequence")
    if not seq:
        return None
    for item in seq:
        for code in item.get("MaterialCodeSequence", []) or []:
            meaning = str(code.get("CodeMeaning", "")).lower()
            if meaning:
                return meaning.split()[0]
    return "unknown"


def classify_dect(ds: Dataset) -> DectSeriesInfo:
    """The dual-energy role of the series ``ds`` belongs to (one image's header suffices).

    Example:
        >>> from pydicom.dataset import Dataset
        >>> ds = Dataset(); ds.ImageType = ["DERIVED", "PRIMARY", "AXIAL", "MONOE"]
        >>> ds.SeriesDescription = "MonoE 70keV"
        >>> info = classify_dect(ds); info.role.value, info.energy_kev
        ('monoenergetic', 70.0)
    """
    description = str(ds.get("SeriesDescription", "") or "")
    tokens = _tokens(ds)
    joined = " ".join(tokens)
    kvp = _kvp(ds)
    tin = _tin(ds, description)
    me = str(ds.get("MultienergyCTAcquisition", "") or "").upper() == "YES"
    dual = me or any(t in ("DE", "DUAL", "DUAL_ENERGY", "GSI", "SPECTRAL") or "DUAL" in t
                     or t.startswith("CT_GSI") or "SPECTRAL" in t for t in tokens)
    base = dict(kvp=kvp, tin_filter=tin, series_description=description)

    # 1. The standard Multi-energy CT attributes.
    kev = _float(ds.get("MonoenergeticEnergyEquivalent"))
    if kev is not None and kev > 0:
        return DectSeriesInfo(DectRole.MONOENERGETIC, "multi-energy module", energy_kev=kev,
                              dual_energy=True, **base)  # type: ignore[arg-type]
    material = _multi_energy_material(ds)
    if material is not None or ds.get("DecompositionMethod"):
        return DectSeriesInfo(DectRole.MATERIAL_DENSITY, "multi-energy module",
                              material=material or "unknown", dual_energy=True,
                              **base)  # type: ignore[arg-type]

    # 2. Image Type tokens (GE GSI, Philips Spectral, Siemens syngo.via / Siemens tubes).
    if any(t in ("MONOCHROMATIC", "MONOENERGETIC", "MONOE", "VMI") or t.startswith("MONOE")
           for t in tokens):
        m = _KEV.search(description) or _KEV.search(joined)
        return DectSeriesInfo(DectRole.MONOENERGETIC, "image type",
                              energy_kev=float(m.group(1)) if m else None, dual_energy=True,
                              **base)  # type: ignore[arg-type]
    if "VNC" in tokens or "VIRTUAL_NON_CONTRAST" in tokens or "VIRTUAL UNENHANCED" in joined:
        return DectSeriesInfo(DectRole.VIRTUAL_NON_CONTRAST, "image type", material="water",
                              dual_energy=True, **base)  # type: ignore[arg-type]
    material_tokens = [t for t in tokens if "MATERIAL" in t or "GSI MD" in t
                       or "DENSITY" in t or any(t.startswith(m) for m in _MATERIALS)]
    if material_tokens:
        text = " ".join(material_tokens)
        found = next((m.lower() for m in _MATERIALS if m in text), "unknown")
        return DectSeriesInfo(DectRole.MATERIAL_DENSITY, "image type", material=found,
                              dual_energy=True, **base)  # type: ignore[arg-type]
    if "MIX" in tokens or "MIXED" in tokens:
        return DectSeriesInfo(DectRole.MIXED, "image type", dual_energy=True,
                              **base)  # type: ignore[arg-type]

    # 3. A tube spectrum: a kV, from a dual-energy acquisition or with a tin filter.
    if kvp is not None and (dual or tin):
        return DectSeriesInfo(DectRole.TUBE_SPECTRUM, "image type" if dual else "kvp",
                              dual_energy=True, **base)  # type: ignore[arg-type]
    return DectSeriesInfo(DectRole.SINGLE_ENERGY, "kvp" if kvp is not None else "none",
                          **base)  # type: ignore[arg-type]


def _same(values: Sequence[object]) -> bool:
    return len(set(values)) <= 1


def pair_low_high(low: Sequence[Dataset], high: Sequence[Dataset], *, low_name: str = "LOW_DIR",
                  high_name: str = "HIGH_DIR") -> tuple[DectSeriesInfo, DectSeriesInfo]:
    """Check a low/high kV pair for a decomposition: both have (0018,0060) *KVP*, one kV
    each, the low series at the lower spectrum (or the same kV without tin), one frame of
    reference. Grid equality is checked on the loaded volumes. Raises :class:`DectError`.
    """
    infos = []
    for name, datasets in ((low_name, low), (high_name, high)):
        if not datasets:
            raise DectError(f"{name}: no CT images")
        modalities = {str(ds.get("Modality", "")) for ds in datasets}
        if modalities != {"CT"}:
            raise DectError(f"{name}: (0008,0060) Modality must be CT, got "
                            f"{', '.join(sorted(modalities))}")
        kvps = [_kvp(ds) for ds in datasets]
        if any(k is None for k in kvps):
            raise DectError(f"{name}: (0018,0060) KVP is missing or empty, so the spectrum "
                            "of the images is unknown")
        if not _same(kvps):
            raise DectError(f"{name}: (0018,0060) KVP differs between images "
                            f"({', '.join(sorted({f'{k:g}' for k in kvps if k}))})")
        info = classify_dect(datasets[0])
        if info.role not in (DectRole.TUBE_SPECTRUM, DectRole.SINGLE_ENERGY):
            raise DectError(f"{name}: a {info.role.value.replace('_', ' ')} series "
                            f"(decided by {info.source}), not one tube spectrum")
        infos.append(info)
    lo, hi = infos
    lo_key = (lo.kvp or 0.0, lo.tin_filter)
    hi_key = (hi.kvp or 0.0, hi.tin_filter)
    if not lo_key < hi_key:
        raise DectError(f"(0018,0060) KVP: {low_name} is {lo.spectrum_label} and {high_name} "
                        f"is {hi.spectrum_label}; the low-kV series must come first")
    for_lo = {str(ds.get("FrameOfReferenceUID", "")) for ds in low}
    for_hi = {str(ds.get("FrameOfReferenceUID", "")) for ds in high}
    if for_lo != for_hi or len(for_lo) != 1:
        raise DectError("(0020,0052) FrameOfReferenceUID: the low and high kV series are not "
                        "in one frame of reference (register them first)")
    return lo, hi
