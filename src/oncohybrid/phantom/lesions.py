"""Lesion scenarios: placement in the anatomy and evolution over timepoints.

Each lesion has a stable id ("L1", "L2", …), a site (liver, lung, lymph node, bone), an
axis-aligned ellipsoid shape in the body frame, and per timepoint a size scale and a true
SUV (``None`` while absent). Baseline has at least three lesions; responders shrink and
may lose lesions, progressors grow and gain new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from oncohybrid.phantom.anatomy import Cylinder, Ellipsoid, Landmarks, Tissue, label_at

__all__ = ["LesionPlan", "plan_lesions", "SITES"]

SITES = ("liver", "lung", "lymph node", "bone")

#: Diameter range (mm) per site at first appearance.
_DIAM_MM = {"liver": (12.0, 26.0), "lung": (8.0, 40.0), "lymph node": (12.0, 36.0),
            "bone": (10.0, 24.0)}
#: Largest diameter (mm) a lesion may grow to. Liver and bone lesions stay < 10 ml: with
#: their background (SUV ≈ 1–2.5) a 41 %-of-max contour overestimates volume by 15–20 %
#: at 6 mm FWHM, so every lesion ≥ 10 ml sits in low background (lung, nodal fat) with
#: SUV ≥ 14, where 41 % MTV recovers its volume within 10 % (noise-free).
_MAX_DIAM_MM = {"liver": 26.5, "bone": 26.5, "lung": 50.0, "lymph node": 50.0}
_LARGE_ML, _LARGE_MIN_SUV = 9.5, 14.0
_HOT = [int(Tissue.MYOCARDIUM), int(Tissue.KIDNEY), int(Tissue.BLADDER)]
_FALLBACK = {"lung": "lymph node", "lymph node": "lung", "liver": "lung", "bone": "liver"}
_HU = {"liver": 30.0, "lung": 35.0, "lymph node": 42.0, "bone": 220.0}
_TISSUE = {"liver": Tissue.LIVER, "lung": Tissue.LUNG, "lymph node": Tissue.FAT,
           "bone": Tissue.BONE}
# Where to look for a place, per site (body-frame regions).
_REGIONS: dict[str, list[Ellipsoid | Cylinder]] = {
    "liver": [Ellipsoid((-55.0, 0.0, 405.0), (75.0, 78.0, 85.0))],
    "lung": [Ellipsoid((-88.0, 8.0, 545.0), (55.0, 72.0, 110.0)),
             Ellipsoid((88.0, 8.0, 545.0), (55.0, 72.0, 105.0))],
    "lymph node": [Cylinder((5.0, 28.0), (45.0, 28.0), (150.0, 335.0)),
                   Ellipsoid((-62.0, 5.0, 150.0), (26.0, 26.0, 45.0)),
                   Ellipsoid((62.0, 5.0, 150.0), (26.0, 26.0, 45.0)),
                   Cylinder((0.0, 0.0), (34.0, 62.0), (580.0, 640.0))],
    "bone": [Cylinder((0.0, 68.0), (19.0, 16.0), (120.0, 620.0)),
             Ellipsoid((-98.0, 35.0, 165.0), (34.0, 20.0, 55.0)),
             Ellipsoid((98.0, 35.0, 165.0), (34.0, 20.0, 55.0))],
}

_DIRECTIONS = np.array(
    [d for d in np.ndindex(3, 3, 3) if d != (1, 1, 1)],
    dtype=float,
)
_DIRECTIONS -= 1.0
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


@dataclass
class LesionPlan:
    """One lesion over all timepoints (body frame)."""

    id: str
    site: str
    shape: str  # "sphere" | "ellipsoid"
    centre_body: np.ndarray
    semi_mm: np.ndarray  # semi-axes (x, y, z) at scale 1
    scale: list[float] = field(default_factory=list)  # per timepoint, 0 = absent
    suv: list[float | None] = field(default_factory=list)
    ct_hu: float = 40.0

    @property
    def nodal(self) -> bool:
        return self.site == "lymph node"

    def max_semi(self) -> np.ndarray:
        return self.semi_mm * max(self.scale)

    def first_present(self) -> int:
        return next(i for i, s in enumerate(self.scale) if s > 0)


def _trajectory(rng: np.random.Generator, pattern: str, k_start: int, n_tp: int,
                diam0: float, suv0: float, *, may_vanish: bool = True, max_diam: float = 50.0
                ) -> tuple[list[float], list[float | None]]:
    scale = [0.0] * n_tp
    suv: list[float | None] = [None] * n_tp
    s, u = 1.0, suv0
    for t in range(k_start, n_tp):
        if t > k_start:
            if pattern == "responder":
                if may_vanish and rng.random() < 0.25:
                    break  # complete response of this lesion
                s *= rng.uniform(0.55, 0.8)
                u *= rng.uniform(0.55, 0.8)
            elif pattern == "progressor":
                s *= rng.uniform(1.12, 1.35)
                u *= rng.uniform(1.05, 1.3)
            else:  # stable
                s *= rng.uniform(0.94, 1.06)
                u *= rng.uniform(0.92, 1.08)
            s = min(s, max_diam / diam0)
            if not may_vanish:
                s = max(s, 10.0 / diam0)
            if diam0 * s < 8.0:
                break  # below what the scanner and RECIST see: gone
        scale[t] = s
        suv[t] = float(np.clip(u, 4.0, 15.0))
    return scale, suv


def _fits(centre: np.ndarray, semi: np.ndarray, tissue: Tissue, anatomy: list,
          others: list[LesionPlan], landmarks: Landmarks, z_window: tuple[float, float]) -> bool:
    r = float(semi.max())
    if centre[2] - r < z_window[0] + 15.0 or centre[2] + r > z_window[1] - 15.0:
        return False
    # Lesions that may exceed 10 ml keep ≥ 8 mm (3σ of the PET blur) of their own low
    # background around them, so the 41 % contour is not lifted by a neighbouring organ.
    margin = 8.0 if tissue in (Tissue.LUNG, Tissue.FAT) else 4.0
    pts = np.vstack([centre, centre + (semi + margin) * _DIRECTIONS,
                     centre + 0.5 * semi * _DIRECTIONS])
    if np.any(label_at(pts, anatomy) != int(tissue)):
        return False
    # No hot organ (myocardium, kidney, bladder) within 15 mm: its blurred uptake would
    # join the lesion's 41 % contour.
    ring = centre + (semi + 15.0) * _DIRECTIONS
    if np.isin(label_at(ring, anatomy), _HOT).any():
        return False
    ref = np.asarray(landmarks.liver_reference_centre)
    if np.linalg.norm(centre - ref) < r + 15.0 + 12.0:
        return False  # keep the PERCIST liver reference sphere free
    for other in others:
        if np.linalg.norm(centre - other.centre_body) < r + float(other.max_semi().max()) + 10.0:
            return False
    return True


def _place(rng: np.random.Generator, site: str, semi: np.ndarray, anatomy: list,
           others: list[LesionPlan], landmarks: Landmarks, z_window: tuple[float, float]
           ) -> np.ndarray | None:
    regions = _REGIONS[site]
    for _ in range(600):
        region = regions[int(rng.integers(len(regions)))]
        lo, hi = region.bounds()
        centre = rng.uniform(lo, hi)
        if _fits(centre, semi, _TISSUE[site], anatomy, others, landmarks, z_window):
            return centre
    return None


def plan_lesions(
    rng: np.random.Generator,
    *,
    n_timepoints: int,
    pattern: str,
    anatomy: list,
    landmarks: Landmarks,
    z_window: tuple[float, float],
    force_new: bool,
) -> list[LesionPlan]:
    """Draw 3–6 baseline lesions (the first a large, hot, low-background one) and new
    lesions at follow-up for progressors (always when ``force_new``)."""
    lesions: list[LesionPlan] = []
    n_base = int(rng.integers(3, 7))
    sites = ["lung"] + list(rng.permutation(["liver", "lymph node", "bone"]))
    sites += [str(s) for s in rng.choice(SITES, size=max(0, n_base - 4))]
    starts = [0] * n_base
    n_new = 0
    if n_timepoints > 1 and (pattern == "progressor" or force_new):
        n_new = int(rng.integers(1, 3))
    for _ in range(n_new):
        sites.append(str(rng.choice(SITES)))
        starts.append(int(rng.integers(1, n_timepoints)))
    for k, (site, start) in enumerate(zip(sites[: n_base + n_new], starts, strict=True)):
        for _attempt in range(4):
            lo, hi = _DIAM_MM[site]
            if k == 0:
                diam = rng.uniform(28.0, 34.0)  # ≥ 10 ml, well above lung background
                suv0 = rng.uniform(9.0, 15.0)
            elif start > 0:
                diam = rng.uniform(lo, min(hi, 22.0))
                suv0 = rng.uniform(4.0, 12.0)
            else:
                diam = rng.uniform(lo, hi)
                suv0 = rng.uniform(4.0, 15.0)
            diam = min(diam, _MAX_DIAM_MM[site] - 0.5)
            shape = "sphere" if (k == 0 or rng.random() < 0.5) else "ellipsoid"
            ratios = np.ones(3) if shape == "sphere" else rng.uniform(0.7, 1.0, size=3)
            if shape == "ellipsoid":
                ratios[int(rng.integers(2))] = 1.0  # long axis in the axial plane
            semi = 0.5 * diam * ratios
            lesion_pattern = pattern
            if pattern == "mixed":
                lesion_pattern = "progressor" if rng.random() < 0.5 else "responder"
            scale, suv = _trajectory(rng, lesion_pattern, start, n_timepoints, diam, suv0,
                                     may_vanish=(k != 0), max_diam=_MAX_DIAM_MM[site])
            for t, sc in enumerate(scale):
                vol_ml = 4.0 / 3.0 * np.pi * float(np.prod(semi * sc)) / 1000.0
                if sc > 0 and vol_ml >= _LARGE_ML:
                    suv[t] = max(float(suv[t] or 0.0), _LARGE_MIN_SUV)
            plan = LesionPlan(
                id="", site=str(site), shape=shape, centre_body=np.zeros(3), semi_mm=semi,
                scale=scale, suv=suv, ct_hu=_HU[site],
            )
            centre = _place(rng, site, plan.max_semi(), anatomy, lesions, landmarks, z_window)
            if centre is not None:
                plan.centre_body = centre
                plan.id = f"L{len(lesions) + 1}"
                lesions.append(plan)
                break
            site = _FALLBACK[site]  # crowded organ: try another site
    return lesions
