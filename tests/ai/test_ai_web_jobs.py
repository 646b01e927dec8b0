"""Reading-room jobs (issue #18): AI segmentation and radiomics of a patient started from
the patient page, run in the background as recorded batch runs, with progress and results.

The model is the 1×1×1-convolution ONNX graph of ``onnx_models`` (logits ``(0, SUV − 2.5)``),
so the lesion label's volume is the count of PET voxels above SUV 2.5 times the voxel
volume, computed here from the PET read independently.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx_models import suv_threshold_model, write_onnx_folder

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))

from web_workspace import PASSWORDS, build_workspace, csrf_of, login_client  # noqa: E402

PW = "biomarker-physician-pass"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.services.users import add_user

    ws = build_workspace(tmp_path_factory.mktemp("jobs-home"))
    add_user(ws.settings, "phil", PW, "physician", actor="test")
    pet = load_series(ws.data_dir / ws.patient["timepoints"][0]["pt_dir"])
    # at the PET's own spacing: no resampling, so the mask is exactly SUV > 2.5
    card = {"name": "suv-above-2.5",
            "inputs": [{"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
            "spacing_mm": [float(v) for v in pet.spacing], "patch_size": [48, 48, 48],
            "labels": {"1": "lesion"}, "overlap": 0.25}
    write_onnx_folder(ws.settings.home / "models" / "tiny", suv_threshold_model(), card)
    (ws.settings.home / "models" / "broken").mkdir()
    return ws


@pytest.fixture(scope="module")
def app(ws):
    from oncohybrid.web.app import create_app

    return create_app(ws.settings)


def _run_job(client, ws, **form) -> int:
    from oncohybrid.services import segment_jobs

    r = client.post("/biomarkers/start", data={"csrf_token": csrf_of(client),
                                               "patient": ws.patient_pk, **form},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    run_pk = int(re.search(r"/biomarkers/jobs/(\d+)", r.headers["location"]).group(1))
    assert segment_jobs.wait(run_pk, 300)
    return run_pk


@pytest.mark.slow  # the assessed workspace takes ~20 s to build
def test_patient_page_offers_the_jobs_to_clinical_roles(ws, app) -> None:
    c = login_client(app, "phil", PW)
    page = c.get(f"/patients/{ws.patient_pk}").text
    assert f'href="/biomarkers?patient={ws.patient_pk}"' in page
    r = c.get(f"/biomarkers?patient={ws.patient_pk}")
    assert r.status_code == 200
    assert 'value="tiny"' in r.text and "suv-above-2.5" in r.text
    assert "Model folder broken not usable" in r.text
    fellow = login_client(app, "fred", PASSWORDS["fred"][1])
    r = fellow.get(f"/biomarkers?patient={ws.patient_pk}")
    assert r.status_code == 200 and 'id="start-segmentation"' not in r.text
    r = fellow.post("/biomarkers/start", data={"csrf_token": csrf_of(fellow),
                                               "patient": ws.patient_pk, "kind": "radiomics"})
    assert r.status_code == 403
    researcher = login_client(app, "rita", PASSWORDS["rita"][1])
    assert researcher.get(f"/biomarkers?patient={ws.patient_pk}").status_code == 403


@pytest.mark.slow  # the assessed workspace takes ~20 s to build
def test_segmentation_job_runs_in_the_background_and_shows_each_pet_study(ws, app) -> None:
    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import read_series
    from oncohybrid.services import audit
    from oncohybrid.services.segment import stored_labels_file

    c = login_client(app, "phil", PW)
    run_pk = _run_job(c, ws, kind="segment", model="tiny", store="1")
    job = c.get(f"/api/biomarkers/jobs/{run_pk}").json()
    assert job["status"] == "finished" and job["fraction"] == 1.0
    assert job["counts"]["done"] == 2
    by_series = {r["unit"]: r for r in job["results"]}
    for tp in ws.patient["timepoints"]:
        pet, _ = suv_volume(read_series(ws.data_dir / tp["pt_dir"]),
                            normalisation=Normalisation.BW)
        want_ml = float(np.count_nonzero(pet.array > 2.5)) * float(np.prod(pet.spacing)) / 1000
        seg = by_series[tp["pt_series_uid"]]["segment"]
        assert seg["labels"][0]["name"] == "lesion"
        assert seg["labels"][0]["volume_ml"] == pytest.approx(want_ml, rel=1e-3)
        assert seg["kept_for_record"] is True
        assert stored_labels_file(ws.settings, tp["pt_series_uid"]) is not None
    html = c.get(f"/biomarkers/jobs/{run_pk}?patient={ws.patient_pk}").text
    assert "kept for the record" in html and 'value="100"' in html
    assert "Refresh" not in c.get(f"/biomarkers/jobs/{run_pk}?patient={ws.patient_pk}").headers
    listing = c.get(f"/biomarkers?patient={ws.patient_pk}").text
    assert f'data-job="{run_pk}"' in listing
    entries = audit.list_entries(ws.settings, limit=50)
    assert any(e["action"] == "biomarkers.segment.start" and e["username"] == "phil"
               for e in entries)


@pytest.mark.slow  # the assessed workspace takes ~20 s to build
def test_radiomics_job_lists_every_stored_lesion(ws, app) -> None:
    from oncohybrid.services.record import patient_record

    c = login_client(app, "phil", PW)
    run_pk = _run_job(c, ws, kind="radiomics")
    job = c.get(f"/api/biomarkers/jobs/{run_pk}").json()
    assert job["status"] == "finished", job
    rows = job["results"][0]["radiomics"]
    rec = patient_record(ws.patient["patient_id"], ws.settings)
    measured = sum(1 for les in rec["lesions"] for o in les["observations"]
                   if o["mask_segment_number"])
    assert len(rows) == measured > 0
    assert all(r["n_features"] > 100 for r in rows)
    assert all(r["values"]["Mean"] is not None and r["values"]["Maximum"] >= r["values"]["Mean"]
               for r in rows)
    html = c.get(f"/biomarkers/jobs/{run_pk}?patient={ws.patient_pk}").text
    assert "radiomics-rows" in html


@pytest.mark.slow  # the assessed workspace takes ~20 s to build
def test_start_refuses_a_model_outside_the_models_folder(ws, app) -> None:
    c = login_client(app, "phil", PW)
    r = c.post("/biomarkers/start", data={"csrf_token": csrf_of(c), "patient": ws.patient_pk,
                                          "kind": "segment", "model": "../store"})
    assert r.status_code == 400


def test_a_running_task_reports_its_step(phantom_tp, tmp_path) -> None:
    """segment_study reports tiles to the job's progress sink when no callback is given."""
    import threading

    from oncohybrid.services.segment import segment_study
    from oncohybrid.services.segment_jobs import progress_sink

    pt, _ct = phantom_tp
    folder = write_onnx_folder(tmp_path / "m", suv_threshold_model(), {
        "name": "t", "inputs": [{"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
        "spacing_mm": [3.0, 4.0, 4.0], "patch_size": [48, 48, 48], "labels": {"1": "lesion"}})
    steps: list[str] = []

    def job() -> None:
        progress_sink.set(steps.append)
        segment_study(pt, folder, tmp_path / "s.dcm")

    t = threading.Thread(target=job)
    t.start()
    t.join()
    assert steps[0] == "reading PET"
    tiles = [s for s in steps if s.startswith("inference: tile")]
    assert tiles and tiles[-1].split()[-1].split("/")[0] == tiles[-1].split("/")[-1]
    assert steps[-1] == "writing DICOM SEG"


def test_a_job_whose_web_process_died_is_stopped(tmp_path, monkeypatch) -> None:
    """A run left ``running`` by a restarted app (its pid gone) is cancelled, its unfinished
    tasks failed with the reason, so the pages stop reloading; a live one is left alone."""
    import datetime as dt
    import socket
    import subprocess
    import sys as _sys

    from oncohybrid.config import get_settings
    from oncohybrid.services import segment_jobs
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun, BatchTask

    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    settings = get_settings(tmp_path)
    dead = subprocess.Popen([_sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([_sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ids = {}
        with session_scope(settings) as s:
            for name, pid in (("dead", dead.pid), ("live", live.pid)):
                run = BatchRun(kind="radiomics", status="running", cancel_requested=False,
                               params={}, cluster="web", retries=1, host=socket.gethostname(),
                               pid=pid, created_at=dt.datetime.now(dt.UTC))
                s.add(run)
                s.flush()
                s.add(BatchTask(run_pk=run.id, position=0, kind="radiomics", unit_key="P1",
                                patient_id="P1", input_hash="0" * 64, params_hash="0" * 64,
                                params={}, software_version="t", status="running",
                                attempts=1))
                ids[name] = run.id
        assert segment_jobs.reap_orphans(settings) == 1
        job = segment_jobs.job_view(settings, ids["dead"])
        assert job["status"] == "cancelled" and job["tasks"][0]["status"] == "failed"
        assert "start it again" in job["tasks"][0]["error"]
        assert segment_jobs.job_view(settings, ids["live"])["status"] == "running"
    finally:
        live.kill()
        live.wait()
