"""Security of the reading room: sign-in required, roles, pseudonyms, CSRF, traversal."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from fastapi.testclient import TestClient
from web_workspace import csrf_of


def _phi(ws) -> list[str]:
    p = ws.patient
    family, _, given = p["patient_name"].partition("^")
    out = [p["patient_id"], p["patient_name"], family + ", " + given, p["birth_date"],
           p["birth_date"].replace("-", "")]
    out += [tp["accession_number"] for tp in p["timepoints"]]
    return out


def _pdf_text(data: bytes) -> str:
    """Text of a PDF through poppler's pdftotext (a Debian package of the project)."""
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


def _pages(ws, client, study_uid: str | None = None) -> dict[str, str]:
    uid = study_uid or ws.patient["timepoints"][0]["study_uid"]
    urls = ["/", "/?q=PSN", "/api/worklist", f"/patients/{ws.patient_pk}",
            f"/api/patients/{ws.patient_pk}", f"/patients/{ws.patient_pk}/lesions",
            f"/studies/{uid}/view", f"/api/studies/{uid}/info"]
    out = {}
    for u in urls:
        r = client.get(u)
        assert r.status_code == 200, (u, r.status_code, r.text[:300])
        out[u] = r.text
    return out


def test_pages_redirect_and_api_answers_401_without_sign_in(web_app, web_ws):
    c = TestClient(web_app)
    tp0 = web_ws.patient["timepoints"][0]
    for url in ["/", f"/patients/{web_ws.patient_pk}", f"/studies/{tp0['study_uid']}/view",
                "/admin/audit", f"/patients/{web_ws.patient_pk}/report.pdf"]:
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), url
    for url in ["/api/worklist", f"/api/patients/{web_ws.patient_pk}",
                f"/api/studies/{tp0['study_uid']}/slice/axial/3.png",
                f"/api/studies/{tp0['study_uid']}/probe?orientation=axial&index=1&fx=.5&fy=.5",
                f"/api/studies/{tp0['study_uid']}/mip/0.png"]:
        r = c.get(url)
        assert r.status_code == 401, url
        assert r.headers["content-type"].startswith("application/json")
    r = c.post(f"/api/patients/{web_ws.patient_pk}/lesions/L1/role", json={"role": "target"})
    assert r.status_code == 401


def test_forged_or_expired_cookie_is_refused(web_app):
    c = TestClient(web_app)
    c.cookies.set("oh_session", "forged.value.sig")
    assert c.get("/api/worklist").status_code == 401


def test_wrong_password_is_refused_and_audited(web_app, web_ws, login):
    c = TestClient(web_app)
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": "demo", "password": "wrong-password",
                               "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 401 and "wrong password" in r.text
    admin = login("adam")
    assert "login.failed" in admin.get("/admin/audit").text


def test_session_cookie_is_httponly_samesite_lax(web_app, web_ws):
    c = TestClient(web_app)
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": web_ws.demo[0], "password": web_ws.demo[1],
                               "csrf_token": token}, follow_redirects=False)
    cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and "oh_session" in v]
    assert cookie and "HttpOnly" in cookie[0] and "samesite=lax" in cookie[0].lower()
    # The cookie is the signed token, never a user name.
    assert "demo" not in cookie[0].split(";")[0]


def test_login_without_csrf_token_is_403(web_app, web_ws):
    c = TestClient(web_app)
    c.get("/login")
    r = c.post("/login", data={"username": web_ws.demo[0], "password": web_ws.demo[1]})
    assert r.status_code == 403


def test_researcher_sees_no_names_ids_or_birth_dates(web_ws, login):
    c = login("rita")
    # Researchers reach the viewer through the pseudonymous study UID the pages show.
    uid = c.get(f"/api/patients/{web_ws.patient_pk}").json()["studies"][0]["study_uid"]
    pages = _pages(web_ws, c, uid)
    for url, body in pages.items():
        for needle in _phi(web_ws):
            assert needle not in body, f"{needle!r} leaked in {url}"
    # Search by identifier is no oracle for a researcher.
    r = c.get("/api/worklist", params={"q": web_ws.patient["patient_id"]})
    assert r.json()["total"] == 0
    # The pseudonym is the HMAC-SHA-256 of the patient ID under the installation's key.
    key = (web_ws.settings.home / "report-pseudonym.key").read_bytes()
    expected = "PSN-" + hmac.new(key, web_ws.patient["patient_id"].encode(),
                                 hashlib.sha256).hexdigest()[:10].upper()
    assert expected in pages["/"] and expected in pages[f"/patients/{web_ws.patient_pk}"]
    pdf = c.get(f"/patients/{web_ws.patient_pk}/report.pdf")
    if pdf.status_code == 200:  # the report service is installed: pseudonymised PDF
        text = _pdf_text(pdf.content)
        assert "PSN-" in text
        for needle in _phi(web_ws):
            assert needle not in text, f"{needle!r} leaked in the researcher's PDF"
    else:
        assert pdf.status_code == 404


def test_physician_sees_identity(web_ws, login):
    c = login("demo")
    body = c.get("/").text
    assert web_ws.patient["patient_id"] in body
    assert web_ws.patient["birth_date"] in body


def test_every_post_route_rejects_requests_without_csrf_token(web_app, web_ws, login):
    c = login("adam")
    routes = [r for r in web_app.routes if "POST" in getattr(r, "methods", set())
              and r.path != "/login"]
    assert len(routes) >= 5
    tp0 = web_ws.patient["timepoints"][0]
    for route in routes:
        url = (route.path.replace("{patient_pk}", str(web_ws.patient_pk))
               .replace("{lesion_id}", "L1").replace("{study_uid}", tp0["study_uid"]))
        r = c.post(url, json={"role": "target"})
        assert r.status_code == 403, (url, r.status_code)
        r = c.post(url, data={"username": "x1", "password": "p" * 9, "role": "admin"})
        assert r.status_code == 403, (url, r.status_code)
        r = c.post(url, json={}, headers={"X-CSRF-Token": "not-the-token"})
        assert r.status_code == 403, (url, r.status_code)
    # Still signed in: the refused logout did nothing.
    assert c.get("/api/worklist").status_code == 200


def test_cross_origin_post_with_token_is_refused(web_ws, login):
    c = login("demo")
    token = csrf_of(c)
    r = c.post("/logout", data={"csrf_token": token},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/api/worklist").status_code == 401


def test_fellow_cannot_change_lesions_even_with_token(web_ws, login):
    c = login("fred")
    r = c.post(f"/api/patients/{web_ws.patient_pk}/lesions/L1/role",
               json={"criterion": "RECIST 1.1", "role": "non-target"},
               headers={"X-CSRF-Token": csrf_of(c)})
    assert r.status_code == 403


@pytest.mark.parametrize("url", [
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/static/%2e%2e/%2e%2e/config.py",
    "/static/..%2fapp.py",
    "/static/..%5capp.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
])
def test_static_path_traversal_is_refused(web_app, url):
    c = TestClient(web_app)
    r = c.get(url)
    assert r.status_code in (400, 404), (url, r.status_code)
    assert "def " not in r.text and "root:" not in r.text


def test_viewer_routes_refuse_odd_parameters(web_ws, login):
    c = login("demo")
    uid = web_ws.patient["timepoints"][0]["study_uid"]
    for url in [f"/api/studies/{uid}/slice/..%2f..%2fetc/1.png",
                f"/api/studies/{uid}/slice/axial/99999.png",
                f"/api/studies/{uid}/slice/axial/1.png?cmap=../../x",
                f"/api/studies/{uid}/mip/99.png",
                f"/api/studies/{uid}/probe?orientation=axial&index=1&fx=2&fy=0.5"]:
        r = c.get(url)
        assert r.status_code in (400, 404, 422), (url, r.status_code)
    assert c.get("/api/studies/1.2.3.4/info").status_code == 404


def test_login_next_is_local_only(web_app, web_ws):
    c = TestClient(web_app)
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": web_ws.demo[0], "password": web_ws.demo[1],
                               "csrf_token": token, "next": "//evil.example/x"},
               follow_redirects=False)
    assert r.headers["location"] == "/"


def test_admin_adds_user_through_form_and_it_is_audited(web_ws, login):
    c = login("adam")
    r = c.post("/admin/users", data={"username": "nora", "password": "nora-pass-1-x",
                                     "role": "fellow", "csrf_token": csrf_of(c)},
               follow_redirects=False)
    assert r.status_code == 303
    audit_page = c.get("/admin/audit").text
    assert "user.add" in audit_page and "user:nora" in audit_page
    assert login("demo").get("/admin/audit").status_code == 403


def test_security_headers(web_ws, login):
    r = login("demo").get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
