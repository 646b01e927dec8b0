"""Contrast-enhanced mammography (CEM): which images are low-energy and which recombined,
and their pairing per breast and view.

A CEM acquisition exposes each view twice after iodine injection, below the iodine K-edge
(33.2 keV; low-energy image, 26-33 kVp, read like a mammogram) and above it (45-49 kVp,
high-energy), and the system recombines the two into the iodine image (ACR BI-RADS CEM
supplement 2022; Jochelson MS, Lobbes MBI. Contrast-enhanced mammography: state of the
art. Radiology 2021;299:36-48). Vendors mark the images differently; the kind is taken,
in this order, from:

1. (0008,0008) *Image Type* values: ``LOW_ENERGY``/``LE`` → low-energy; ``RECOMBINED``,
   ``SUBTRACTION``, ``SUB``, ``DES``, ``CESM`` with ``DERIVED`` → recombined;
   ``HIGH_ENERGY``/``HE`` → high-energy;
2. (0008,103E) *Series Description*: "recomb", "subtract", "iodine" → recombined;
   "low energy", "LE " → low-energy; "high energy" → high-energy;
3. (0018,0060) *KVP*: ≤ 35 kV → low-energy, ≥ 44 kV → high-energy.

Pairs are formed per study, (0020,0062) *Image Laterality* (else (0020,0060)
*Laterality*) and (0018,5101) *View Position*; several candidates pair by nearest
(0008,0032) *Acquisition Time*, then instance number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CEMImage", "classify", "pair_images"]


@dataclass(frozen=True)
class CEMImage:
    key: Any  # the caller's handle (instance pk, path ...)
    study: str
    laterality: str
    view: str
    kind: str | None  # low_energy | recombined | high_energy | None
    time: str = ""
    number: int = 0


def classify(header: Mapping[str, Any]) -> str | None:
    """The CEM kind of an image from its header values (module docstring)."""
    image_type = [str(v).upper() for v in (header.get("ImageType") or [])]
    if any(v in ("LOW_ENERGY", "LE") for v in image_type):
        return "low_energy"
    if any(v in ("RECOMBINED", "SUBTRACTION", "SUB", "DES", "CESM_SUB") for v in image_type):
        return "recombined"
    if any(v in ("HIGH_ENERGY", "HE") for v in image_type):
        return "high_energy"
    desc = str(header.get("SeriesDescription") or "").lower()
    if any(w in desc for w in ("recomb", "subtract", "iodine")):
        return "recombined"
    if "low energy" in desc or "low-energy" in desc or desc.startswith("le "):
        return "low_energy"
    if "high energy" in desc or "high-energy" in desc:
        return "high_energy"
    try:
        kvp = float(header.get("KVP") or "nan")
    except (TypeError, ValueError):
        return None
    if kvp <= 35:
        return "low_energy"
    if kvp >= 44:
        return "high_energy"
    return None


def _seconds(t: str) -> float:
    t = (t or "").split(".")[0]
    if len(t) < 4 or not t.isdigit():
        return float("inf")
    return int(t[:2]) * 3600 + int(t[2:4]) * 60 + (int(t[4:6]) if len(t) >= 6 else 0)


def pair_images(images: Iterable[CEMImage]) -> dict[str, list[dict[str, Any]]]:
    """``{"pairs": [{study, laterality, view, low_energy, recombined}], "unpaired": [...]}``
    with the callers' keys."""
    groups: dict[tuple[str, str, str], dict[str, list[CEMImage]]] = {}
    for im in images:
        if im.kind not in ("low_energy", "recombined"):
            continue
        g = groups.setdefault((im.study, im.laterality, im.view),
                              {"low_energy": [], "recombined": []})
        g[im.kind].append(im)
    pairs, unpaired = [], []
    for (study, lat, view), g in sorted(groups.items()):
        lows = sorted(g["low_energy"], key=lambda i: (_seconds(i.time), i.number))
        recs = list(g["recombined"])
        for low in lows:
            if not recs:
                unpaired.append({"key": low.key, "kind": "low_energy", "laterality": lat,
                                 "view": view})
                continue
            best = min(recs, key=lambda r, low=low: (abs(_seconds(r.time) - _seconds(low.time))
                                                     if _seconds(r.time) != float("inf")
                                                     else 0, abs(r.number - low.number)))
            recs.remove(best)
            pairs.append({"study": study, "laterality": lat, "view": view,
                          "low_energy": low.key, "recombined": best.key})
        unpaired += [{"key": r.key, "kind": "recombined", "laterality": lat, "view": view}
                     for r in recs]
    return {"pairs": pairs, "unpaired": unpaired}
