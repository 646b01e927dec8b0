"""Ground-truth courses of phantom patients and the scoring of an assess run against them.

What a ground-truth measurement is (docs/record.md, "Ground truth of the phantom tests"):
the **true lesions measured on the images**, by a reader who knows exactly where each
lesion is and how far it extends. Two variants:

- **Acquired image** (the acceptance truth): PET values read on the PET as acquired,
  noise included, inside the true lesion; references read in the pipeline's VOIs where
  the noise-free image confirms they lie in uniform liver / blood
  (:func:`valid_reference_centres`: PERCIST asks for a 3 cm sphere in normal right-lobe
  parenchyma, not a particular place, and two valid places read means up to ±5 % apart
  on these images), otherwise at the phantom's reference places. Differences from the
  pipeline then come from segmentation, tracking and measurement, not from the noise
  both see.
- **Noise-free image** (reported alongside): PET values of the noise-free image of the
  same patient and visit (``generate_cohort(..., noise_free=True)`` with the same seed:
  same geometry, doses and references, :func:`check_same_geometry`), references = the
  painted liver and blood-pool SUVs with a liver SD of 10 % of the mean (the phantom's
  noise). A value that the noise moves across a cut-off (a lesion SUVmax at 3 × liver,
  a SULpeak change at 0 %) gives a different category here on any scanner.

Common to both:

- **CT** (RECIST, Lugano size): the phantom's true ``ld_mm`` / ``sa_mm`` of the largest
  cross-section the CT's slices show (:func:`ct_slice_fraction`; the equatorial values
  for the painted-SUV truth) and the true volume.
- **PET** (PERCIST, Lugano/Deauville): SUVmax and the PERCIST SUVpeak (1 cm³ sphere,
  centre in the VOI, :func:`oncohybrid.quant.pet.suv_peak`, checked against brute force in
  tests/quant) inside the **true** lesion (true centre, semi-axes and rotation from
  ``ground_truth.json``), converted with the phantom's own SUVbw/SUL factors (SUL = SUV ×
  sul_factor / suvbw_factor), never with oncohybrid.dicom.suv.
- **TLG**: SUV summed over the voxels at or above the PERCIST threshold near the true
  lesion (:func:`pet_truth`), as a threshold method measures it.
- **Measurability**: a lesion whose SULpeak is below the PERCIST 1.0 measurability
  threshold (1.5 × liver SULmean + 2 SD, Wahl 2009) is not measurable in the truth either:
  it cannot be a PERCIST target (the same target selection applies), and when no baseline
  lesion reaches the threshold the follow-ups are NE, as the paper says.

Without images (``pet=None``) the PET truth falls back to the painted SUV (the physical
activity, which no scanner of finite resolution measures in small lesions). The course
runs through the same case builder and response engines as the pipeline, so category
differences come from the measurements and the tracking, not from the case logic.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.tracking.course import Course, Track

#: Liver SD as a fraction of the mean in noisy phantoms (docs/phantom.md: SD ≈ 10 % in liver).
LIVER_SD_FRACTION = 0.10

#: Resolution (FWHM, mm) of the phantom's PET (ground_truth.json ``pet_fwhm_mm``).
PET_FWHM_MM = 6.0

#: ground_truth.json keys that legitimately differ between a noisy and a noise-free cohort.
_UID_KEYS = {"study_uid", "ct_series_uid", "pt_series_uid", "frame_of_reference_uid"}


def pet_suvbw(root: str | Path, patient: dict[str, Any]) -> list[Any]:
    """The PET of each timepoint of ``patient`` in the cohort at ``root``, as SUVbw.

    ``root`` is the cohort's folder: the acquired (noisy) cohort for the acquired-image
    truth, the noise-free twin for the noise-free truth. SUVbw = stored value ×
    ``suvbw_factor`` of the phantom's ground truth (independent of oncohybrid.dicom.suv);
    highdicom Volumes.
    """
    from oncohybrid.dicom.volume import load_series

    out = []
    for tp in patient["timepoints"]:
        vol = load_series(Path(root) / tp["pt_dir"])
        out.append(vol.with_array(vol.array.astype(np.float32) * np.float32(tp["suvbw_factor"])))
    return out


def check_same_geometry(noisy: dict[str, Any], noise_free: dict[str, Any]) -> None:
    """Assert that two cohorts' ground truths differ only in UIDs and the noise flag."""

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()
                    if k not in _UID_KEYS and k not in ("noise_free", "pt_dir", "ct_dir")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    a, b = strip(noisy), strip(noise_free)
    assert a == b, "noise-free cohort differs from the noisy one beyond UIDs"


def true_mask(vol: Any, lesion: dict[str, Any], rotation_deg: float,
              grow_mm: float = 0.0) -> np.ndarray:
    """Voxels of ``vol`` whose centre lies in the true lesion ellipsoid (nearest voxel if none).

    Semi-axes are along the body x, y, z axes, the body rotated by ``rotation_deg`` about z
    (ground_truth.json ``axes_kind``); ``grow_mm`` is added to each semi-axis.
    """
    shape = np.asarray(vol.spatial_shape)
    c = np.asarray(lesion["centre_lps_mm"], float)
    semi = np.asarray(lesion["axes_mm"], float) + grow_mm
    inv = np.linalg.inv(vol.affine)
    cidx = (inv @ np.append(c, 1.0))[:3]
    reach = (semi.max() + 2.0) / np.asarray(vol.spacing, float)
    lo = np.maximum(np.floor(cidx - reach).astype(int), 0)
    hi = np.minimum(np.ceil(cidx + reach).astype(int) + 1, shape)
    mask = np.zeros(tuple(shape), bool)
    if np.any(hi <= lo):
        return mask
    idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)],
                               indexing="ij"), axis=-1).reshape(-1, 3)
    lps = idx @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    t = math.radians(rotation_deg)
    rot = np.array([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0],
                    [0.0, 0.0, 1.0]])
    body = (lps - c) @ rot  # R^T (p - c), row-vector form
    inside = np.sum((body / semi) ** 2, axis=1) <= 1.0
    nearest = np.clip(np.rint(cidx), 0, shape - 1).astype(int)[None, :]
    sel = idx[inside] if inside.any() else nearest
    mask[sel[:, 0], sel[:, 1], sel[:, 2]] = True
    return mask


def pet_truth(vol: Any, lesion: dict[str, Any], rotation_deg: float, threshold_suv: float
              ) -> tuple[float, float, float]:
    """(SUVmax, PERCIST SUVpeak, TLG) of the true lesion in the noise-free SUV ``vol``.

    TLG (SUV·ml) as a threshold method measures it on this scanner: the noise-free voxels
    at or above the PERCIST threshold ``threshold_suv`` within the true lesion grown by
    the PET FWHM (the blur spreads the lesion that far), summed × voxel volume; 0 for a
    lesion below the threshold.
    """
    from oncohybrid.quant.pet import suv_peak

    mask = true_mask(vol, lesion, rotation_deg)
    peak = suv_peak(vol, mask).value
    near = true_mask(vol, lesion, rotation_deg, grow_mm=PET_FWHM_MM)
    hot = near & (vol.array >= threshold_suv)
    tlg = float(vol.array[hot].sum()) * float(np.prod(vol.spacing)) / 1000.0
    return float(vol.array[mask].max()), float(peak), tlg


def image_references(vol: Any, tp: dict[str, Any], liver_centre: Any = None,
                     blood_centre: Any = None) -> dict[str, float]:
    """PERCIST/Deauville references read on ``vol`` (SUVbw) in VOIs at the given centres.

    The liver 3 cm sphere and the 1 × 2 cm aortic cylinder (oncohybrid.quant.references
    with manual placement), by default at the phantom's true places
    (``liver_reference_centre_lps_mm``, ``blood_pool_centre_lps_mm``), with the reference
    keys the pipeline writes (SUL for PERCIST, the VOI means for Deauville).
    """
    from oncohybrid.quant.references import blood_pool_reference, liver_reference
    from oncohybrid.services.assess import case_references

    ratio = tp["sul_factor"] / tp["suvbw_factor"]
    liver = liver_reference(
        vol, sul_per_suv=ratio,
        centre_lps_mm=tp["liver_reference_centre_lps_mm"] if liver_centre is None
        else liver_centre)
    blood = blood_pool_reference(
        vol, sul_per_suv=ratio,
        centre_lps_mm=tp["blood_pool_centre_lps_mm"] if blood_centre is None else blood_centre)
    return case_references(liver, blood)


def valid_reference_centres(noise_free: list[Any], patient: dict[str, Any],
                            vois: list[dict[str, Any]]) -> list[tuple[Any, Any, bool, bool]]:
    """Per timepoint (liver centre, blood-pool centre, liver VOI valid, blood VOI valid).

    PERCIST 1.0 (Wahl 2009) asks for a 3 cm sphere in normal right-lobe parenchyma, not
    one particular place, and on these images two valid placements read means up to ±5 %
    apart (the noise is spatially correlated). So the truth accepts the pipeline's VOI
    (``AssessResult.reference_vois``) where the **noise-free** image shows it is valid -
    uniform tissue at the painted value: mean within 2 % and no voxel above 5 % of the
    painted liver; blood pool: mean within 10 % of the painted blood, as the blurred wall
    of the 24 mm phantom aorta lowers a 10 mm cylinder 2-4 mm off its axis by 5-10 %,
    while one outside the lumen reads 20-80 % low - and otherwise
    places it at the phantom's reference place. A VOI that touches a lesion, an organ
    edge or another tissue fails these checks.
    """
    from oncohybrid.quant.references import blood_pool_reference, liver_reference, sphere_mask

    out = []
    for k, tp in enumerate(patient["timepoints"]):
        voi = vois[k] if k < len(vois) else {}
        liver_c = blood_c = None
        liver_ok = blood_ok = False
        if voi.get("liver"):
            c = voi["liver"]["centre_lps_mm"]
            region = liver_reference(noise_free[k], centre_lps_mm=c)
            painted = tp["liver_suv_mean"]
            mask = sphere_mask(_grid(noise_free[k]), c, 30.0)
            peak = float(noise_free[k].array[mask].max()) if mask.any() else np.inf
            liver_ok = abs(region.suv_mean / painted - 1) <= 0.02 and peak <= 1.05 * painted
            liver_c = c if liver_ok else None
        if voi.get("blood_pool"):
            c = voi["blood_pool"]["centre_lps_mm"]
            region = blood_pool_reference(noise_free[k], centre_lps_mm=c)
            blood_ok = abs(region.suv_mean / tp["blood_pool_suv"] - 1) <= 0.10
            blood_c = c if blood_ok else None
        out.append((liver_c, blood_c, liver_ok, blood_ok))
    return out


def _grid(vol: Any) -> Any:
    from oncohybrid.segment.grid import as_grid

    return as_grid(vol)[1]


def ct_slice_fraction(lesion: dict[str, Any], ct_grid: dict[str, Any]) -> float:
    """Size of the lesion's largest cross-section in the CT's slices, as a fraction of its
    equator (1.0 when a slice centre passes through its centre).

    The phantom's CT is painted at voxel centres (no slab averaging), so the slice whose
    centre lies nearest the lesion's centre shows the ellipse √(1 − (d/c)²) × the
    equatorial one (c: the semi-axis along z - rotations are about z only; d: that
    slice's distance). With 5 mm slices and a 16 mm lesion this is down to 0.95: an
    axial measurement cannot see more, so neither does the truth on this scanner.
    """
    z0, dz = float(ct_grid["origin_lps_mm"][2]), float(ct_grid["spacing_mm"][0])
    cz, c = float(lesion["centre_lps_mm"][2]), float(lesion["axes_mm"][2])
    k = round((cz - z0) / dz)
    d = abs(z0 + k * dz - cz)
    return math.sqrt(max(0.0, 1.0 - (d / c) ** 2)) if d < c else 1.0


def truth_course(patient: dict[str, Any], noise_free: bool = False,
                 pet: list[Any] | None = None, references_from_image: bool = False,
                 reference_centres: list[tuple[Any, Any, bool, bool]] | None = None) -> Course:
    """The ground-truth course (module docstring).

    ``pet``: :func:`pet_suvbw` of the acquired or the noise-free cohort;
    ``references_from_image``: :func:`image_references` on ``pet`` (VOIs at
    ``reference_centres`` from :func:`valid_reference_centres`, else at the phantom's
    reference places) instead of the painted liver and blood-pool values.
    """
    tps = patient["timepoints"]
    refs = []
    for k, tp in enumerate(tps):
        if references_from_image and pet is not None:
            liver_c, blood_c = (reference_centres[k][:2] if reference_centres
                                else (None, None))
            refs.append(image_references(pet[k], tp, liver_c, blood_c))
            continue
        ratio = tp["sul_factor"] / tp["suvbw_factor"]
        liver, blood = tp["liver_suv_mean"], tp["blood_pool_suv"]
        sd = 0.0 if noise_free else LIVER_SD_FRACTION
        refs.append({
            "liver_sul_mean": liver * ratio, "liver_sul_sd": sd * liver * ratio,
            "liver_suv_max": liver,
            "blood_pool_sul_mean": blood * ratio, "blood_pool_sul_sd": sd * blood * ratio,
            "mediastinum_suv_max": blood,
        })
    tracks = []
    ids = [les["id"] for les in tps[0]["lesions"]]
    for lid in ids:
        obs = [next(les for les in tp["lesions"] if les["id"] == lid) for tp in tps]
        present = [o["present"] for o in obs]
        if not any(present):
            continue
        first = present.index(True)
        values: list[dict[str, float | None] | None] = []
        for k, (tp, o) in enumerate(zip(tps, obs, strict=True)):
            if not o["present"]:
                values.append(None)
                continue
            ratio = tp["sul_factor"] / tp["suvbw_factor"]
            if pet is None:
                suv_max = suv_peak = o["true_suv"]
                tlg = o["true_suv"] * o["volume_ml"]
            else:
                r = refs[k]
                thr_sul = 1.5 * r["liver_sul_mean"] + 2.0 * r["liver_sul_sd"]  # Wahl 2009
                suv_max, suv_peak, tlg = pet_truth(pet[k], o, tp["rotation_deg"],
                                                   thr_sul / ratio)
            ld, sa = o["ld_mm"], o["sa_mm"]
            if pet is not None:  # on this scanner: the cross-section its CT slices show
                f = ct_slice_fraction(o, tp["ct_grid"])
                ld, sa = ld * f, sa * f
            values.append({
                "ld_mm": ld, "sa_mm": sa, "ppd_mm2": ld * sa,
                "volume_ml": o["volume_ml"], "hu_mean": o["ct_hu"], "suv_max": suv_max,
                "suv_peak": suv_peak, "sul_peak": suv_peak * ratio, "mtv_ml": o["volume_ml"],
                "tlg_suv_ml": tlg,
            })
        tracks.append(Track(lid, obs[first]["site"], obs[first]["nodal"], first, values))
    ttv = [sum(les["volume_ml"] for les in tp["lesions"] if les["present"]) for tp in tps]
    return Course(patient["patient_id"], [dt.date.fromisoformat(tp["date"]) for tp in tps],
                  refs, tracks, ttv_ml=ttv)


def true_identity(centroid: Any, tp: dict[str, Any], tol_mm: float = 12.0) -> str | None:
    c = np.asarray(centroid, float)
    best = None
    for les in tp["lesions"]:
        if not les["present"]:
            continue
        d = float(np.linalg.norm(c - np.asarray(les["centre_lps_mm"], float)))
        if d <= tol_mm and (best is None or d < best[0]):
            best = (d, les["id"])
    return None if best is None else best[1]


def score_matches(course: Course, centroids: list[dict[str, Any]], patient: dict[str, Any]
                  ) -> tuple[int, int]:
    """(correct, total) follow-up decisions: matched to the right lesion, or rightly new.

    ``centroids[k]`` maps each detection label of timepoint k to its centroid (LPS mm).
    """
    tps = patient["timepoints"]
    correct = total = 0
    for t in course.tracks:
        ident = [None if lab is None else true_identity(centroids[k][lab], tps[k])
                 for k, lab in enumerate(t.labels)]
        for k in range(1, len(tps)):
            if t.labels[k] is None:
                continue
            total += 1
            earlier = [i for i in ident[:k] if i is not None]
            if k == t.first:  # declared new: right if no earlier detection was this lesion
                seen_before = {
                    true_identity(centroids[j][lab], tps[j])
                    for j in range(k) for lab in centroids[j]
                }
                correct += ident[k] is not None and ident[k] not in seen_before
            else:
                correct += ident[k] is not None and earlier[-1:] == [ident[k]]
    return correct, total
