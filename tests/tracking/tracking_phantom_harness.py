"""Registration + tracking harness on ``oncohybrid.phantom`` cohorts (test and benchmark).

Detections are the ground-truth lesions: for each timepoint a mask is rasterised on
that timepoint's CT grid from the truth (centre in scanner LPS, semi-axes along the
body axes rotated by the pose's rotation about z), and labels are shuffled so only
geometry can link them. Optionally an extra rigid shift is applied to a follow-up
(by moving its affine, CT and masks together) to stress repositioning.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from tracking_torso import score_tracking

from oncohybrid.dicom.volume import load_series
from oncohybrid.imaging.register import register_ct
from oncohybrid.tracking import LesionObservation, TimepointLesions, track_lesions


def _rz(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


def lesion_mask(ct: hd.Volume, centre_lps, semi_mm, rotation_deg: float) -> np.ndarray:
    """Voxels of the CT grid inside the lesion ellipsoid (bounding-box restricted)."""
    aff = ct.affine
    shape = ct.spatial_shape
    r = float(np.max(semi_mm)) + 1.0
    c = np.asarray(centre_lps, float)
    inv = np.linalg.inv(aff)
    corners = np.array([c + (np.array(d) * 2 - 1) * r for d in np.ndindex(2, 2, 2)])
    idx = corners @ inv[:3, :3].T + inv[:3, 3]
    lo = np.maximum(np.floor(idx.min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(0)).astype(int) + 1, np.asarray(shape))
    mask = np.zeros(shape, bool)
    if np.any(hi <= lo):
        return mask
    g = np.indices(tuple(hi - lo)).reshape(3, -1).T + lo
    p = g @ aff[:3, :3].T + aff[:3, 3]
    body = (p - c) @ _rz(rotation_deg)  # offsets along the lesion's body axes
    inside = ((body / np.asarray(semi_mm, float)) ** 2).sum(1) <= 1.0
    mask[tuple(g[inside].T)] = True
    return mask


def _moved(vol: hd.Volume, motion: np.ndarray) -> hd.Volume:
    return hd.Volume(vol.array, motion @ vol.affine, "PATIENT",
                     frame_of_reference_uid=vol.frame_of_reference_uid)


def _pet_detections(pt: hd.Volume, suv_factor: float, tp: dict, motion: np.ndarray,
                    suv_threshold: float, order: np.ndarray) -> tuple[list, dict[str, str]]:
    """Connected components of SUV >= threshold; each labelled with the GT lesion it
    overlaps most (unlabelled components, e.g. heart or bladder, are tracked but not
    scored)."""
    from scipy import ndimage

    suv = np.asarray(pt.array, float) * suv_factor
    comp, n = ndimage.label(suv >= suv_threshold, structure=np.ones((3, 3, 3)))
    gt_masks = {}
    for les in tp["lesions"]:
        if les["present"]:
            centre = np.asarray(les["centre_lps_mm"], float) + motion[:3, 3]
            m = lesion_mask(pt, centre, les["axes_mm"], tp["rotation_deg"])
            if m.any():
                gt_masks[les["id"]] = m
    obs, labels = [], {}
    vox_ml = abs(np.linalg.det(pt.affine[:3, :3])) / 1000
    sizes = ndimage.sum_labels(np.ones_like(comp), comp, index=np.arange(1, n + 1))
    for k in range(1, n + 1):
        if sizes[k - 1] < 3:
            continue
        m = comp == k
        label = f"pet{int(order[k % len(order)])}_{k}"
        best, best_ov = None, 0
        for gid, gm in gt_masks.items():
            ov = int((m & gm).sum())
            if ov > best_ov:
                best, best_ov = gid, ov
        if best is not None and best not in labels.values():
            labels[label] = best
        idx = np.argwhere(m).mean(0)
        centre = pt.affine[:3, :3] @ idx + pt.affine[:3, 3]
        mask = hd.Volume(m.astype(np.uint8), pt.affine, "PATIENT",
                         frame_of_reference_uid=pt.frame_of_reference_uid)
        obs.append(LesionObservation(label, tuple(centre), float(m.sum() * vox_ml), mask=mask))
    return obs, labels


_SERIES: dict[Path, hd.Volume] = {}


def _load(path: Path) -> hd.Volume:
    if path not in _SERIES:
        if len(_SERIES) > 16:  # a patient's series at most; keep memory bounded
            _SERIES.clear()
        _SERIES[path] = load_series(path)
    return _SERIES[path]


def run_patient(
    root: Path,
    ptruth: dict[str, Any],
    rng: np.random.Generator,
    *,
    extra_shift_mm: tuple[float, float] = (0.0, 0.0),
    use_registration: bool = True,
    pet: bool = False,
    pet_suv_threshold: float = 3.5,
) -> dict[str, Any]:
    """Track one phantom patient; returns scores, registration errors and timings.

    With ``pet=True`` a second tracking run uses PET threshold components as the
    detections (same registrations); its score is under ``"pet"``.
    """
    tps, gt, reg_err, reg_time, rel_shift, rel_rot = [], [], [], [], [], []
    pet_tps, pet_gt = [], []
    base_ct = None
    base_centres: dict[str, np.ndarray] = {}
    for k, tp in enumerate(ptruth["timepoints"]):
        ct = _load(root / tp["ct_dir"])
        motion = np.eye(4)
        if k > 0 and extra_shift_mm[1] > 0:
            # Redraw until the total repositioning against baseline is at least the
            # lower bound (a random direction may cancel the phantom's own shift).
            own = np.asarray(tp["shift_mm"]) - np.asarray(ptruth["timepoints"][0]["shift_mm"])
            for _ in range(100):
                d = rng.normal(size=3)
                motion[:3, 3] = d / np.linalg.norm(d) * rng.uniform(*extra_shift_mm)
                if np.linalg.norm(own + motion[:3, 3]) >= extra_shift_mm[0]:
                    break
        ct = _moved(ct, motion)
        obs, labels = [], {}
        order = rng.permutation(len(tp["lesions"]))
        for n, i in enumerate(order):
            les = tp["lesions"][i]
            if not les["present"]:
                continue
            centre = np.asarray(les["centre_lps_mm"], float) @ motion[:3, :3].T + motion[:3, 3]
            m = lesion_mask(ct, centre, les["axes_mm"], tp["rotation_deg"])
            if not m.any():
                continue
            label = f"seg{n}"
            labels[label] = les["id"]
            mask = hd.Volume(m.astype(np.uint8), ct.affine, "PATIENT",
                             frame_of_reference_uid=ct.frame_of_reference_uid)
            obs.append(LesionObservation(label, tuple(centre), float(les["volume_ml"]),
                                         mask=mask))
        reg = None
        if k == 0:
            base_ct = ct
            base_centres = {les["id"]: np.asarray(les["centre_lps_mm"], float)
                            for les in tp["lesions"]}
        else:
            b = ptruth["timepoints"][0]
            rel_shift.append(float(np.linalg.norm(
                np.asarray(tp["shift_mm"]) + motion[:3, 3] - np.asarray(b["shift_mm"]))))
            rel_rot.append(abs(tp["rotation_deg"] - b["rotation_deg"]))
            if use_registration:
                t0 = time.perf_counter()
                reg = register_ct(base_ct, ct)
                reg_time.append(time.perf_counter() - t0)
                for les in tp["lesions"]:
                    c = np.asarray(les["centre_lps_mm"], float) + motion[:3, 3]
                    reg_err.append(float(np.linalg.norm(
                        reg.map_points(c)[0] - base_centres[les["id"]])))
        tps.append(TimepointLesions(obs, registration=reg))
        gt.append(labels)
        if pet:
            pt = _moved(_load(root / tp["pt_dir"]), motion)
            pobs, plabels = _pet_detections(pt, tp["suvbw_factor"], tp, motion,
                                            pet_suv_threshold, order)
            pet_tps.append(TimepointLesions(pobs, registration=reg))
            pet_gt.append(plabels)
    result = track_lesions(tps, reference_grid=base_ct)
    score = score_tracking(result, gt)
    score.update(reg_err_mm=reg_err, reg_time_s=reg_time, rel_shift_mm=rel_shift,
                 rel_rotation_deg=rel_rot)
    if pet:
        pres = track_lesions(pet_tps, reference_grid=base_ct)
        score["pet"] = score_tracking(pres, pet_gt)
    return score
