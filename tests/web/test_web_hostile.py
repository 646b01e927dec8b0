"""Hostile parameters answer 400 naming the parameter (never 500) and store nothing;
refused privileged actions and reads of patient records are audited."""

from __future__ import annotations

import pytest
from web_workspace import csrf_of

from oncohybrid.services import audit

BAD_QUERIES = [
    ("slice/axial/10.png?suv_max=0", "suv_max"),
    ("slice/axial/10.png?suv_max=nan", "suv_max"),
    ("slice/axial/10.png?suv_max=inf", "suv_max"),
    ("slice/axial/10.png?alpha=nan", "alpha"),
    ("slice/axial/10.png?alpha=1.5", "alpha"),
    ("slice/axial/10.png?ww=0&wc=40", "ww"),
    ("slice/axial/10.png?ww=-400&wc=40", "ww"),
    ("slice/axial/10.png?wc=nan&ww=400", "wc"),
    ("slice/axial/10.png?mode=ct&wc=1e300&ww=400", "wc"),
    ("slice/axial/100000000000000000000000.png", "index"),
    ("slice/axial/-1.png", "index"),
    ("mip/0.png?suv_max=0", "suv_max"),
    ("mip/0.png?suv_max=-3", "suv_max"),
    ("mip/100000000000000000000000.png", "angle_index"),
    ("probe?orientation=axial&index=10&fx=nan&fy=0.5", "fx"),
    ("probe?orientation=axial&index=100000000000000000000000&fx=0.5&fy=0.5", "index"),
]


@pytest.mark.parametrize(("tail", "param"), BAD_QUERIES)
def test_viewer_parameters_out_of_range_are_400_naming_the_parameter(web_ws, login, tail,
                                                                      param):
    c = login("demo")
    uid = web_ws.patient["timepoints"][0]["study_uid"]
    r = c.get(f"/api/studies/{uid}/{tail}")
    assert r.status_code == 400, (tail, r.status_code, r.text)
    assert param in r.json()["detail"]


@pytest.mark.parametrize("url", [
    "/api/patients/100000000000000000000000",
    "/api/patients/1e23",
    "/api/patients/-5",
    "/patients/100000000000000000000000",
    "/api/patients/9223372036854775808/lesions/L1",
    "/patients/1/lesions?tp=100000000000000000000000",
    "/api/worklist?page_no=100000000000000000000000",
    "/admin/audit?page_no=100000000000000000000000",
])
def test_patient_ids_and_pages_out_of_range_are_400(web_ws, login, url):
    c = login("adam")
    r = c.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text[:300])
    name = url.split("?")[1].split("=")[0] if "?" in url else "patient_pk"
    assert name in r.text


def _observation_count(web_ws) -> int:
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_record import Observation

    with session_scope(web_ws.settings) as s:
        return int(s.scalar(sa.select(sa.func.count(Observation.id))))


@pytest.mark.parametrize(("change", "param"), [
    ({"index": 10 ** 12}, "index"),
    ({"index": -1}, "index"),
    ({"index": 1e300}, "index"),
    ({"p1": [0.4, 0.5, 0.1]}, "p1"),
    ({"p2": [0.4]}, "p2"),
    ({"p1": ["a", 0.5]}, "p1"),
    ({"p1": [1e308, 0.5]}, "p1"),
    ({"axis": "diagonal"}, "axis"),
    ({"orientation": "oblique"}, "orientation"),
    ({"lesion_id": ["L1"]}, "lesion_id"),
    ({"lesion_id": "x" * 5000}, "lesion_id"),
])
def test_bad_manual_measurement_is_400_and_stores_nothing(web_ws, login, change, param):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    c = login("demo")
    uid = web_ws.patient["timepoints"][0]["study_uid"]
    info = c.get(f"/api/studies/{uid}/info").json()
    key = info["lesions"][0]["lesion_id"]
    body = {"lesion_id": key, "axis": "long", "orientation": "axial", "index": 40,
            "p1": [0.40, 0.5], "p2": [0.55, 0.5]} | change
    before = _observation_count(web_ws)
    r = c.post(f"/api/studies/{uid}/measurements", json=body,
               headers={"X-CSRF-Token": csrf_of(c)})
    assert r.status_code == 400, (change, r.status_code, r.text)
    assert param in r.json()["detail"]
    assert _observation_count(web_ws) == before


def test_bad_role_and_match_bodies_are_400_and_store_nothing(web_ws, login):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    c = login("demo")
    pk = web_ws.patient_pk
    h = {"X-CSRF-Token": csrf_of(c)}
    table = c.get(f"/api/patients/{pk}").json()
    assert table
    before = audit.count_entries(web_ws.settings)
    for body, param in [({"criterion": "recist1.1", "role": "target", "timepoint": 10 ** 20},
                         "timepoint"),
                        ({"criterion": "recist1.1", "role": "target", "timepoint": -1},
                         "timepoint"),
                        ({"criterion": "recist1.1", "role": ["target"]}, "role")]:
        r = c.post(f"/api/patients/{pk}/lesions/L1/role", json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert param in r.json()["detail"]
    r = c.post(f"/api/patients/{pk}/lesions/L1/match", json={"match": "L2", "timepoint": 1e30},
               headers=h)
    assert r.status_code == 400 and "timepoint" in r.json()["detail"]
    # Refused edits leave no "lesion.role" entry behind.
    new = audit.list_entries(web_ws.settings, limit=audit.count_entries(web_ws.settings)
                             - before)
    assert not [e for e in new if e["action"] in ("lesion.role", "lesion.match")]


def test_refused_privileged_actions_are_audited(web_ws, login):
    rita = login("rita")
    assert rita.get("/admin/audit").status_code == 403
    fred = login("fred")
    r = fred.post(f"/api/patients/{web_ws.patient_pk}/lesions/L1/role",
                  json={"criterion": "recist1.1", "role": "target"},
                  headers={"X-CSRF-Token": csrf_of(fred)})
    assert r.status_code == 403
    entries = audit.list_entries(web_ws.settings, action="access.denied", limit=50)
    got = {(e["username"], e["target"]) for e in entries}
    assert ("rita", "GET /admin/audit") in got
    assert ("fred", f"POST /api/patients/{web_ws.patient_pk}/lesions/L1/role") in got
    assert all(e["details"].get("status") == 403 for e in entries)


def test_reads_of_patient_records_are_audited(web_ws, login):
    c = login("fred")
    pk = web_ws.patient_pk
    uid = web_ws.patient["timepoints"][0]["study_uid"]
    for url in (f"/patients/{pk}", f"/api/patients/{pk}", f"/patients/{pk}/lesions",
                f"/studies/{uid}/view"):
        n = len(audit.list_entries(web_ws.settings, username="fred", action="patient.read",
                                   limit=1000))
        assert c.get(url).status_code == 200
        entries = audit.list_entries(web_ws.settings, username="fred", action="patient.read",
                                     limit=1000)
        assert len(entries) == n + 1, url
        assert entries[0]["target"] == f"patient:{pk}"
