"""Encapsulated PDF and Key Object Selection of a board session: contents, validity
(dciodvfy when installed), key images through the target lesion, and C-STORE to a Storage
SCP through the PACS edge (``oncohybrid pacs node add`` + ``oncohybrid board send``)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import numpy as np
import pydicom
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
KOS = "1.2.840.10008.5.1.4.1.1.88.59"


def ok_json(*args: str) -> dict:
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _session(ws) -> int:
    b = ok_json("board", "create", "PACS MDT", "--specialty", "lung")
    sid = ok_json("board", "session", str(b["board_id"]), "--date", "2027-03-02")["session_id"]
    ok_json("board", "add", str(sid), ws.patient_ids[0], "--question", "restage")
    return sid


def test_encapsulated_pdf_and_key_objects(in_ws, tmp_path):
    from oncohybrid.services import boards
    from oncohybrid.services.record import latest_assessments

    sid = _session(in_ws)
    out = ok_json("board", "dicom", str(sid), "--out", str(tmp_path / "dcm"))
    (case,) = out["cases"]
    pdf = pydicom.dcmread(case["pdf"])
    kos = pydicom.dcmread(case["kos"])
    assert pdf.SOPClassUID == ENCAPSULATED_PDF and kos.SOPClassUID == KOS
    pid = in_ws.patient_ids[0]
    assert pdf.PatientID == kos.PatientID == pid
    assert pdf.StudyInstanceUID == kos.StudyInstanceUID  # both in the current study
    # the encapsulated document is the case's section with its responses
    doc = bytes(pdf.EncapsulatedDocument)[: int(pdf.EncapsulatedDocumentLength)]
    (tmp_path / "case.pdf").write_bytes(doc)
    text = subprocess.run(["pdftotext", str(tmp_path / "case.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    for a in latest_assessments(pid, in_ws.settings).values():
        assert a["result"]["timepoints"][-1]["overall"] + " — " in text
    # KOS: (113005, DCM) "For Conference"; every referenced image listed as evidence
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113005", "DCM")
    refs = {it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for it in kos.ContentSequence if "ReferencedSOPSequence" in it}
    evidence = {sop.ReferencedSOPInstanceUID
                for st in kos.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for sop in se.ReferencedSOPSequence}
    assert refs == evidence == set(case["key_images"]) and len(refs) == 4  # CT+PET × 2
    assert len(kos.CurrentRequestedProcedureEvidenceSequence) == 2  # baseline and current
    # each key image lies within half a slice of the first target lesion's centroid
    pres = boards.case_presentation(in_ws.settings, case["case_id"])
    centroids = {img["study_uid"]: np.asarray(img["centroid_lps_mm"])
                 for img in pres["images"]}
    from oncohybrid.store.queries import series_files

    by_uid = {}
    for st in kos.CurrentRequestedProcedureEvidenceSequence:
        for se in st.ReferencedSeriesSequence:
            for f in series_files(se.SeriesInstanceUID, in_ws.settings):
                ds = pydicom.dcmread(f, stop_before_pixels=True)
                by_uid[ds.SOPInstanceUID] = ds
    for uid in refs:
        ds = by_uid[uid]
        zs = sorted(float(h.ImagePositionPatient[2]) for h in by_uid.values()
                    if h.SeriesInstanceUID == ds.SeriesInstanceUID)
        spacing = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
        dz = abs(float(ds.ImagePositionPatient[2]) - centroids[ds.StudyInstanceUID][2])
        assert dz <= spacing / 2 + 1e-3
    if shutil.which("dciodvfy"):
        for f in out["files"]:
            res = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
            errors = [ln for ln in (res.stdout + res.stderr).splitlines()
                      if ln.startswith("Error")]
            assert errors == [], (f, errors)


def test_send_to_a_storage_scp(in_ws, tmp_path):
    from pynetdicom import AE, evt

    received: list[str] = []

    def on_store(event):  # noqa: ANN001, ANN202
        received.append(event.dataset.SOPClassUID)
        return 0x0000

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ae = AE(ae_title="BOARDSCP")
    for uid in (ENCAPSULATED_PDF, KOS):
        ae.add_supported_context(uid)
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        r = runner.invoke(app, ["pacs", "node", "add", "boardscp", "--ae", "BOARDSCP",
                                "--host", "127.0.0.1", "--port", str(port)])
        assert r.exit_code == 0, r.stderr
        sid = _session(in_ws)
        out = ok_json("board", "send", str(sid), "--node", "boardscp", "--out",
                      str(tmp_path / "sent"))
        assert out["sent"] == 2 and out["failed"] == []
        assert sorted(received) == sorted([ENCAPSULATED_PDF, KOS])
        r = runner.invoke(app, ["board", "send", str(sid), "--node", "nosuchnode", "--json"])
        assert r.exit_code == 2 and "nosuchnode" in r.stderr and r.stdout == ""
    finally:
        server.shutdown()
