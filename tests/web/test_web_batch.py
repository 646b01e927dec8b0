"""The reading room's batch page (#17): per-status counts, throughput, ETA, cancel.

Throughput and ETA are checked against the arithmetic done here from the stored times:
tasks finished per hour of elapsed run time, and the tasks left at that rate.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from oncohybrid.config import get_settings
from oncohybrid.services import audit, users

PW = "tumour-board-quiet-lantern"
ROLES = {"phys": "physician", "root": "admin", "fel": "fellow", "res": "researcher"}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace without images: one account per role and one batch run an hour old
    (2 done, 1 failed, 1 running, 3 queued, 1 skipped)."""
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(tmp_path)
    for name, role in ROLES.items():
        users.add_user(settings, name, PW + "-" + role, role, actor="test")
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun, BatchTask

    now = dt.datetime.now(dt.UTC)
    statuses = ["done", "done", "failed", "running", "queued", "queued", "queued", "skipped"]
    with session_scope(settings) as s:
        run = BatchRun(kind="assess", status="running", cancel_requested=False, params={},
                       cluster="local:2", retries=1, created_at=now - dt.timedelta(hours=1))
        s.add(run)
        s.flush()
        for k, st in enumerate(statuses):
            s.add(BatchTask(run_pk=run.id, position=k, kind="assess", unit_key=f"PAT-{k}",
                            patient_id=f"PAT-{k}", input_hash="0" * 64, params_hash="0" * 64,
                            params={"params": {}, "unit": {}}, software_version="test",
                            status=st, attempts=int(st in ("done", "failed", "running")),
                            seconds=12.5 if st in ("done", "failed") else None,
                            worker="tcp://127.0.0.1:40001" if st != "queued" else None,
                            error="InputError: no stored series" if st == "failed" else None))
        run_pk = run.id
    return settings, run_pk


def _client(settings, username: str) -> TestClient:
    from oncohybrid.web.app import create_app

    c = TestClient(create_app(settings), base_url="http://testserver")
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": username, "password": PW + "-" + ROLES[username],
                               "csrf_token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_batch_page_shows_counts_throughput_and_eta_and_refreshes_while_running(ws):
    settings, run_pk = ws
    c = _client(settings, "phys")
    assert '<a href="/batch">Batches</a>' in c.get("/").text
    r = c.get("/batch")
    assert r.status_code == 200 and r.headers["refresh"] == "10"
    row = re.search(rf'<tr data-run="{run_pk}">(.*?)</tr>', r.text, re.S).group(1)
    cells = re.findall(r'<td class="n-(\w+)">(\d+)</td>', row)
    assert dict(cells) == {"queued": "3", "running": "1", "done": "2", "failed": "1",
                           "skipped": "1", "cancelled": "0"}
    # 3 finished (done + failed) in one hour: 3.0 tasks/h; 4 left (queued + running) at
    # that rate: 4 / 3 h = 1 h 20 min.
    assert "3.0 tasks/h" in row and "1 h 20 min" in row

    r = c.get(f"/batch/{run_pk}")
    assert r.status_code == 200
    tasks = re.findall(r'<tr class="task-(\w+)"><td>\d+</td><td>(PAT-\d)</td>', r.text)
    assert [s for s, _p in tasks] == ["done", "done", "failed", "running", "queued",
                                      "queued", "queued", "skipped"]
    assert "InputError: no stored series" in r.text and 'id="cancel-run"' in r.text
    api = c.get(f"/api/batch/{run_pk}").json()
    assert api["counts"]["queued"] == 3 and len(api["tasks"]) == 8
    assert api["tasks_per_hour"] == pytest.approx(3.0, rel=1e-2)
    assert api["eta_s"] == pytest.approx(4800.0, rel=1e-2)


def test_cancel_needs_csrf_is_audited_and_stops_the_tasks_not_yet_started(ws):
    from oncohybrid.services.batch import execute_task, pending_tasks

    settings, run_pk = ws
    c = _client(settings, "root")
    html = c.get(f"/batch/{run_pk}").text
    assert c.post(f"/batch/{run_pk}/cancel", data={}).status_code == 403
    r = c.post(f"/batch/{run_pk}/cancel", data={"csrf_token": _csrf(html)},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/batch/{run_pk}"
    (entry,) = audit.list_entries(settings, action="batch.cancel")
    assert (entry["username"], entry["target"]) == ("root", f"batch:{run_pk}")
    assert entry["details"]["queued"] == 3
    page = c.get(f"/batch/{run_pk}").text
    assert "cancel requested" in page and 'id="cancel-run"' not in page
    # a worker that picks up a queued task now records it cancelled, without running it
    first = pending_tasks(run_pk, settings)[0]
    assert execute_task(first, str(settings.home), settings.database_url, 1) == "cancelled"
    assert c.get(f"/api/batch/{run_pk}").json()["counts"]["cancelled"] == 1


def test_finished_or_unknown_runs_cannot_be_cancelled(ws):
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun

    settings, run_pk = ws
    with session_scope(settings) as s:
        s.get(BatchRun, run_pk).status = "finished"
    c = _client(settings, "phys")
    token = _csrf(c.get(f"/batch/{run_pk}").text)
    r = c.post(f"/batch/{run_pk}/cancel", data={"csrf_token": token})
    assert r.status_code == 400 and "nothing to cancel" in r.text
    assert c.get("/batch/999").status_code == 404
    assert c.post("/batch/999/cancel", data={"csrf_token": token}).status_code == 404
    assert "refresh" not in c.get("/batch").headers


@pytest.mark.parametrize("username", ["fel", "res"])
def test_fellows_and_researchers_neither_see_nor_cancel_batches(ws, username):
    settings, run_pk = ws
    c = _client(settings, username)
    home = c.get("/")
    assert '<a href="/batch">' not in home.text
    assert c.get("/batch").status_code == 403
    assert c.get(f"/batch/{run_pk}").status_code == 403
    assert c.get(f"/api/batch/{run_pk}").status_code == 403
    r = c.post(f"/batch/{run_pk}/cancel", data={"csrf_token": _csrf(home.text)})
    assert r.status_code == 403
    assert audit.list_entries(settings, action="batch.cancel") == []
