"""IBSI-1 reference rows and the digital phantom for the non-texture feature tests.

The reference table and the phantom are public data outside the repository
(``shared/data/ibsi-radiomics``, see its README): 169 features x {digital phantom,
config A-E}. A computed value passes when, rounded to 3 significant digits, it lies within
the row's tolerance of the printed value (exact when no tolerance is given), as the README
and MIRP's test-suite compare.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

import refdata
from oncohybrid.radiomics.roi import Roi

IBSI = "ibsi-radiomics"
# non-texture families of IBSI 1 chapter 3
FAMILIES = ("morph", "loc", "stat", "ih", "ivh")
# parametrised IVH features: math tag -> result key
_IVH_KEYS = {"ivh.V10": "BC2M/V10", "ivh.V90": "BC2M/V90", "ivh.I10": "GBPN/I10",
             "ivh.I90": "GBPN/I90", "ivh.V10minusV90": "DDTU/V10-V90",
             "ivh.I10minusI90": "CNV2/I10-I90"}


@dataclass(frozen=True)
class RefRow:
    family: str
    feature: str
    ibsi_id: str
    math_tag: str
    dataset: str
    value: float | None
    tolerance: float

    @property
    def key(self) -> str:
        """The result-dict key of this row (IBSI id, or ID/PARAM for the IVH)."""
        return _IVH_KEYS.get(self.math_tag, self.ibsi_id)

    def passes(self, computed: float) -> bool:
        return self.value is not None and abs(round_sig(computed) - self.value) <= (
            self.tolerance + 1e-12 * max(1.0, abs(self.value)))


def round_sig(x: float, digits: int = 3) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


@cache
def reference_rows(dataset: str, families: tuple[str, ...] = FAMILIES) -> tuple[RefRow, ...]:
    path = refdata.require(IBSI) / "ibsi1_reference_values.csv"
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["dataset"] != dataset or r["family"] not in families:
                continue
            rows.append(RefRow(r["family"], r["feature"], r["ibsi_id"], r["math_tag"],
                               r["dataset"], float(r["value"]) if r["value"] else None,
                               float(r["tolerance"]) if r["tolerance"] else 0.0))
    return tuple(rows)


def digital_phantom() -> Roi:
    """The IBSI-1 digital phantom as a Roi: (z, y, x) = (k, j, i), 2 mm, levels = intensities."""
    import nibabel as nib

    base: Path = refdata.require(IBSI) / "ibsi1_digital_phantom"
    img = np.asarray(nib.load(base / "phantom.nii.gz").dataobj, dtype=np.float64)
    mask = np.asarray(nib.load(base / "mask.nii.gz").dataobj) > 0
    img, mask = img.transpose(2, 1, 0).copy(), mask.transpose(2, 1, 0).copy()
    levels = np.where(mask, img, 0).astype(np.int64)
    return Roi(img, mask, mask, (2.0, 2.0, 2.0), levels=levels, n_levels=int(img[mask].max()))


def ct_phantom() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The IBSI-1 CT phantom (HU rounded to integers, float64) and GTV mask in (z, y, x)."""
    import nibabel as nib

    base: Path = refdata.require(IBSI) / "ibsi1_ct_radiomics_phantom"
    im = nib.load(base / "image.nii.gz")
    img = np.rint(np.asarray(im.dataobj, dtype=np.float64)).transpose(2, 1, 0).copy()
    mask = (np.asarray(nib.load(base / "mask.nii.gz").dataobj) > 0).transpose(2, 1, 0).copy()
    zooms = im.header.get_zooms()
    return img, mask, (float(zooms[2]), float(zooms[1]), float(zooms[0]))
