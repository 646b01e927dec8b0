"""Bridge from the web pages to the longitudinal record, assessment and report services.

Those services are separate parts of the platform (:mod:`oncohybrid.services.record`,
:mod:`oncohybrid.services.assess`, :mod:`oncohybrid.services.report`); the pages show
what exists: without a stored record the timeline lists the imaging visits, the lesion
table says that no lesions are recorded, and the PDF route answers 404 with the reason.

Edits made by physicians go through :mod:`oncohybrid.services.reading` under the record's
rules (manual roles and observations are kept beside the automatic ones, never
overwriting them); this module only parses, serialises edits and shapes the pages' data.
This layer reaches the study database only through services (docs/architecture.md,
import-linter). After an edit the response is re-computed from the record by
:func:`oncohybrid.services.assess.reassess_from_record` (no image is re-segmented, so a
role change answers in milliseconds).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.config import Settings
from oncohybrid.errors import InputError, StoreError
from oncohybrid.services import reading
from oncohybrid.services import record as record_service
from oncohybrid.services import report as report_service
from oncohybrid.services import viewer as viewer_service
from oncohybrid.services.assess import ROLE_CRITERIA, reassess_from_record

__all__ = [
    "build_report",
    "timeline",
    "study_lesions",
    "label_volume",
    "lesion_table",
    "lesion_history",
    "set_role",
    "fix_match",
    "add_measurement",
]

#: Display names of criteria keys.
CRITERION_NAMES = {"recist1.1": "RECIST 1.1", "percist": "PERCIST", "lugano": "Lugano",
                   "irecist": "iRECIST", "choi": "Choi", "eortc": "EORTC",
                   "lugano-pet": "Lugano PET", "lugano-ct": "Lugano CT", "lyric": "LYRIC",
                   "recip": "RECIP"}
_LOCK = threading.Lock()  # one edit + re-assessment at a time


def build_report(settings: Settings, patient_pk: int, *, pseudonymise: bool = False,
                 reader: str | None = None) -> Path:
    """The PDF of ``patient_pk`` (:func:`oncohybrid.services.report.build_patient_report`)."""
    kwargs: dict[str, Any] = {"pseudonymise": True} if pseudonymise else {}
    if reader:
        kwargs["reader"] = reader
    return Path(report_service.build_patient_report(patient_pk, settings, **kwargs))


def _patient_id(settings: Settings, patient_pk: int) -> str:
    return reading.patient_id_of(patient_pk, settings)


def _load(settings: Settings, patient_pk: int, patient_id: str | None = None
          ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(record, latest assessments) of a patient, or ``None`` without a stored record.

    ``patient_id``: the patient's ID when the caller has read it already (the patient
    page's summary, identified roles), else it is looked up from the key.
    """
    rec = record_service
    pid = patient_id or _patient_id(settings, patient_pk)
    data = rec.patient_record(pid, settings)
    if not data["timepoints"]:
        return None
    return data, rec.latest_assessments(pid, settings)


def _responses_at(assessments: dict[str, Any], date: str) -> dict[str, dict[str, Any]]:
    out = {}
    for crit, a in assessments.items():
        for tp in a["result"].get("timepoints", []):
            if tp.get("date") == date:
                out[CRITERION_NAMES.get(crit, crit)] = {
                    "category": tp.get("overall") or "—",
                    "trace": "; ".join(tp.get("trace", [])),
                }
    return out


def _in_use(lesion: dict[str, Any], date: str) -> dict[str, Any] | None:
    return next((o for o in lesion["observations"] if o["date"] == date and o["in_use"]), None)


def timeline(settings: Settings, patient_pk: int, summary: dict[str, Any]) -> dict[str, Any]:
    """Time points with their studies, responses per criterion and trends of key numbers."""
    studies = {st["study_uid"]: st for st in summary["studies"]}
    loaded = _load(settings, patient_pk, summary.get("patient_id"))
    if loaded is None:
        timepoints: list[dict[str, Any]] = []
        by_date: dict[str | None, dict[str, Any]] = {}
        for st in summary["studies"]:
            tp = by_date.get(st["date"])
            if tp is None:
                tp = {"label": f"Visit {len(timepoints) + 1}", "date": st["date"],
                      "studies": [], "responses": {}}
                by_date[st["date"]] = tp
                timepoints.append(tp)
            tp["studies"].append(st)
        return {"available": False, "timepoints": timepoints, "criteria": [], "trends": [],
                "traces": {}}
    data, assessments = loaded
    tps = []
    used: set[str] = set()
    for t in data["timepoints"]:
        sts = [studies[x["study_uid"]] for x in t["studies"] if x["study_uid"] in studies]
        used.update(st["study_uid"] for st in sts)
        tps.append({"label": t["label"], "date": t["date"], "studies": sts,
                    "days": t["days_since_baseline"],
                    "responses": _responses_at(assessments, t["date"])})
    for st in summary["studies"]:  # studies outside the record (other modalities ...)
        if st["study_uid"] not in used:
            tps.append({"label": "not assessed", "date": st["date"], "studies": [st],
                        "responses": {}})
    criteria = [CRITERION_NAMES.get(c, c) for c in assessments]
    labels = [t["label"].replace("follow-up ", "FU") for t in data["timepoints"]]
    dates = [t["date"] for t in data["timepoints"]]
    sums = []
    recist = assessments.get("recist1.1")
    for d in dates:
        tp = next((x for x in (recist or {}).get("result", {}).get("timepoints", [])
                   if x.get("date") == d), None)
        sums.append(tp.get("sum_mm") if tp else None)
    sul, tmtv = [], []
    for d in dates:
        obs = [o for les in data["lesions"] if (o := _in_use(les, d)) and o["present"]]
        peaks = [o["sul_peak"] for o in obs if o.get("sul_peak") is not None]
        sul.append(max(peaks) if peaks else (0.0 if obs == [] else None))
        mtvs = [o["mtv_ml"] for o in obs if o.get("mtv_ml") is not None]
        tmtv.append(round(sum(mtvs), 2) if obs or mtvs else 0.0)
    trends = [
        {"title": "Sum of diameters", "unit": "mm", "labels": labels, "values": sums},
        {"title": "SULpeak (hottest lesion)", "unit": "SUL", "labels": labels, "values": sul},
        {"title": "TMTV", "unit": "ml", "labels": labels, "values": tmtv},
    ]
    traces = {}
    for crit, a in assessments.items():
        lines = []
        for tp in a["result"].get("timepoints", []):
            lines += [f"{tp.get('date')}: {line}" for line in tp.get("trace", [])]
        traces[CRITERION_NAMES.get(crit, crit)] = lines
    return {"available": bool(assessments), "timepoints": tps, "criteria": criteria,
            "trends": trends, "traces": traces}


def _timepoint_of_study(data: dict[str, Any], study_uid: str) -> dict[str, Any] | None:
    return next((t for t in data["timepoints"]
                 if any(x["study_uid"] == study_uid for x in t["studies"])), None)


def study_lesions(settings: Settings, vols: Any, patient_pk: int, study_uid: str
                  ) -> list[dict[str, Any]]:
    """Lesions seen in a study (key, site, role, display voxel of the centroid)."""
    loaded = _load(settings, patient_pk)
    if loaded is None:
        return []
    data, _ = loaded
    tp = _timepoint_of_study(data, study_uid)
    if tp is None:
        return []
    inv = np.linalg.inv(vols.grid.affine)
    # Extent of each drawn contour ([[k0, k1], [j0, j1], [i0, i1]], inclusive) so that the
    # viewer can place the lesion's id beside it in every plane that cuts it.
    boxes: dict[str, list[list[int]]] = {}
    tints: dict[str, str] = {}
    labels, colours, names = label_volume(settings, vols, study_uid)
    if labels is not None:
        from scipy import ndimage

        for n, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is not None and n in names:
                boxes[names[n]] = [[s.start, s.stop - 1] for s in sl]
                tints[names[n]] = "#" + "".join(f"{c:02x}" for c in colours[n])
    out = []
    for les in data["lesions"]:
        o = _in_use(les, tp["date"])
        if o is None or not o["present"]:
            continue
        voxel = None
        centroid = _centroid(settings, les["key"], patient_pk, tp["date"])
        if centroid is not None:
            v = np.rint((inv @ np.append(centroid, 1.0))[:3]).astype(int)
            if all(0 <= int(a) < n for a, n in zip(v, vols.shape, strict=True)):
                voxel = [int(a) for a in v]
        role = les["roles"].get("recist1.1", {}).get("role")
        out.append({"lesion_id": les["key"], "site": les["site"], "role": role,
                    "voxel": voxel, "bbox": boxes.get(les["key"]),
                    "colour": tints.get(les["key"])})
    return out


def _centroid(settings: Settings, key: str, patient_pk: int, date: str) -> list[float] | None:
    return reading.lesion_centroid(patient_pk, key, date, settings)


def label_volume(settings: Settings, vols: Any, study_uid: str
                 ) -> tuple[np.ndarray | None, dict[int, tuple[int, int, int]] | None,
                            dict[int, str] | None]:
    """Lesion labels on the viewer's display grid, colours and names (computed once):
    the stored measured masks, re-derived only for older records
    (:func:`oncohybrid.services.viewer.lesion_label_volume`)."""
    return viewer_service.lesion_label_volume(settings, vols, study_uid)


def lesion_table(settings: Settings, patient_pk: int, tp: int | None) -> dict[str, Any]:
    """Rows of the lesion table at time point index ``tp`` (default: the last)."""
    rec = record_service
    loaded = _load(settings, patient_pk)
    if loaded is None:
        return {"available": False, "timepoints": [], "rows": [], "tp": tp}
    data, assessments = loaded
    tps = data["timepoints"]
    idx = len(tps) - 1 if tp is None else tp
    if not 0 <= idx < len(tps):
        raise InputError(f"tp: time point index must be within 0..{len(tps) - 1}, got {tp}")
    date = tps[idx]["date"]
    first_date = {les["key"]: min((o["date"] for o in les["observations"]), default=None)
                  for les in data["lesions"]}
    rows = []
    for les in data["lesions"]:
        if first_date[les["key"]] is None or first_date[les["key"]] > date:
            continue
        o = _in_use(les, date)
        prov = "—"
        if o is not None:
            m = (o.get("methods") or {}).get("ld_mm") or (o.get("methods") or {}).get("sul_peak")
            method = m.get("method") if isinstance(m, dict) else None
            prov = f"{o['source']} · {o['reader']}" + (f" · {method}" if method else "")
            if not o["present"]:
                prov = "absent · " + prov
        rows.append({
            "lesion_id": les["key"], "site": les["site"],
            "roles": {CRITERION_NAMES[c]: r["role"] for c, r in les["roles"].items()
                      if c in CRITERION_NAMES},
            "ld_mm": _r(o, "ld_mm"), "sa_mm": _r(o, "sa_mm"),
            "sul_peak": _r(o, "sul_peak", 2), "mtv_ml": _r(o, "mtv_ml", 2),
            "provenance": prov,
        })
    criteria = [CRITERION_NAMES[c] for c in ROLE_CRITERIA]
    response = _responses_at(assessments, date)
    trace = [f"{c}: {r['trace']}" for c, r in response.items() if r["trace"]]
    return {
        "available": True,
        "timepoints": [{"index": i, "label": t["label"], "date": t["date"]}
                       for i, t in enumerate(tps)],
        "tp": idx, "date": date, "rows": rows, "criteria": criteria,
        "roles": list(rec.ROLES), "response": response, "trace": trace,
        "match_options": [r["lesion_id"] for r in rows] if idx > 0 else [],
    }


def _r(o: dict[str, Any] | None, key: str, nd: int = 1) -> float | None:
    if o is None or not o["present"] or o.get(key) is None:
        return None
    return round(float(o[key]), nd)


def lesion_history(settings: Settings, patient_pk: int, lesion_id: str) -> dict[str, Any]:
    """A lesion's measurements at every time point (in-use observations)."""
    loaded = _load(settings, patient_pk)
    if loaded is None:
        raise StoreError(f"patient #{patient_pk}: no lesions are recorded")
    data, _ = loaded
    les = next((x for x in data["lesions"] if x["key"] == lesion_id), None)
    if les is None:
        raise StoreError(f"lesion {lesion_id!r}: not recorded for patient #{patient_pk}")
    rows = []
    for t in data["timepoints"]:
        o = _in_use(les, t["date"])
        if o is None:
            continue
        rows.append({"timepoint": t["label"], "date": t["date"],
                     "ld_mm": _r(o, "ld_mm"), "sa_mm": _r(o, "sa_mm"),
                     "suv_max": _r(o, "suv_max", 2), "sul_peak": _r(o, "sul_peak", 2),
                     "mtv_ml": _r(o, "mtv_ml", 2),
                     "source": ("absent, " if not o["present"] else "") + o["source"]})
    cols = [("timepoint", "Time point"), ("ld_mm", "LD mm"), ("sa_mm", "SA mm"),
            ("suv_max", "SUVmax"), ("sul_peak", "SULpeak"), ("mtv_ml", "MTV ml"),
            ("source", "Source")]
    return {"lesion_id": lesion_id, "site": les["site"], "roles": les["roles"],
            "columns": [{"key": k, "label": v} for k, v in cols], "rows": rows}


# ------------------------------------------------------------------------- re-assessment


def _after_edit(settings: Settings, patient_pk: int, patient_id: str,
                tp: Any) -> dict[str, Any]:
    reassess_from_record(settings, patient_id)
    table = lesion_table(settings, patient_pk, tp if isinstance(tp, int) else None)
    return {"response": table["response"], "trace": table["trace"], "tp": table["tp"]}


def _criterion_key(value: Any) -> str:
    for key, name in CRITERION_NAMES.items():
        if value in (key, name) and key in ROLE_CRITERIA:
            return key
    raise InputError(f"criterion: expected one of {', '.join(ROLE_CRITERIA)}, got {value!r}")


def set_role(settings: Settings, patient_pk: int, lesion_id: str, body: dict[str, Any], *,
             actor: str) -> dict[str, Any]:
    """Set a lesion's role under one criterion (a manual decision), then re-assess."""
    crit = _criterion_key(body.get("criterion"))
    role = body.get("role")
    pid = _patient_id(settings, patient_pk)
    tp = body.get("timepoint")
    if tp is not None:  # checked before anything is stored
        loaded = _load(settings, patient_pk)
        n = len(loaded[0]["timepoints"]) if loaded else 0
        if not isinstance(tp, int) or not 0 <= tp < n:
            raise InputError(f"timepoint: time point index must be within 0..{n - 1}, "
                             f"got {tp!r}")
    with _LOCK:
        reading.set_lesion_role(patient_pk, lesion_id, crit, role, actor=actor,
                                settings=settings)
        return _after_edit(settings, patient_pk, pid, body.get("timepoint"))


def fix_match(settings: Settings, patient_pk: int, lesion_id: str, body: dict[str, Any], *,
              actor: str) -> dict[str, Any]:
    """Correct the tracking at one time point: the detection attributed to ``lesion_id``
    belongs to lesion ``match`` (and vice versa); observation rows swap owners, nothing
    is deleted. Then re-assess."""
    other = body.get("match")
    tp_index = body.get("timepoint")
    if not isinstance(other, str) or not isinstance(tp_index, int) or tp_index < 1:
        raise InputError("body: expected {\"match\": lesion id, \"timepoint\": index ≥ 1}")
    pid = _patient_id(settings, patient_pk)
    if other == lesion_id:
        return _after_edit(settings, patient_pk, pid, tp_index)
    with _LOCK:
        reading.swap_observations(patient_pk, lesion_id, other, tp_index, actor=actor,
                                  settings=settings)
        return _after_edit(settings, patient_pk, pid, tp_index)


def add_measurement(settings: Settings, vols: Any, patient_pk: int, study_uid: str,
                    body: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """A reader's long- or short-axis length from two clicked points in one plane,
    stored as a manual observation (which supersedes the automatic one), then re-assess.

    ``body``: ``{"lesion_id", "axis": "long"|"short", "orientation", "index",
    "p1": [fx, fy], "p2": [fx, fy]}`` with image fractions as in the probe.
    """
    lesion_id = body.get("lesion_id")
    axis = body.get("axis")
    if axis not in ("long", "short") or not isinstance(lesion_id, str):
        raise InputError("body: expected lesion_id and axis 'long' or 'short'")
    try:
        p1, p2 = ([float(v) for v in body[k]] for k in ("p1", "p2"))
        orientation, index = str(body["orientation"]), int(body["index"])
    except (KeyError, TypeError, ValueError):
        raise InputError("body: expected orientation, index, p1 [fx, fy], p2 [fx, fy]") from None
    length_mm = reading.manual_length_mm(vols, orientation, index, p1, p2)
    pid = _patient_id(settings, patient_pk)
    loaded = _load(settings, patient_pk)
    tp = _timepoint_of_study(loaded[0], study_uid) if loaded else None
    if tp is None:
        raise StoreError(f"study {study_uid}: not part of the patient's record")
    with _LOCK:
        reading.add_manual_length(pid, lesion_id, tp["date"], length_mm, axis=axis,
                                  orientation=orientation, index=index, actor=actor,
                                  settings=settings)
        out = _after_edit(settings, patient_pk, pid, tp["index"])
    out["length_mm"] = length_mm
    return out


def assessed_criteria(settings: Settings, patient_pk: int) -> list[str]:
    """Criterion ids with a stored assessment for this patient (for tracer checks)."""
    loaded = _load(settings, patient_pk)
    return list(loaded[1]) if loaded is not None else []
