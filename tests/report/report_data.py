"""Build ``PatientReportData`` from an ``oncohybrid.phantom`` cohort and the response engine.

Independent of the store and of segmentation: lesion masks are the phantom's analytic
ellipsoids rasterised on the PET grid, sizes come from the ground truth, SUVmax is read
from the SUV volume inside the mask, categories come from the response engine run on a
case built from the ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from oncohybrid.dicom.suv import suv_volume
from oncohybrid.dicom.volume import load_series
from oncohybrid.report.data import (
    CohortPoint,
    LesionInfo,
    LesionMeasurement,
    PatientIdentity,
    PatientReportData,
    TimepointImages,
    TimepointInfo,
)
from oncohybrid.response.parse import load_case
from oncohybrid.response.registry import get_assessor


def ellipsoid_mask(volume, centre, semi_axes, rotation_deg: float) -> np.ndarray:
    """Voxels of ``volume``'s grid whose centre lies inside the phantom ellipsoid."""
    shape = volume.spatial_shape
    idx = np.indices(shape).reshape(3, -1).astype(float)
    pts = (volume.affine[:3, :3] @ idx + volume.affine[:3, 3:4]).T - np.asarray(centre)
    th = math.radians(rotation_deg)
    # p_scanner = Rz(th) p_body: body = Rz(-th) p
    bx = math.cos(th) * pts[:, 0] + math.sin(th) * pts[:, 1]
    by = -math.sin(th) * pts[:, 0] + math.cos(th) * pts[:, 1]
    bz = pts[:, 2]
    a, b, c = semi_axes
    inside = (bx / a) ** 2 + (by / b) ** 2 + (bz / c) ** 2 <= 1.0
    return inside.reshape(shape)


def roles(patient: dict) -> dict[str, str]:
    """RECIST-like roles: ≤ 5 measurable baseline lesions (≤ 2 per site) are targets."""
    base = patient["timepoints"][0]["lesions"]
    out: dict[str, str] = {}
    per_site: dict[str, int] = {}
    n = 0
    for les in base:
        if not les["present"]:
            continue
        size = les["sa_mm"] if les["nodal"] else les["ld_mm"]
        ok = size >= (15.0 if les["nodal"] else 10.0)
        if ok and n < 5 and per_site.get(les["site"], 0) < 2:
            out[les["id"]] = "target"
            per_site[les["site"]] = per_site.get(les["site"], 0) + 1
            n += 1
        else:
            out[les["id"]] = "non-target"
    for tp in patient["timepoints"][1:]:
        for les in tp["lesions"]:
            out.setdefault(les["id"], "new")
    return out


def recist_case(patient: dict, role_of: dict[str, str]) -> dict:
    tps = []
    for tp in patient["timepoints"]:
        lesions = []
        for les in tp["lesions"]:
            role = role_of[les["id"]]
            if tp["index"] == 0 and role == "new":
                continue
            if role == "new" and not les["present"]:
                continue
            entry: dict = {"id": les["id"], "role": role, "site": les["site"],
                           "nodal": les["nodal"]}
            if role == "target":
                entry["ld_mm"] = round(les["ld_mm"], 1) if les["present"] else 0
                if les["nodal"]:
                    entry["sa_mm"] = round(les["sa_mm"], 1) if les["present"] else 0
            else:
                entry["state"] = "present" if les["present"] else "absent"
            lesions.append(entry)
        tps.append({"date": tp["date"], "lesions": lesions})
    return {"criteria": "recist1.1", "patient_id": patient["patient_id"], "timepoints": tps}


def percist_case(patient: dict, role_of: dict[str, str], suvmax: dict) -> dict:
    tps = []
    lbm_ratio = patient["lbm_kg"] / patient["weight_kg"]
    for tp in patient["timepoints"]:
        lesions = []
        for les in tp["lesions"]:
            if not les["present"] or (tp["index"] == 0 and role_of[les["id"]] == "new"):
                continue
            role = "new" if role_of[les["id"]] == "new" else "target"
            sul = suvmax[(tp["label"], les["id"])] * lbm_ratio * 0.85  # peak ≈ 85 % of max
            lesions.append({"id": les["id"], "role": role, "sul_peak": round(sul, 2)})
        liver_sul = tp["liver_suv_mean"] * lbm_ratio
        tps.append({"date": tp["date"], "lesions": lesions,
                    "references": {"liver_sul_mean": round(liver_sul, 2),
                                   "liver_sul_sd": round(0.1 * liver_sul, 2)}})
    return {"criteria": "percist", "timepoints": tps}


def build(root: Path, patient: dict, *, images: bool = True, cohort: list[dict] | None = None,
          reader: str = "Dr A. Reader") -> PatientReportData:
    """The report data of one phantom patient (``root`` = the cohort folder)."""
    pid = patient["patient_id"]
    role_of = roles(patient)
    timepoints: list[TimepointInfo] = []
    lesions = {
        lid: LesionInfo(lesion_id=lid, tracking_uid=generate_uid(entropy_srcs=[pid, lid]),
                        role=role_of[lid])
        for lid in patient["lesion_ids"]
    }
    suvmax: dict[tuple[str, str], float] = {}
    for tp in patient["timepoints"]:
        imgs = None
        pet = None
        if images:
            pet, _ = suv_volume(root / tp["pt_dir"])
            ct = load_series(root / tp["ct_dir"])
            files = sorted((root / tp["pt_dir"]).glob("*.dcm"))
            imgs = TimepointImages(pet_suv=pet, ct=ct,
                                   pet_datasets=[pydicom.dcmread(f) for f in files])
        for les in tp["lesions"]:
            info = lesions[les["id"]]
            info.site, info.nodal = les["site"], les["nodal"]
            if les["new"] is False and not les["present"] and tp["index"] > 0:
                pass
            smax = None
            if les["present"]:
                smax = float(les["true_suv"])
                if pet is not None:
                    mask = ellipsoid_mask(pet, les["centre_lps_mm"], les["axes_mm"],
                                          tp["rotation_deg"])
                    if mask.any():
                        imgs.lesion_masks[les["id"]] = mask
                        smax = float(pet.array[mask].max())
            suvmax[(tp["label"], les["id"])] = smax or 0.0
            if tp["index"] == 0 and info.role == "new":
                continue
            if info.role == "new" and not les["present"] and not les["new"]:
                continue
            info.measurements[tp["label"]] = LesionMeasurement(
                present=les["present"],
                ld_mm=les["ld_mm"] if les["present"] else None,
                sa_mm=les["sa_mm"] if les["present"] else None,
                volume_ml=les["volume_ml"] if les["present"] else None,
                suv_max=smax,
                centroid_lps_mm=tuple(les["centre_lps_mm"]),
            )
        timepoints.append(TimepointInfo(
            label=tp["label"], date=dt.date.fromisoformat(tp["date"]),
            study_uid=tp["study_uid"], accession_number=tp["accession_number"],
            description="PET/CT FDG whole body", pet_series_uid=tp["pt_series_uid"],
            ct_series_uid=tp["ct_series_uid"], images=imgs,
        ))
    assessments = {
        "recist1.1": get_assessor("recist1.1")(load_case(json.dumps(
            recist_case(patient, role_of)))).to_json(),
        "percist": get_assessor("percist")(load_case(json.dumps(
            percist_case(patient, role_of, suvmax)))).to_json(),
    }
    points = []
    for other in cohort or []:
        a = get_assessor("recist1.1")(load_case(json.dumps(
            recist_case(other, roles(other))))).to_json()
        changes = [t["change_from_baseline_pct"] for t in a["timepoints"]
                   if t.get("change_from_baseline_pct") is not None]
        if changes:
            points.append(CohortPoint(other["patient_id"], min(changes),
                                      a["best_overall_response"],
                                      other["patient_id"] == pid))
    ident = PatientIdentity(
        patient_id=pid, name=patient["patient_name"], sex=patient["sex"],
        birth_date=dt.date.fromisoformat(patient["birth_date"]), age_years=patient["age_years"],
    )
    ordered = [lesions[lid] for lid in patient["lesion_ids"] if lesions[lid].measurements]
    return PatientReportData(identity=ident, timepoints=timepoints, lesions=ordered,
                             assessments=assessments, cohort=points, reader=reader,
                             report_date=dt.date(2025, 1, 15))
