"""Worklist, timeline, lesion edits and re-assessment through the HTTP API."""

from __future__ import annotations

import pytest
from web_workspace import csrf_of


def _recist_at(client, pk: int, date: str) -> dict:
    tl = client.get(f"/api/patients/{pk}").json()["timeline"]
    tp = next(t for t in tl["timepoints"] if t["date"] == date)
    return tp["responses"]["RECIST 1.1"]


def _sums(client, pk: int) -> list[float | None]:
    tl = client.get(f"/api/patients/{pk}").json()["timeline"]
    return next(t for t in tl["trends"] if t["title"] == "Sum of diameters")["values"]


def test_worklist_filters_and_status(web_ws, login):
    c = login("demo")
    rows = c.get("/api/worklist").json()["rows"]
    assert [r["patient_id"] for r in rows] == [web_ws.patient["patient_id"]]
    expected_status = {"assessed", "reported"} if web_ws.assessed else {"new"}
    assert rows[0]["status"] in expected_status
    assert rows[0]["tracers"] == ["Fluorodeoxyglucose"]
    dates = [tp["date"] for tp in web_ws.patient["timepoints"]]
    for params, n in [({"modality": "PT"}, 1), ({"modality": "MR"}, 0),
                      ({"tracer": "fdg"}, 0), ({"tracer": "fluoro"}, 1),
                      ({"q": "phantom"}, 1), ({"q": "nobody"}, 0),
                      ({"date_from": dates[-1]}, 1), ({"date_to": "2000-01-01"}, 0),
                      ({"status": "new"}, 0 if web_ws.assessed else 1)]:
        assert c.get("/api/worklist", params=params).json()["total"] == n, params
    assert c.get("/api/worklist", params={"date_from": "13/01/2024"}).status_code == 400


def test_lesion_role_change_recomputes_recist(web_ws, login):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    c = login("demo")
    pk = web_ws.patient_pk
    last = web_ws.patient["timepoints"][-1]["date"]
    before = _recist_at(c, pk, last)["category"]
    table = c.get(f"/patients/{pk}/lesions").text
    assert "lesion-table" in table
    record = c.get(f"/api/patients/{pk}").json()["timeline"]
    assert record["available"]
    token = csrf_of(c)
    from oncohybrid.services.record import load_roles

    targets = [k for k, r in load_roles(web_ws.patient["patient_id"],
                                        web_ws.settings)["recist1.1"].items() if r == "target"]
    assert targets
    for key in targets:
        r = c.post(f"/api/patients/{pk}/lesions/{key}/role",
                   json={"criterion": "recist1.1", "role": "non-target"},
                   headers={"X-CSRF-Token": token})
        assert r.status_code == 200, r.text
    after = _recist_at(c, pk, last)["category"]
    # RECIST 1.1 Table 2: without target lesions the follow-up is judged on non-targets.
    assert after in ("NON-CR/NON-PD", "CR", "PD") and after != before
    roles = load_roles(web_ws.patient["patient_id"], web_ws.settings)["recist1.1"]
    assert all(roles[k] == "non-target" for k in targets)
    admin = login("adam")
    assert "lesion.role" in admin.get("/admin/audit").text
    for key in targets:  # restore
        c.post(f"/api/patients/{pk}/lesions/{key}/role",
               json={"criterion": "RECIST 1.1", "role": "target"},
               headers={"X-CSRF-Token": token})
    assert _recist_at(c, pk, last)["category"] == before
    bad = c.post(f"/api/patients/{pk}/lesions/{targets[0]}/role",
                 json={"criterion": "recist1.1", "role": "boss"},
                 headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def test_manual_long_axis_from_two_points_changes_the_sum(web_ws, login):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    from oncohybrid.services.record import load_roles

    c = login("demo")
    pk = web_ws.patient_pk
    tp0 = web_ws.patient["timepoints"][0]
    uid = tp0["study_uid"]
    roles = load_roles(web_ws.patient["patient_id"], web_ws.settings)["recist1.1"]
    hist = {k: c.get(f"/api/patients/{pk}/lesions/{k}").json() for k in roles}
    key = next(k for k, r in roles.items() if r == "target" and hist[k]["site"] != "lymph node")
    old_ld = hist[key]["rows"][0]["ld_mm"]
    old_sum = _sums(c, pk)[0]
    info = c.get(f"/api/studies/{uid}/info").json()
    n_cols, col_mm = info["shape"][2], info["spacing_mm"][2]
    body = {"lesion_id": key, "axis": "long", "orientation": "axial", "index": 40,
            "p1": [0.40, 0.5], "p2": [0.55, 0.5]}
    r = c.post(f"/api/studies/{uid}/measurements", json=body,
               headers={"X-CSRF-Token": csrf_of(c)})
    assert r.status_code == 200, r.text
    expected_mm = round(0.15 * n_cols * col_mm, 1)
    assert r.json()["length_mm"] == pytest.approx(expected_mm, abs=0.05)
    row = c.get(f"/api/patients/{pk}/lesions/{key}").json()["rows"][0]
    assert row["ld_mm"] == pytest.approx(expected_mm, abs=0.05) and row["source"] == "manual"
    # The baseline sum of diameters (RECIST 1.1 §4.2) now holds the manual length.
    assert _sums(c, pk)[0] == pytest.approx(old_sum - old_ld + expected_mm, abs=0.15)


def test_viewer_info_lists_lesions_with_voxels(web_ws, login):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    c = login("fred")
    uid = web_ws.patient["timepoints"][0]["study_uid"]
    info = c.get(f"/api/studies/{uid}/info").json()
    assert info["lesions"] and not info["can_edit"]
    assert all(les["voxel"] is not None for les in info["lesions"])
    png = c.get(f"/api/studies/{uid}/slice/axial/{info['lesions'][0]['voxel'][0]}.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_lesion_contours_surround_the_recorded_centroid(web_ws):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    from oncohybrid.services import viewer
    from oncohybrid.web import clinical

    uid = web_ws.patient["timepoints"][0]["study_uid"]
    vols = viewer.study_volumes(uid, web_ws.settings)
    labels, colours, names = clinical.label_volume(web_ws.settings, vols, uid)
    assert labels is not None and set(names.values())
    lesions = clinical.study_lesions(web_ws.settings, vols, web_ws.patient_pk, uid)
    for les in lesions:
        n = next(k for k, v in names.items() if v == les["lesion_id"])
        k, j, i = les["voxel"]
        region = labels[max(k - 1, 0):k + 2, max(j - 2, 0):j + 3, max(i - 2, 0):i + 3]
        assert (region == n).any(), les["lesion_id"]
        plain = viewer.render_plane_rgb(vols, "axial", k)
        drawn = viewer.render_plane_rgb(vols, "axial", k, labels=labels, label_colours=colours,
                                        label_names=names)
        assert (plain != drawn).any()


def test_fix_match_swaps_the_follow_up_observations(web_ws, login):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    c = login("demo")
    pk = web_ws.patient_pk
    token = csrf_of(c)
    hist = lambda k: c.get(f"/api/patients/{pk}/lesions/{k}").json()["rows"]  # noqa: E731
    from oncohybrid.services.record import load_roles

    keys = sorted(load_roles(web_ws.patient["patient_id"], web_ws.settings)["recist1.1"])[:2]
    a0, b0 = hist(keys[0]), hist(keys[1])
    r = c.post(f"/api/patients/{pk}/lesions/{keys[0]}/match",
               json={"match": keys[1], "timepoint": 1}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    a1, b1 = hist(keys[0]), hist(keys[1])
    assert a1[0] == a0[0] and b1[0] == b0[0]  # baseline untouched
    assert a1[1]["ld_mm"] == b0[1]["ld_mm"] and b1[1]["ld_mm"] == a0[1]["ld_mm"]
    c.post(f"/api/patients/{pk}/lesions/{keys[0]}/match",
           json={"match": keys[1], "timepoint": 1}, headers={"X-CSRF-Token": token})
    assert hist(keys[0]) == a0
    bad = c.post(f"/api/patients/{pk}/lesions/{keys[0]}/match",
                 json={"match": keys[1], "timepoint": 0}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 400


def test_worklist_pages_most_recent_first(tmp_path):
    import datetime as dt

    from oncohybrid.config import get_settings
    from oncohybrid.services.worklist import WorklistQuery, worklist
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient, Study

    s = get_settings(tmp_path)
    with session_scope(s) as db:
        for n, day in enumerate([3, 9, 5]):
            p = Patient(patient_id=f"P{n}", patient_name=f"Doe^{n}")
            db.add(p)
            db.flush()
            db.add(Study(study_instance_uid=f"1.2.3.{n}", patient_pk=p.id,
                         study_date=dt.date(2024, 1, day)))
    first = worklist(WorklistQuery(per_page=2), s)
    second = worklist(WorklistQuery(per_page=2, page=2), s)
    assert first["total"] == 3 and first["pages"] == 2
    assert [r["patient_id"] for r in first["rows"] + second["rows"]] == ["P1", "P2", "P0"]
    assert worklist(WorklistQuery(q="doe^2"), s)["rows"][0]["name"] == "Doe, 2"
