"""Ground-truth courses of phantom patients and the scoring of an assess run against them.

The ground-truth course is built only from the phantom's ``ground_truth.json`` (true
ld_mm/sa_mm, true SUVs, true liver and blood-pool SUVs), and runs through the same case
builder and response engines as the pipeline, so category differences come from the
measurements and the tracking, not from the case logic.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from oncohybrid.services.assess import Course, Track

#: Liver SD as a fraction of the mean in noisy phantoms (docs/phantom.md: SD ≈ 10 % in liver).
LIVER_SD_FRACTION = 0.10


def truth_course(patient: dict[str, Any], noise_free: bool = False) -> Course:
    tps = patient["timepoints"]
    refs = []
    for tp in tps:
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
        for tp, o in zip(tps, obs, strict=True):
            if not o["present"]:
                values.append(None)
                continue
            ratio = tp["sul_factor"] / tp["suvbw_factor"]
            suv = o["true_suv"]
            values.append({
                "ld_mm": o["ld_mm"], "sa_mm": o["sa_mm"], "ppd_mm2": o["ld_mm"] * o["sa_mm"],
                "volume_ml": o["volume_ml"], "hu_mean": o["ct_hu"], "suv_max": suv,
                "suv_peak": suv, "sul_peak": suv * ratio, "mtv_ml": o["volume_ml"],
                "tlg_suv_ml": suv * o["volume_ml"],
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
