"""Use-case: assess one patient's response end to end (``oncohybrid assess PATIENT_ID``).

Pipeline (docs/record.md gives the reasons for every default):

1. **Timepoints** — the patient's stored series grouped by study date; each PET/CT
   timepoint is one PET series and one CT series sharing (0020,0052) *Frame of Reference
   UID* (``group_timepoints``).
2. **Per timepoint** (``analyse_timepoint``) — PET as SUVbw (:func:`suv_volume`; SUL by the
   LBM/weight ratio of the SUV scaling), CT (:func:`load_series`), liver and blood-pool
   references (:mod:`oncohybrid.quant.references`), lesions at the **PERCIST liver
   threshold** (1.5 × liver SULmean + 2 SD; blood pool 2.0 × mean + 2 SD when the liver
   is unusable; Wahl et al., JNM 2009), minus physiological uptake (heuristic below), PET
   metrics (:func:`lesion_metrics`), and CT measurements on a CT-refined mask
   (:func:`measure_ct_lesion`) with a site guessed from the CT around the lesion; fainter
   PET foci confirmed by a distinct CT lesion (second tier) and FDG-avid lesions found on
   CT alone in lung, bone and fat (third tier, :func:`detect_on_ct`).
3. **Tracking** — each follow-up CT registered to the baseline CT (:func:`register_ct`),
   lesions matched by overlap and distance (:func:`track_lesions`).
4. **Roles** — baseline targets proposed per criterion (:func:`propose_targets`); lesions
   first seen at a follow-up are ``new``.
5. **Criteria** — one case per criterion (``build_case``) assessed by the response engine.
6. **Record** — timepoints, lesions, roles, observations and assessments are stored
   (:mod:`oncohybrid.services.record`); manual observations already in the record are
   kept and, being in use, are what the case is built from.

Physiological uptake (no organ segmentation model is used; heuristic, PET + CT):
a PET component is dropped when (a) its MTV is ≥ ``physiological_min_mtv_ml`` (150 ml:
heart, bladder, brain are larger than the lesions a threshold method measures reliably),
or (b) most of it lies in an *organ-like region*: a connected region of the PET smoothed
with σ = 4 mm above 1.3 × liver SUVmean that is ≥ 60 ml but never exceeds 2.5 × liver
SUVmean at its 95th percentile (kidneys, myocardium — large, moderately avid, flat
uptake; a tumour that large is far hotter). The liver itself never qualifies (its mean
is the reference). Each dropped component is listed in the notes with the rule.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import GeometryError, InputError, OncohybridError, StoreError

#: Criteria assessed when none are named.
DEFAULT_CRITERIA: tuple[str, ...] = ("recist1.1", "percist", "lugano")

#: Criteria the pipeline can build a case for, by case family.
FAMILIES: dict[str, str] = {
    "recist1.1": "recist",
    "irecist": "recist",
    "choi": "recist",
    "percist": "percist",
    "eortc": "eortc",
    "lugano": "lugano",
    "lugano-pet": "lugano",
    "lugano-ct": "lugano",
    "lyric": "lugano",
    "recip": "recip",
}
#: Target-selection rule used for each family (response.selection criteria).
_SELECTION = {"recist": "recist1.1", "percist": "percist", "eortc": "percist",
              "lugano": "lugano", "recip": "percist"}
#: Criteria whose per-lesion roles the record keeps (the selection rules above).
ROLE_CRITERIA = tuple(dict.fromkeys(_SELECTION.values()))


@dataclass(frozen=True)
class AssessParams:
    """Pipeline parameters (documented in docs/record.md)."""

    min_volume_ml: float = 0.5
    connectivity: int = 26
    physiological_min_mtv_ml: float = 150.0
    organ_smoothing_mm: float = 4.0
    organ_uptake_x_liver: float = 1.3
    organ_min_volume_ml: float = 60.0
    organ_max_uptake_x_liver: float = 2.5
    ct_margin_mm: float = 10.0
    ct_min_contrast_hu: float = 15.0
    ct_max_band_hu: float = 100.0
    register_resolution_mm: float = 5.0
    #: Second detection tier: foci above this fraction of the PERCIST threshold (and
    #: above low_threshold_min_x_liver x liver SUVmean) count when the CT confirms them.
    low_threshold_fraction: float = 0.75
    low_threshold_min_x_liver: float = 1.2
    #: Smallest second-tier focus: a ~10 mm lesion blurred to 6 mm FWHM stays above the
    #: faint threshold in only a few voxels, so 0.5 ml would drop it (CT decides instead).
    low_min_volume_ml: float = 0.1
    #: Largest CT lesion that may confirm a second-tier focus.
    low_max_ct_volume_ml: float = 30.0
    #: CT detection (third tier): compact lesions enclosed in lung, bone or fat that PET
    #: did not find; kept when their PET SUVmax reaches ct_detect_min_x_liver x liver
    #: SUVmean and ct_detect_min_x_background x the PET median around them.
    ct_detect: bool = True
    ct_detect_min_volume_ml: float = 0.2
    ct_detect_min_x_liver: float = 1.0
    ct_detect_min_x_background: float = 1.5
    #: Effective PET resolution (FWHM, mm) for recovery-coefficient partial-volume
    #: correction of SUVmax/SUVpeak/SULpeak; None (default) keeps the uncorrected values
    #: that PERCIST, EORTC and Deauville are defined on.
    pvc_fwhm_mm: float | None = None
    #: Reference VOIs placed by the reader, per study date (ISO) and region ("liver",
    #: "blood_pool"): LPS centre in mm. The others are placed automatically.
    reference_centres: dict[str, dict[str, tuple[float, float, float]]] = field(
        default_factory=dict)
    #: assess criteria even where the PET tracer/modality is not one they are valid for
    #: (response/applicability.py); the mismatch is then a note
    allow_tracer_mismatch: bool = False

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["reference_centres"] = {d: {r: list(c) for r, c in regions.items()}
                                    for d, regions in self.reference_centres.items()}
        return out


# ---------------------------------------------------------------------------------------
# Timepoints from the store
# ---------------------------------------------------------------------------------------


@dataclass
class TimepointInput:
    """One PET/CT visit: the series to read and where they come from."""

    date: dt.date
    pet_files: list[Path]
    ct_files: list[Path]
    study_uid: str | None = None
    pet_series_uid: str | None = None
    ct_series_uid: str | None = None
    frame_of_reference_uid: str | None = None


def group_timepoints(patient_id: str, settings: Settings | None = None) -> list[TimepointInput]:
    """The patient's PET/CT timepoints from the study database, oldest first.

    One timepoint per study date; within it the PET series (modality PT) and the CT
    series sharing its Frame of Reference UID (the largest when several). Dates without
    a PET/CT pair are skipped. Raises :class:`StoreError` when nothing usable is stored.
    """
    from oncohybrid.store.queries import Filters, list_series, series_files

    rows = list_series(Filters(patient_id=patient_id), settings)
    if not rows:
        raise StoreError(f"patient {patient_id}: no stored series (ingest the studies first)")
    by_date: dict[str, list[dict]] = {}
    for r in rows:
        key = r["study_date"] or r["date"]
        if key is None:
            continue
        by_date.setdefault(key, []).append(r)
    out: list[TimepointInput] = []
    for date in sorted(by_date):
        series = by_date[date]
        pets = sorted((r for r in series if r["modality"] == "PT"),
                      key=lambda r: -(r["instances"] or 0))
        for pet in pets:
            cts = sorted(
                (r for r in series if r["modality"] == "CT"
                 and r["frame_of_reference_uid"] == pet["frame_of_reference_uid"]),
                key=lambda r: -(r["instances"] or 0),
            )
            if not cts:
                continue
            ct = cts[0]
            out.append(TimepointInput(
                date=dt.date.fromisoformat(date),
                pet_files=series_files(pet["series_uid"], settings),
                ct_files=series_files(ct["series_uid"], settings),
                study_uid=pet["study_uid"],
                pet_series_uid=pet["series_uid"],
                ct_series_uid=ct["series_uid"],
                frame_of_reference_uid=pet["frame_of_reference_uid"],
            ))
            break
    if not out:
        raise StoreError(
            f"patient {patient_id}: no PET/CT timepoint (a PT and a CT series sharing a "
            "Frame of Reference UID on one date)"
        )
    return out


# ---------------------------------------------------------------------------------------
# One timepoint
# ---------------------------------------------------------------------------------------


@dataclass
class DetectedLesion:
    """A lesion found at one timepoint: PET metrics, CT measurement, guessed site."""

    label: str
    pet: Any  # quant.pet.LesionMetrics
    ct: Any | None  # quant.ct.CTMeasurement
    ct_mask: Any | None  # highdicom.Volume (uint8) on a CT sub-grid
    site: str
    nodal: bool
    ct_method: dict[str, Any]
    pvc: dict[str, Any] | None = None  # corrected suv_max/suv_peak/sul_peak + parameters
    pet_mask: Any | None = None  # highdicom.Volume (uint8), PET (sub-)grid: voxels measured

    def measurements(self) -> dict[str, float | None]:
        p, c = self.pet, self.ct
        out = {
            "ld_mm": None if c is None else c.ld_mm,
            "sa_mm": None if c is None else c.sa_mm,
            "ppd_mm2": None if c is None else c.ppd_mm2,
            "volume_ml": None if c is None else c.volume_ml,
            "hu_mean": None if c is None else c.hu_mean,
            "suv_max": p.suv_max,
            "suv_peak": _finite(p.suv_peak.value),
            "sul_peak": _finite(p.sul_peak),
            "mtv_ml": p.mtv_ml,
            "tlg_suv_ml": p.tlg_suv_ml,
        }
        if self.pvc is not None:
            out.update({k: self.pvc[k] for k in ("suv_max", "suv_peak", "sul_peak")})
        return out


def _sphere_profile(r: np.ndarray, radius_mm: float, sigma_mm: float) -> np.ndarray:
    """Value at distance r from the centre of a unit sphere blurred by a 3-D Gaussian."""
    from scipy.special import erf

    r = np.maximum(r, 1e-6)
    k = math.sqrt(2.0) * sigma_mm
    g = sigma_mm / (r * math.sqrt(2.0 * math.pi))
    return (0.5 * (erf((radius_mm - r) / k) + erf((radius_mm + r) / k))
            - g * (np.exp(-((radius_mm - r) ** 2) / k**2) + 0.0
                   - np.exp(-((radius_mm + r) ** 2) / k**2)))


def recovery_coefficients(radius_mm: float, fwhm_mm: float,
                          peak_radius_mm: float = 6.2035) -> tuple[float, float]:
    """(RC of the maximum, RC of a centred 1 cm³ peak) for a uniform sphere.

    Analytic blurred-sphere profile (convolution of a ball with an isotropic Gaussian);
    the peak RC averages it over the 1 cm³ ball. Hoetjes et al., Eur J Nucl Med Mol
    Imaging 2010;37:1679 (RC-based correction). Written here: no library provides it.

    >>> round(recovery_coefficients(30.0, 6.0)[0], 3)
    1.0
    """
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    rc_max = float(_sphere_profile(np.array([0.0]), radius_mm, sigma)[0])
    rs = np.linspace(0.0, peak_radius_mm, 64)
    w = rs**2
    rc_peak = float(np.sum(_sphere_profile(rs, radius_mm, sigma) * w) / np.sum(w))
    return rc_max, rc_peak


def _apply_pvc(det: DetectedLesion, pet: Any, mask_on_pet: np.ndarray,
               sul_per_suv: float | None, fwhm_mm: float) -> None:
    """Recovery-coefficient correction with the local background (shell 2-4 voxels out)."""
    if det.ct is None:
        return
    radius = (3.0 * det.ct.volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    rc_max, rc_peak = recovery_coefficients(radius, fwhm_mm)
    rc_max, rc_peak = max(rc_max, 0.25), max(rc_peak, 0.25)
    outer = ndimage.binary_dilation(mask_on_pet, iterations=4)
    inner = ndimage.binary_dilation(mask_on_pet, iterations=2)
    shell = outer & ~inner
    bg = float(np.median(pet.array[shell])) if shell.any() else 0.0
    raw_max, raw_peak = det.pet.suv_max, _finite(det.pet.suv_peak.value)
    suv_max = bg + (raw_max - bg) / rc_max
    suv_peak = None if raw_peak is None else bg + (raw_peak - bg) / rc_peak
    det.pvc = {
        "suv_max": suv_max, "suv_peak": suv_peak,
        "sul_peak": None if suv_peak is None or sul_per_suv is None else suv_peak * sul_per_suv,
        "parameters": {"fwhm_mm": fwhm_mm, "radius_mm": round(radius, 2),
                       "rc_max": round(rc_max, 4), "rc_peak": round(rc_peak, 4),
                       "background_suv": round(bg, 3), "raw_suv_max": raw_max,
                       "raw_suv_peak": raw_peak},
    }


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


@dataclass
class TimepointAnalysis:
    input: TimepointInput
    ct: Any  # highdicom.Volume
    sul_per_suv: float | None
    liver: Any | None
    blood_pool: Any | None
    threshold: Any | None
    lesions: list[DetectedLesion]
    segmentation: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    pet: Any = None  # highdicom.Volume in SUVbw

    def references(self) -> dict[str, float]:
        """Reference numbers for the case files (SUL for PERCIST, SUV for Deauville)."""
        return case_references(self.liver, self.blood_pool)


def case_references(liver: Any | None, blood_pool: Any | None) -> dict[str, float]:
    """The case-file reference numbers read in a liver and a blood-pool VOI
    (``quant.references.ReferenceRegion``; None: not available)."""
    refs: dict[str, float] = {}
    if liver is not None:
        mean, sd = liver.mean_sd_sul
        refs["liver_sul_mean"], refs["liver_sul_sd"] = mean, sd
        # Deauville compares with the liver; the reference VOI mean is used (docs/record.md).
        refs["liver_suv_max"] = liver.suv_mean
    if blood_pool is not None:
        mean, sd = blood_pool.mean_sd_sul
        refs["blood_pool_sul_mean"], refs["blood_pool_sul_sd"] = mean, sd
        refs["mediastinum_suv_max"] = blood_pool.suv_mean
    return refs


def _rules(p: AssessParams) -> Any:
    """The physiological-uptake rules of ``p`` (oncohybrid.quant.physiological)."""
    from oncohybrid.quant.physiological import PhysiologicalRules

    return PhysiologicalRules(
        min_mtv_ml=p.physiological_min_mtv_ml, organ_smoothing_mm=p.organ_smoothing_mm,
        organ_uptake_x_liver=p.organ_uptake_x_liver, organ_min_volume_ml=p.organ_min_volume_ml,
        organ_max_uptake_x_liver=p.organ_max_uptake_x_liver)


def _organ_regions(arr: np.ndarray, spacing: Sequence[float], liver_mean: float,
                   p: AssessParams) -> tuple[np.ndarray, list[str]]:
    """Label map of organ-like regions (see module docstring) and their descriptions."""
    from oncohybrid.quant.physiological import organ_regions

    return organ_regions(arr, spacing, liver_mean, _rules(p))


def _physiological(seg_labels: np.ndarray, boxes: Sequence[Any], arr: np.ndarray,
                   spacing: Sequence[float], liver_mean: float | None,
                   p: AssessParams) -> dict[int, str]:
    """Lesion label → reason, for components judged physiological uptake."""
    from oncohybrid.quant.physiological import physiological_components

    return physiological_components(seg_labels, boxes, arr, spacing, liver_mean, _rules(p))


def _site(ring_hu: float) -> tuple[str, bool]:
    """Organ guessed from the median CT number around a lesion (docs/record.md)."""
    if ring_hu < -400:
        return "lung", False
    if ring_hu > 250:
        return "bone", False
    if ring_hu < -30:
        return "lymph node", True  # surrounded by fat
    if 52 <= ring_hu <= 120:
        return "liver", False
    return "soft tissue", False


def _ct_lesion(pet_mask: Any, ct: Any, p: AssessParams, centroid_lps_mm: Sequence[float]
               ) -> tuple[Any, Any, str, bool, dict]:
    """CT mask, measurement, site and method of one PET lesion (mask: Volume on PET grid).

    The PET mask (resampled to CT, nearest) only locates the lesion: its CT extent is
    the connected set of voxels whose smoothed CT number is closer to the lesion core's
    median than to the surrounding ring's (a band of at most ±``ct_max_band_hu``),
    inside the PET mask dilated by ``ct_margin_mm``. Lesions without CT contrast keep
    the PET mask.
    """
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.ct import measure_ct_lesion

    idx = np.argwhere(pet_mask.array > 0)
    lo, hi = idx.min(0) - 0.5, idx.max(0) + 0.5
    corners = np.array([[a, b, c, 1.0] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    lps = corners @ pet_mask.affine.T
    ct_idx = lps @ np.linalg.inv(ct.affine).T
    margin_vox = np.ceil((p.ct_margin_mm + 5.0) / np.asarray(ct.spacing)).astype(int)
    shape = np.asarray(ct.spatial_shape)
    a = np.maximum(np.floor(ct_idx[:, :3].min(0)).astype(int) - margin_vox, 0)
    b = np.minimum(np.ceil(ct_idx[:, :3].max(0)).astype(int) + margin_vox + 1, shape)
    if np.any(b <= a):
        raise GeometryError("lesion lies outside the CT field of view")
    sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    pm = resample_to(pet_mask, sub, interpolation="nearest").array > 0
    hu = sub.array.astype(np.float32)
    sp = np.asarray(sub.spacing, float)
    method: dict[str, Any] = {"method": "pet-located CT band threshold",
                              "parameters": {"margin_mm": p.ct_margin_mm}}
    if not pm.any():
        raise GeometryError("lesion mask does not reach any CT voxel")
    dist_out = ndimage.distance_transform_edt(~pm, sampling=sp)
    dist_in = ndimage.distance_transform_edt(pm, sampling=sp)
    voi = dist_out <= p.ct_margin_mm
    ring = (dist_out >= 3.0) & voi
    # Core: the PET-mask voxels within 3 mm in-plane of the PET centroid on its nearest
    # slice (a deeper-voxel rule fails for lesions only a few CT voxels wide).
    cidx = np.linalg.solve(sub.affine, np.append(centroid_lps_mm, 1.0))[:3]
    grid = np.indices(pm.shape, dtype=np.float32)
    d2 = sum(((grid[i] - cidx[i]) * sp[i]) ** 2 for i in (1, 2))
    core = pm & (np.abs(grid[0] - cidx[0]) <= 0.5) & (d2 <= 9.0)
    if core.sum() < 3:
        core = dist_in >= 0.5 * dist_in.max()
    smooth = ndimage.gaussian_filter(hu, [0.0 if sp[0] >= 3 else 0.5, 1.0, 1.0])
    mask = pm
    if ring.any() and core.any():
        core_hu = float(np.median(smooth[core]))
        ring_hu = float(np.median(hu[ring]))
        site, nodal = _site(ring_hu)
        contrast = abs(core_hu - ring_hu)
        method["parameters"].update(core_hu=round(core_hu, 1), ring_hu=round(ring_hu, 1))
        if contrast >= p.ct_min_contrast_hu:
            # Edge at the midpoint towards the ring (unbiased on a smoothed step); on the
            # other side at most ct_max_band_hu, so a third tissue (soft tissue beside a
            # bone lesion) is not taken in.
            mid = 0.5 * (core_hu + ring_hu)
            if ring_hu < core_hu:
                cand = (smooth >= mid) & (smooth <= core_hu + p.ct_max_band_hu)
            else:
                cand = (smooth <= mid) & (smooth >= core_hu - p.ct_max_band_hu)
            # A distinct lesion is surrounded by other tissue: its band component does not
            # run out of the search region (organ edges, vessels and bowel do).
            lab_all, _n = ndimage.label(cand)
            own = np.unique(lab_all[core & cand])
            own = own[own > 0]
            enclosed = bool(own.size) and not np.any(np.isin(lab_all, own) & ~voi)
            cand &= voi
            band = contrast / 2.0
            lab, n = ndimage.label(cand)
            hits = np.unique(lab[core & cand])
            hits = hits[hits > 0]
            if hits.size:
                refined = ndimage.binary_fill_holes(np.isin(lab, hits))
                if refined.sum() >= 2:
                    mask = refined
                    method["parameters"]["band_hu"] = round(band, 1)
                    method["parameters"]["enclosed"] = enclosed
        else:
            method = {"method": "PET mask on CT (no CT contrast)",
                      "parameters": {"core_hu": round(core_hu, 1), "ring_hu": round(ring_hu, 1)}}
    else:
        site, nodal = "soft tissue", False
    mvol = sub.with_array(mask.astype(np.uint8))
    meas = measure_ct_lesion(mvol, hu=hu)
    return mvol, meas, site, nodal, method


#: CT-number windows of the tissues a lesion is looked for in (third tier) and the lesion
#: band inside each: (site, nodal, tissue HU range, lesion HU range). Soft-tissue lesions
#: in lung and fat, lytic lesions in bone (docs/record.md, "CT detection").
_CT_SEARCH: tuple[tuple[str, bool, tuple[float, float], tuple[float, float]], ...] = (
    ("lung", False, (-1100.0, -400.0), (-300.0, 200.0)),
    ("bone", False, (450.0, 3000.0), (100.0, 450.0)),
    ("lymph node", True, (-200.0, -50.0), (0.0, 150.0)),
)


def detect_on_ct(ct: Any, pet: Any, lesions: Sequence[DetectedLesion], liver_suv: float | None,
                 sul_per_suv: float | None, p: AssessParams) -> list[DetectedLesion]:
    """Lesions visible on CT that PET detection missed (third tier; docs/record.md).

    RECIST and Lugano measure on CT, and a ~10 mm lesion blurred by the PET resolution can
    fall below every PET threshold. Inside the body's bounding box (CT > −500 HU), in each
    tissue of :data:`_CT_SEARCH` (CT smoothed with σ = 1 pixel in-plane) the 3-D connected
    regions of the lesion band that lie wholly in holes the tissue encloses in-plane are
    candidates, between ``ct_detect_min_volume_ml`` and ``low_max_ct_volume_ml``
    (vessels and organs are larger or not enclosed). A candidate overlapping a lesion
    found already is skipped; one is kept only when its PET SUVmax reaches
    ``ct_detect_min_x_liver`` × liver SUVmean and ``ct_detect_min_x_background`` × the PET
    median in a shell 2–4 voxels around it (FDG-avid, not a CT-only structure).
    """
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.ct import measure_ct_lesion
    from oncohybrid.quant.pet import lesion_metrics

    if liver_suv is None or liver_suv <= 0:
        return []
    # Work inside the body's bounding box (air around it holds no lesion; halves the cost).
    body = ndimage.find_objects((ct.array > -500).astype(np.uint8))
    if not body or body[0] is None:
        return []
    box0 = body[0]
    ct = ct[box0]
    hu = ct.array.astype(np.float32)
    sp = np.asarray(ct.spacing, float)
    smooth = ndimage.gaussian_filter(hu, [0.0, 1.0, 1.0])
    shape = np.asarray(hu.shape)
    taken = np.zeros(hu.shape, bool)
    for les in lesions:  # CT masks live on sub-grids of this CT: paste them (dilated)
        if les.ct_mask is None:
            continue
        off = np.rint(np.linalg.solve(ct.affine, les.ct_mask.affine[:, 3])[:3]).astype(int)
        m = np.pad(les.ct_mask.array > 0, 2)
        m = ndimage.binary_dilation(m, iterations=2)
        lo = off - 2
        a, b = np.maximum(lo, 0), np.minimum(lo + np.asarray(m.shape), shape)
        if np.any(b <= a):
            continue
        taken[a[0]:b[0], a[1]:b[1], a[2]:b[2]] |= m[a[0] - lo[0]:b[0] - lo[0],
                                                    a[1] - lo[1]:b[1] - lo[1],
                                                    a[2] - lo[2]:b[2] - lo[2]]
    vox_ml = float(np.prod(sp)) / 1000.0
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    found: list[DetectedLesion] = []
    for site, nodal, (t_lo, t_hi), (l_lo, l_hi) in _CT_SEARCH:
        tissue = (smooth >= t_lo) & (smooth <= t_hi)
        # In-plane holes of the tissue: axial components of its complement that do not
        # reach the slice border (one labelling pass instead of per-slice hole filling).
        rest, n_rest = ndimage.label(~tissue, structure=in_plane)
        edge = np.unique(np.concatenate([rest[:, 0, :].ravel(), rest[:, -1, :].ravel(),
                                         rest[:, :, 0].ravel(), rest[:, :, -1].ravel()]))
        open_ = np.zeros(n_rest + 1, bool)
        open_[edge] = True
        open_[0] = True
        # Candidates: 3-D components of the lesion band lying wholly in such holes (an
        # organ seen in-plane through the lung base, e.g. the liver dome, connects in 3-D
        # to the rest of the organ and is not wholly enclosed).
        lab, n = ndimage.label(~tissue & (smooth >= l_lo) & (smooth <= l_hi))
        total = np.bincount(lab.ravel(), minlength=n + 1)
        enclosed = np.bincount(lab[~open_[rest]], minlength=n + 1)
        for i, box in enumerate(ndimage.find_objects(lab), start=1):
            if box is None or enclosed[i] < total[i]:
                continue
            comp = lab[box] == i
            vol_ml = comp.sum() * vox_ml
            if not (p.ct_detect_min_volume_ml <= vol_ml <= p.low_max_ct_volume_ml):
                continue
            if np.any(taken[box][comp]):
                continue
            pad = [max(2, int(math.ceil(8.0 / s))) for s in sp]
            a = [max(b.start - d, 0) for b, d in zip(box, pad, strict=True)]
            b = [min(b.stop + d, n_) for b, d, n_ in zip(box, pad, hu.shape, strict=True)]
            sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
            mask = np.zeros(sub.spatial_shape, bool)
            inner = tuple(slice(bx.start - lo, bx.stop - lo) for bx, lo in zip(box, a, strict=True))
            mask[inner] = comp
            mvol = sub.with_array(mask.astype(np.uint8))
            on_pet = resample_to(mvol, pet, interpolation="nearest").array > 0
            if not on_pet.any():
                continue
            outer = ndimage.binary_dilation(on_pet, iterations=4)
            shell = outer & ~ndimage.binary_dilation(on_pet, iterations=2)
            bg = float(np.median(pet.array[shell])) if shell.any() else 0.0
            met = lesion_metrics(pet, on_pet.astype(np.int32), sul_per_suv=sul_per_suv)[0]
            if met.suv_max < p.ct_detect_min_x_liver * liver_suv \
                    or met.suv_max < p.ct_detect_min_x_background * bg:
                continue
            sub_hu = sub.array.astype(np.float32)
            ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask)
            core_hu = float(np.median(sub_hu[mask]))
            ring_hu = float(np.median(sub_hu[ring])) if ring.any() else float("nan")
            meas = measure_ct_lesion(mvol, hu=sub_hu)
            method = {"method": f"CT detection in {site} (not found on PET)",
                      "parameters": {"core_hu": round(core_hu, 1), "ring_hu": round(ring_hu, 1),
                                     "pet_background_suv": round(bg, 3)}}
            det = DetectedLesion(f"c{len(lesions) + len(found) + 1}", met, meas, mvol, site,
                                 nodal, method,
                                 pet_mask=pet.with_array(on_pet.astype(np.uint8)))
            if p.pvc_fwhm_mm:
                _apply_pvc(det, pet, on_pet, sul_per_suv, p.pvc_fwhm_mm)
            found.append(det)
            taken[box] |= comp
    return found


def _ct_confirms(method: dict[str, Any], meas: Any, p: AssessParams) -> bool:
    """True when the CT shows a distinct lesion for a faint PET focus (second tier).

    The CT band rule must have found a component (``band_hu``) that is enclosed by other
    tissue (``enclosed``: it does not run out of the search region, as organ edges,
    vessels and bowel do) and is not larger than ``low_max_ct_volume_ml``.
    """
    prm = method.get("parameters", {})
    return (method.get("method", "").startswith("pet-located") and "band_hu" in prm
            and bool(prm.get("enclosed")) and meas is not None
            and meas.volume_ml <= p.low_max_ct_volume_ml)


def analyse_timepoint(tp: TimepointInput, params: AssessParams | None = None,
                      timings: dict[str, float] | None = None) -> TimepointAnalysis:
    """SUV, CT, references, lesions (PET metrics + CT measurements) of one timepoint."""
    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.pet import lesion_metrics
    from oncohybrid.quant.references import (
        blood_pool_reference,
        liver_reference,
        percist_threshold,
    )
    from oncohybrid.segment.threshold import segment_lesions

    p = params or AssessParams()
    clock = _Clock(timings)
    notes: list[str] = []
    with clock("load"):
        vol, scaling = suv_volume(tp.pet_files, normalisation=Normalisation.BW)
        f = scaling.factors
        sul_per_suv = None
        if Normalisation.BW in f and Normalisation.LBM_JANMA in f:
            sul_per_suv = f[Normalisation.LBM_JANMA] / f[Normalisation.BW]
        ct = load_series(tp.ct_files)
    with clock("references"):
        ct_on_pet = resample_to(ct, vol, default=-1000.0).array
        liver = blood = threshold = None
        manual = p.reference_centres.get(tp.date.isoformat(), {})
        try:
            liver = liver_reference(vol, ct=ct_on_pet, sul_per_suv=sul_per_suv,
                                    centre_lps_mm=manual.get("liver"))
        except GeometryError as exc:
            notes.append(f"liver reference unavailable: {exc}")
        try:
            blood = blood_pool_reference(vol, ct=ct_on_pet, sul_per_suv=sul_per_suv,
                                         centre_lps_mm=manual.get("blood_pool"))
        except GeometryError as exc:
            notes.append(f"blood-pool reference unavailable: {exc}")
        liver_ok = liver is not None and liver.inside_image and not liver.notes
        if liver is None and blood is None:
            raise InputError(f"{tp.date}: neither a liver nor a blood-pool reference could be "
                             f"placed ({'; '.join(notes)}); PERCIST thresholding is impossible: "
                             f"give reader-placed centres (--liver-centre {tp.date}=X,Y,Z or "
                             f"--blood-pool-centre {tp.date}=X,Y,Z, LPS mm)")
        threshold = percist_threshold(liver, blood, sul_per_suv=sul_per_suv,
                                      liver_usable=liver_ok or blood is None)
        if threshold.reference == "blood_pool":
            why = "not placed" if liver is None else "; ".join(liver.notes) or "not usable"
            notes.append(f"PERCIST threshold from the blood pool: the liver reference is {why}")
    with clock("segmentation"):
        seg = segment_lesions(vol, method="percist", threshold_suv=threshold.threshold_suv,
                              connectivity=p.connectivity, min_volume_ml=p.min_volume_ml)
        spacing = tuple(float(s) for s in seg.grid.spacing_mm)
        drop = _physiological(seg.labels, seg.boxes, vol.array, spacing,
                              None if liver is None else liver.suv_mean, p)
        for k, why in drop.items():
            notes.append(f"PET component {k} excluded as physiological uptake: {why}")
        labels = seg.labels.copy()
        keep = [k for k in range(1, seg.n_lesions + 1) if k not in drop]
        remap = np.zeros(seg.n_lesions + 1, np.int32)
        for new, old in enumerate(keep, start=1):
            remap[old] = new
        labels = remap[labels]
        boxes = [seg.boxes[k - 1] for k in keep]
        # Tier 2: fainter foci (between low_threshold_fraction x the PERCIST threshold and
        # it) that touch no tier-1 component; kept only if the CT confirms a lesion.
        tier2: set[int] = set()
        low = p.low_threshold_fraction * threshold.threshold_suv
        if liver is not None:
            low = max(low, p.low_threshold_min_x_liver * liver.suv_mean)
        if p.low_threshold_fraction < 1.0 and low < threshold.threshold_suv:
            seg2 = segment_lesions(vol, method="fixed", threshold_suv=low,
                                   connectivity=p.connectivity,
                                   min_volume_ml=min(p.low_min_volume_ml, p.min_volume_ml))
            drop2 = _physiological(seg2.labels, seg2.boxes, vol.array, spacing,
                                   None if liver is None else liver.suv_mean, p)
            for k2, box2 in enumerate(seg2.boxes, start=1):
                if box2 is None or k2 in drop2:
                    continue
                m2 = seg2.labels[box2] == k2
                if np.any(seg.labels[box2][m2] > 0):
                    continue
                new_id = len(boxes) + 1
                labels[box2][m2] = new_id
                boxes.append(box2)
                tier2.add(new_id)
    with clock("pet_metrics"):
        mets = lesion_metrics(vol, labels, sul_per_suv=sul_per_suv, boxes=boxes)
    lesions: list[DetectedLesion] = []
    with clock("ct_measure"):
        for m, box in zip(mets, boxes, strict=True):
            sub = vol[box]
            pet_mask = sub.with_array((labels[box] == m.lesion_id).astype(np.uint8))
            try:
                cmask, meas, site, nodal, method = _ct_lesion(pet_mask, ct, p, m.centroid_lps_mm)
            except (GeometryError, InputError) as exc:
                notes.append(f"lesion {m.lesion_id}: no CT measurement ({exc})")
                cmask, meas, site, nodal, method = None, None, "soft tissue", False, {}
            peak = _finite(m.sul_peak) if m.sul_peak is not None else _finite(m.suv_peak.value)
            limit = threshold.threshold_sul if m.sul_peak is not None else threshold.threshold_suv
            if m.lesion_id in tier2 and not _ct_confirms(method, meas, p):
                notes.append(f"faint PET focus {m.lesion_id} (SUVmax {m.suv_max:.2f}) dropped: "
                             "no distinct CT lesion")
                continue
            if method.get("method", "").startswith("PET mask") and (peak or 0.0) < limit:
                # A faint focus below PERCIST measurability with no CT correlate: most
                # often a fragment of physiological uptake (myocardium) or noise.
                notes.append(f"PET component {m.lesion_id} excluded: SULpeak {peak or 0:.2f} "
                             f"below the PERCIST threshold {limit:.2f} and no CT correlate")
                continue
            if m.lesion_id in tier2:
                method = {**method, "detection": f"faint focus ≥ {low:.2f} SUV confirmed on CT"}
            det = DetectedLesion(f"d{m.lesion_id}", m, meas, cmask, site, nodal, method,
                                 pet_mask=pet_mask)
            if p.pvc_fwhm_mm:
                full = np.zeros(labels.shape, bool)
                full[box] = labels[box] == m.lesion_id
                _apply_pvc(det, vol, full, sul_per_suv, p.pvc_fwhm_mm)
            lesions.append(det)
    if p.ct_detect:
        with clock("ct_detect"):
            extra = detect_on_ct(ct, vol, lesions, None if liver is None else liver.suv_mean,
                                 sul_per_suv, p)
        for det in extra:
            notes.append(f"{det.label}: found on CT only ({det.site}, {det.ct.ld_mm:.1f} mm, "
                         f"SUVmax {det.pet.suv_max:.2f})")
        lesions.extend(extra)
    seg_json = {**seg.parameters(), "n_components": seg.n_lesions, "n_lesions": len(lesions),
                "low_threshold_suv": low, "physiological_exclusion": "docs/record.md"}
    # provenance of the threshold: where its reference VOIs were placed
    for key, region in (("liver_reference", liver), ("blood_pool_reference", blood)):
        if region is not None:
            seg_json[key] = {"shape": region.shape, "placement": region.placement,
                             "centre_lps_mm": [round(v, 2) for v in region.centre_lps_mm],
                             "anatomy_checks": list(region.anatomy_checks)}
        else:  # why it is missing (e.g. an automatic VOI whose anatomy was not proven)
            name = key.split("_reference")[0].replace("_", "-")
            seg_json[key] = {"unavailable": next(
                (n for n in notes if n.startswith(f"{name} reference unavailable")),
                "not placed")}
    seg_json["percist_threshold_reference"] = threshold.reference
    return TimepointAnalysis(tp, ct, sul_per_suv, liver, blood, threshold, lesions, seg_json,
                             notes, pet=vol)


def redetect_on_ct(analysis: TimepointAnalysis, previous: DetectedLesion,
                   predicted_lps_mm: Sequence[float], label: str,
                   params: AssessParams | None = None) -> DetectedLesion | None:
    """Look for a tracked lesion on CT where registration predicts it (PET found nothing).

    RECIST and Lugano measure on CT: a lesion that shrank below PET detectability is
    still present on CT. Around the predicted centre (within ``ct_margin_mm`` + the
    previous radius) the CT band rule of the previous measurement (its core and ring CT
    numbers) is applied; the connected component nearest the prediction (≤ 10 mm away,
    ≥ 5 voxels, at most twice the previous CT volume + 0.5 ml) is the lesion. Its PET
    metrics are computed inside that CT mask. None when nothing qualifies (the lesion
    is absent).
    """
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.ct import measure_ct_lesion
    from oncohybrid.quant.pet import lesion_metrics

    p = params or AssessParams()
    prm = previous.ct_method.get("parameters", {})
    if previous.ct is None or "core_hu" not in prm or "ring_hu" not in prm \
            or not previous.ct_method.get("method", "").startswith(("pet-located", "CT detection")):
        return None
    core_hu, ring_hu = float(prm["core_hu"]), float(prm["ring_hu"])
    ct = analysis.ct
    reach = previous.ct.ld_mm / 2.0 + p.ct_margin_mm
    c_idx = np.linalg.solve(ct.affine, np.append(np.asarray(predicted_lps_mm, float), 1.0))[:3]
    half = np.ceil(reach / np.asarray(ct.spacing)).astype(int) + 1
    a = np.maximum(np.floor(c_idx).astype(int) - half, 0)
    b = np.minimum(np.ceil(c_idx).astype(int) + half + 1, np.asarray(ct.spatial_shape))
    if np.any(b <= a):
        return None
    sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    hu = sub.array.astype(np.float32)
    sp = np.asarray(sub.spacing, float)
    smooth = ndimage.gaussian_filter(hu, [0.0 if sp[0] >= 3 else 0.5, 1.0, 1.0])
    mid = 0.5 * (core_hu + ring_hu)
    if ring_hu < core_hu:
        cand = (smooth >= mid) & (smooth <= core_hu + p.ct_max_band_hu)
    else:
        cand = (smooth <= mid) & (smooth >= core_hu - p.ct_max_band_hu)
    grid = np.indices(hu.shape, dtype=np.float32)
    local = c_idx - a
    dist = np.sqrt(sum(((grid[i] - local[i]) * sp[i]) ** 2 for i in range(3)))
    lab, n = ndimage.label(cand & (dist <= reach))
    if n == 0:
        return None
    best = None
    for i in range(1, n + 1):
        comp = lab == i
        d = float(dist[comp].min())
        if d <= 10.0 and (best is None or d < best[0]):
            best = (d, comp)
    if best is None:
        return None
    mask = ndimage.binary_fill_holes(best[1])
    vox_ml = float(np.prod(sp)) / 1000.0
    if mask.sum() < 5 or mask.sum() * vox_ml > 2 * previous.ct.volume_ml + 0.5:
        return None
    mvol = sub.with_array(mask.astype(np.uint8))
    meas = measure_ct_lesion(mvol, hu=hu)
    pet = analysis.pet
    on_pet = resample_to(mvol, pet, interpolation="nearest").array > 0
    if not on_pet.any():
        centre = np.rint(np.linalg.solve(pet.affine, np.append(
            np.asarray(predicted_lps_mm, float), 1.0))[:3]).astype(int)
        centre = np.clip(centre, 0, np.asarray(pet.spatial_shape) - 1)
        on_pet[tuple(centre)] = True
    labels = on_pet.astype(np.int32)
    met = lesion_metrics(pet, labels, sul_per_suv=analysis.sul_per_suv)[0]
    method = {"method": "CT re-detection at the registered position (not found on PET)",
              "parameters": {"core_hu": core_hu, "ring_hu": ring_hu, "reach_mm": round(reach, 1),
                             "offset_mm": round(best[0], 1)}}
    det = DetectedLesion(label, met, meas, mvol, previous.site, previous.nodal, method,
                         pet_mask=pet.with_array(labels.astype(np.uint8)))
    if p.pvc_fwhm_mm:
        _apply_pvc(det, pet, on_pet, analysis.sul_per_suv, p.pvc_fwhm_mm)
    return det


class _Clock:
    """Accumulates wall time per stage into a dict (for the benchmark)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings if timings is not None else {}

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self.timings, stage)


class _Stage:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + (
            time.perf_counter() - self.t0
        )


# ---------------------------------------------------------------------------------------
# Tracks: the neutral per-lesion table the cases are built from
# ---------------------------------------------------------------------------------------


@dataclass
class Track:
    """One lesion across timepoints: ``values[k]`` is None when absent at timepoint k."""

    id: str
    site: str
    nodal: bool
    first: int
    values: list[dict[str, float | None] | None]
    labels: list[str | None] = field(default_factory=list)


@dataclass
class Course:
    """What the cases are built from: dates, references per timepoint, and tracks."""

    patient_id: str
    dates: list[dt.date]
    references: list[dict[str, float]]
    tracks: list[Track]
    slice_thickness_mm: float = 5.0
    ttv_ml: list[float] = field(default_factory=list)


def track_course(patient_id: str, analyses: Sequence[TimepointAnalysis],
                 params: AssessParams | None = None,
                 timings: dict[str, float] | None = None) -> tuple[Course, Any, list[Any]]:
    """Register follow-ups to baseline, match lesions, and return the course.

    Returns ``(course, tracking_result, registrations)``; baseline lesions are named
    ``L1..Ln`` in descending SUVmax, new lesions continue the numbering.
    """
    from oncohybrid.imaging.register import register_ct
    from oncohybrid.tracking import LesionObservation, TimepointLesions, track_lesions

    p = params or AssessParams()
    clock = _Clock(timings)
    base = analyses[0]
    regs: list[Any] = [None]
    with clock("registration"):
        for a in analyses[1:]:
            regs.append(register_ct(base.ct, a.ct, resolution_mm=p.register_resolution_mm))
    names: list[dict[str, str]] = []
    tps = []
    for k, a in enumerate(analyses):
        if k == 0:
            name = {les.label: f"L{i}" for i, les in enumerate(a.lesions, start=1)}
        else:
            name = {les.label: f"{les.label}@{k}" for les in a.lesions}
        names.append(name)
        obs = [LesionObservation(name[les.label], les.pet.centroid_lps_mm,
                                 volume_ml=les.ct.volume_ml if les.ct else les.pet.mtv_ml,
                                 ld_mm=les.ct.ld_mm if les.ct else None, mask=les.ct_mask)
               for les in a.lesions]
        tps.append(TimepointLesions(obs, registration=regs[k], name=str(a.input.date)))
    counter = [len(analyses[0].lesions)]

    def new_id(_tp: int, _label: str) -> str:
        counter[0] += 1
        return f"L{counter[0]}"

    with clock("tracking"):
        result = track_lesions(tps, reference_grid=base.ct, new_id=new_id)
    by_name = [{names[k][les.label]: les for les in a.lesions} for k, a in enumerate(analyses)]
    with clock("ct_redetect"):
        _redetect(analyses, result, regs, by_name, p)
    tracks = []
    n = len(analyses)
    for lid, hist in result.history.items():
        first = next(k for k, lab in enumerate(hist) if lab is not None)
        les0 = by_name[first][hist[first]]
        values = [by_name[k][lab].measurements() if lab is not None else None
                  for k, lab in enumerate(hist)]
        labels = [by_name[k][lab].label if lab is not None else None for k, lab in enumerate(hist)]
        tracks.append(Track(lid, les0.site, les0.nodal, first, values, labels))
    tracks.sort(key=lambda t: (t.first, int(t.id[1:]) if t.id[1:].isdigit() else 0, t.id))
    ttv = [float(sum(les.pet.mtv_ml for les in a.lesions)) for a in analyses]
    course = Course(patient_id, [a.input.date for a in analyses],
                    [a.references() for a in analyses], tracks, ttv_ml=ttv)
    assert len(course.dates) == n
    return course, result, regs


def _redetect(analyses: Sequence[TimepointAnalysis], result: Any, regs: list[Any],
              by_name: list[dict[str, DetectedLesion]], p: AssessParams) -> None:
    """Fill tracked lesions missing on PET from CT (:func:`redetect_on_ct`), in place."""
    for lid, hist in result.history.items():
        for k in range(1, len(analyses)):
            if hist[k] is not None:
                continue
            prev = [j for j in range(k) if hist[j] is not None]
            if not prev:
                continue
            j = prev[-1]
            det = by_name[j][hist[j]]
            c = np.append(np.asarray(det.pet.centroid_lps_mm, float), 1.0)
            if det.ct_mask is not None and det.ct is not None:
                idx = np.argwhere(det.ct_mask.array > 0).mean(axis=0)
                c = det.ct_mask.affine @ np.append(idx, 1.0)
            m_j = np.eye(4) if regs[j] is None else regs[j].matrix_lps
            m_k = np.eye(4) if regs[k] is None else regs[k].matrix_lps
            pred = (np.linalg.inv(m_k) @ (m_j @ c))[:3]
            label = f"ct-{lid}"
            found = redetect_on_ct(analyses[k], det, pred, label, p)
            if found is not None:
                analyses[k].lesions.append(found)
                by_name[k][label] = found
                hist[k] = label
                analyses[k].notes.append(f"{lid}: not found on PET, re-detected on CT "
                                         f"({found.ct.ld_mm:.1f} mm)")


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


def propose_roles(course: Course) -> dict[str, dict[str, str]]:
    """Role per selection criterion (recist1.1, percist, lugano) and lesion id.

    Baseline lesions: :func:`propose_targets`; later lesions: ``new``.
    """
    from oncohybrid.response.selection import Candidate, propose_targets

    base = [t for t in course.tracks if t.first == 0]
    refs = course.references[0] if course.references else {}
    roles: dict[str, dict[str, str]] = {}
    for crit in ("recist1.1", "percist", "lugano"):
        cands = []
        for t in base:
            v = t.values[0] or {}
            cands.append(Candidate(
                t.id, t.site, nodal=t.nodal,
                ld_mm=_dec(v.get("ld_mm")), sa_mm=_dec(v.get("sa_mm")),
                sul_peak=_dec(v.get("sul_peak")),
            ))
        kw: dict[str, Any] = {}
        if crit == "percist":
            if "liver_sul_mean" in refs:
                kw = {"liver_sul_mean": _dec(refs["liver_sul_mean"]),
                      "liver_sul_sd": _dec(refs["liver_sul_sd"])}
            elif "blood_pool_sul_mean" in refs:
                kw = {"blood_pool_sul_mean": _dec(refs["blood_pool_sul_mean"]),
                      "blood_pool_sul_sd": _dec(refs["blood_pool_sul_sd"])}
        if crit == "recist1.1":
            kw = {"slice_thickness_mm": _dec(course.slice_thickness_mm)}
        if cands and (crit != "percist" or kw):
            sel = propose_targets(cands, crit, **kw)
            roles[crit] = {pr.id: pr.role.value for pr in sel.proposals}
        else:
            roles[crit] = {t.id: "non-target" for t in base}
        for t in course.tracks:
            if t.first > 0:
                roles[crit][t.id] = "new"
    return roles


def _dec(v: Any) -> float | None:
    """A measurement rounded to 0.01 (what the case file carries)."""
    if v is None:
        return None
    return round(float(v), 2)


def _len(values: dict[str, float | None] | None, key: str) -> float | str:
    if values is None:
        return "absent"
    v = values.get(key)
    return "not_evaluable" if v is None else round(float(v), 1)


def _val(values: dict[str, float | None] | None, key: str, nd: int = 2) -> float | str:
    if values is None:
        return "absent"
    v = values.get(key)
    return "not_evaluable" if v is None else round(float(v), nd)


def build_case(course: Course, criterion: str,
               roles: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The response case (docs/response-case.md) of ``course`` under ``criterion``."""
    key = criterion.strip().lower()
    family = FAMILIES.get(key)
    if family is None:
        raise InputError(f"--criteria: {criterion!r} cannot be assessed from images; "
                         f"supported: {', '.join(FAMILIES)}")
    roles = roles or propose_roles(course)
    crit_roles = roles[_SELECTION[family]]
    timepoints = []
    for k, date in enumerate(course.dates):
        refs = course.references[k] if k < len(course.references) else {}
        lesions = []
        for t in course.tracks:
            if k < t.first:
                continue
            role = crit_roles.get(t.id, "non-target")
            if role == "not-recorded":
                continue
            v = t.values[k]
            entry: dict[str, Any] = {"id": t.id}
            if k == t.first:
                entry.update(role=role, site=t.site, nodal=t.nodal)
            if family == "recist":
                if role == "target":
                    axis = "sa_mm" if t.nodal else "ld_mm"
                    entry[axis] = _len(v, axis)
                    if key == "choi":
                        entry["ld_mm"] = _len(v, "ld_mm")
                else:
                    entry["state"] = "absent" if v is None else (
                        "unequivocal" if role == "new" else "present")
                    if t.nodal and v is not None and role != "new":
                        entry["sa_mm"] = _len(v, "sa_mm")
                if key == "choi" and v is not None and v.get("hu_mean") is not None:
                    entry["hu_mean"] = round(float(v["hu_mean"]), 1)
            elif family in ("percist", "eortc", "recip"):
                entry["sul_peak"] = _val(v, "sul_peak")
                entry["suv_max"] = _val(v, "suv_max")
                if v is not None and v.get("tlg_suv_ml") is not None:
                    entry["tlg"] = round(float(v["tlg_suv_ml"]), 1)
            else:  # lugano family
                entry["ldi_mm"] = _len(v, "ld_mm")
                entry["sdi_mm"] = _len(v, "sa_mm")
                entry["suv_max"] = _val(v, "suv_max")
            lesions.append(entry)
        tp: dict[str, Any] = {"date": date.isoformat(), "lesions": lesions}
        if family in ("percist", "eortc", "lugano", "recip"):
            tp["references"] = {n: round(float(x), 3) for n, x in refs.items()}
        if family == "recist":
            tp["modality"] = "CT"
            if k == 0:
                tp["slice_thickness_mm"] = course.slice_thickness_mm
        if family == "recip":
            tp["ttv_ml"] = round(course.ttv_ml[k], 2) if k < len(course.ttv_ml) else 0
            tp["new_lesions"] = any(t.first == k and k > 0 for t in course.tracks)
        timepoints.append(tp)
    return {
        "criteria": key,
        "patient_id": course.patient_id,
        "treatment_start": course.dates[0].isoformat(),
        "timepoints": timepoints,
    }


def run_criteria(course: Course, criteria: Iterable[str],
                 roles: dict[str, dict[str, str]] | None = None
                 ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """criterion → (case, assessment JSON) for every criterion."""
    from oncohybrid.response import assess_case, load_case

    roles = roles or propose_roles(course)
    out = {}
    for name in criteria:
        case = build_case(course, name, roles)
        out[name] = (case, assess_case(load_case(case)).to_json())
    return out


# ---------------------------------------------------------------------------------------
# The use-case
# ---------------------------------------------------------------------------------------


@dataclass
class AssessResult:
    """Result of :func:`assess_patient`; ``to_json`` is what ``assess --json`` prints."""

    patient_id: str
    criteria: dict[str, dict[str, Any]]
    cases: dict[str, dict[str, Any]]
    course: Course
    roles: dict[str, dict[str, str]]
    tracking: dict[str, Any]
    timings_s: dict[str, float]
    notes: list[str] = field(default_factory=list)
    #: per timepoint, the reference VOIs read ({"liver": ReferenceRegion JSON or None,
    #: "blood_pool": ...}): where the references behind the cases' numbers were placed
    reference_vois: list[dict[str, Any]] = field(default_factory=list)
    #: dicom.tracer.TracerInfo JSON of each timepoint's PET series
    tracers: list[dict[str, Any] | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "criteria": self.criteria,
                "tracers": self.tracers}

    def best_overall(self) -> dict[str, str | None]:
        return {n: a.get("best_overall_response") for n, a in self.criteria.items()}


def parse_criteria(text: str | Sequence[str] | None) -> list[str]:
    """``"percist,recist1.1"`` → validated names (InputError names the bad one)."""
    if text is None:
        return list(DEFAULT_CRITERIA)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip().lower() for s in items if s.strip()]
    if not names:
        raise InputError("--criteria: no criterion given")
    for n in names:
        if n not in FAMILIES:
            raise InputError(f"--criteria: {n!r} cannot be assessed from images; "
                             f"supported: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def assess_patient(
    patient_id: str,
    criteria: str | Sequence[str] | None = None,
    settings: Settings | None = None,
    *,
    params: AssessParams | None = None,
    store: bool = True,
    progress: Callable[[str], None] | None = None,
) -> AssessResult:
    """Segment, measure, track, assess and record one patient (module docstring)."""
    from oncohybrid.services import record

    settings = settings or get_settings()
    names = parse_criteria(criteria)
    p = params or AssessParams()
    step = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    with clock("store_read"):
        inputs = group_timepoints(patient_id, settings)
    dates = [tp.date.isoformat() for tp in inputs]
    for date, regions in p.reference_centres.items():
        if date not in dates:
            raise InputError(f"reference VOI for {date}: patient {patient_id} has no timepoint "
                             f"on that date (timepoints: {', '.join(dates)})")
        unknown = set(regions) - {"liver", "blood_pool"}
        if unknown:
            raise InputError(f"reference VOI for {date}: unknown region(s) "
                             f"{', '.join(sorted(unknown))} (liver, blood_pool)")
    from oncohybrid.dicom.tracer import identify_tracer
    from oncohybrid.response.applicability import check_criteria
    from oncohybrid.services.quantify import _first_header

    tracers = []
    tracer_notes = []
    for tp in inputs:
        header = _first_header(tp.pet_files)
        tracer = None if header is None else identify_tracer(header)
        tracers.append(None if tracer is None else tracer.to_json())
        try:
            warn = check_criteria(names, tracer, allow_mismatch=p.allow_tracer_mismatch)
        except InputError as exc:
            raise InputError(f"patient {patient_id}, timepoint {tp.date}: {exc}") from exc
        tracer_notes.extend(f"{tp.date}: tracer: {w}" for w in dict.fromkeys(warn))
    analyses = []
    for k, tp in enumerate(inputs):
        step(f"timepoint {k} ({tp.date})")
        try:
            analyses.append(analyse_timepoint(tp, p, timings))
        except OncohybridError as exc:
            raise type(exc)(f"patient {patient_id}, timepoint {tp.date}: {exc}") from exc
    step("tracking")
    course, tracking, regs = track_course(patient_id, analyses, p, timings)
    notes = tracer_notes + [f"{a.input.date}: {n}" for a in analyses for n in a.notes]
    for k, r in enumerate(regs[1:], start=1):
        notes.extend(f"{analyses[k].input.date}: registration: {n}" for n in r.notes)
    roles = propose_roles(course)
    if store:
        with clock("store_write"):
            course = record.save_course(patient_id, analyses, course, roles, p, settings)
            roles = record.load_roles(patient_id, settings) or roles
    step("criteria")
    with clock("criteria"):
        results = run_criteria(course, names, roles)
    if store:
        with clock("store_write"):
            record.save_assessments(patient_id, results, settings)
    return AssessResult(
        patient_id=patient_id,
        criteria={n: a for n, (_c, a) in results.items()},
        cases={n: c for n, (c, _a) in results.items()},
        course=course,
        roles=roles,
        tracking=tracking.to_json(),
        timings_s=timings,
        notes=notes,
        tracers=tracers,
        reference_vois=[
            {"liver": None if a.liver is None else a.liver.to_json(),
             "blood_pool": None if a.blood_pool is None else a.blood_pool.to_json()}
            for a in analyses
        ],
    )


def reassess_from_record(settings: Settings, patient_id: str) -> dict[str, Any]:
    """Re-run the criteria of the last assessment on the record as it is now.

    Used after a physician's edit (role, match, manual measurement): the course is rebuilt
    from the observations *in use*, the references (liver/blood pool) and slice thickness
    come from the stored cases of the last assessment, and no image is re-segmented.
    Returns criterion → assessment JSON. Raises :class:`StoreError` when the patient was
    never assessed (the references come from the stored cases).
    """
    from oncohybrid.services import record as rec
    from oncohybrid.store.models_record import MEASUREMENTS

    data = rec.patient_record(patient_id, settings)
    latest = rec.latest_assessments(patient_id, settings)
    if not latest or not data["timepoints"]:
        raise StoreError(f"patient {patient_id}: no stored assessment to re-compute; "
                         "run `oncohybrid assess` first")
    dates = [t["date"] for t in data["timepoints"]]
    refs: list[dict[str, float]] = [{} for _ in dates]
    thickness = 5.0
    ttv: list[float | None] = [None] * len(dates)
    for a in latest.values():
        for tp in a["case"].get("timepoints", []):
            if tp.get("date") not in dates:
                continue
            k = dates.index(tp["date"])
            refs[k].update(tp.get("references") or {})
            if k == 0 and "slice_thickness_mm" in tp:
                thickness = float(tp["slice_thickness_mm"])
            if "ttv_ml" in tp:
                ttv[k] = float(tp["ttv_ml"])
    tracks = []
    for les in data["lesions"]:
        obs_dates = [o["date"] for o in les["observations"] if o["in_use"]]
        if not obs_dates:
            continue
        first = min(dates.index(d) for d in obs_dates)
        values: list[dict[str, float | None] | None] = [None] * len(dates)
        for k, d in enumerate(dates):
            o = next((o for o in les["observations"] if o["date"] == d and o["in_use"]), None)
            if o is not None and o["present"]:
                values[k] = {m: o.get(m) for m in MEASUREMENTS}
        tracks.append(Track(les["key"], les["site"], les["nodal"], first, values))

    def order(t: Track) -> tuple[int, int, str]:
        num = t.id[1:].split("@")[0]
        return (t.first, int(num) if num.isdigit() else 0, t.id)

    tracks.sort(key=order)
    for k in range(len(dates)):
        if ttv[k] is None:
            ttv[k] = float(sum((t.values[k] or {}).get("mtv_ml") or 0.0 for t in tracks))
    course = Course(patient_id, [dt.date.fromisoformat(d) for d in dates], refs, tracks,
                    thickness, [float(v or 0.0) for v in ttv])
    roles = rec.load_roles(patient_id, settings)
    for crit in ROLE_CRITERIA:
        roles.setdefault(crit, {})
    results = run_criteria(course, list(latest), roles)
    rec.save_assessments(patient_id, results, settings)
    return {n: a for n, (_c, a) in results.items()}
