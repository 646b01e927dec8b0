"""Reading the IBSI-1 reference table and the digital phantom for the texture tests.

The table (``ibsi-radiomics/ibsi1_reference_values.csv``, values from the IBSI manual
arXiv:1612.07003) is independent of our code; a computed value passes when, rounded to 3
significant digits, it lies within the row's tolerance of the reference (exact for the
digital phantom), as MIRP's own IBSI tests compare.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEXTURE_FAMILIES = ("cm", "rlm", "szm", "dzm", "ngt", "ngl")

#: the CSV's aggregation text → IBSI aggregation identifier (IBSI 1 Table 3.1)
AGGREGATION_IDS = {
    ("cm", "2D, averaged"): "BTW3", ("cm", "2D, slice-merged"): "SUJT",
    ("cm", "2.5D, direction-merged"): "JJUI", ("cm", "2.5D, merged"): "ZW7Z",
    ("cm", "3D, averaged"): "ITBB", ("cm", "3D, merged"): "IAZD",
}
for _family in ("szm", "dzm", "ngt", "ngl"):
    AGGREGATION_IDS.update({(_family, "2D"): "8QNN", (_family, "2.5D"): "62GR",
                            (_family, "3D"): "KOBO"})
for (_f, _text), _agg in list(AGGREGATION_IDS.items()):
    if _f == "cm":
        AGGREGATION_IDS[("rlm", _text)] = _agg


@dataclass(frozen=True)
class RefRow:
    family: str
    ibsi_id: str
    math_tag: str
    dataset: str
    aggregation: str
    value: float
    tolerance: float

    @property
    def key(self) -> str:
        return f"{self.ibsi_id}/{AGGREGATION_IDS[(self.family, self.aggregation)]}"

    def accepts(self, computed: float) -> bool:
        """Round ``computed`` to 3 significant digits, then compare within the tolerance."""
        if not math.isfinite(computed):
            return False
        rounded = float(f"{computed:.3g}")
        return abs(rounded - self.value) <= self.tolerance + 1e-12 * abs(self.value)


def texture_rows(csv_path: Path, dataset: str) -> list[RefRow]:
    """All texture rows of ``dataset`` (``digital_phantom``, ``config_A`` … ``config_E``)."""
    rows = []
    with open(csv_path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["family"] not in TEXTURE_FAMILIES or row["dataset"] != dataset:
                continue
            if not row["value"]:
                continue
            rows.append(RefRow(row["family"], row["ibsi_id"], row["math_tag"], row["dataset"],
                               row["aggregation"], float(row["value"]),
                               float(row["tolerance"] or 0.0)))
    return rows


def digital_phantom(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The IBSI-1 digital phantom as (intensities, ROI mask), axes (z, y, x) = (k, j, i)."""
    with open(folder / "phantom_voxels.csv", newline="") as handle:
        records = [(int(r["i"]), int(r["j"]), int(r["k"]), int(r["intensity"]),
                    int(r["in_roi"])) for r in csv.DictReader(handle)]
    shape = tuple(max(r[n] for r in records) + 1 for n in (2, 1, 0))
    image = np.zeros(shape, dtype=np.int64)
    mask = np.zeros(shape, dtype=bool)
    for i, j, k, value, inside in records:
        image[k, j, i] = value
        mask[k, j, i] = bool(inside)
    return image, mask
