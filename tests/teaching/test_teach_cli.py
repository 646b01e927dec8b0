"""``oncohybrid teach capture|export|import|ls`` on the assessed phantom patient (#14).

The contract of the issue: ``capture --json`` → ``{"case_id"}``, ``export --out case.zip``
(de-identified DICOM + case.json), ``import`` (idempotent, exit 0 when present; a corrupt
or foreign zip is refused with the reason and nothing is half-imported), ``ls --json`` →
``{"cases": [{"case_id", "title", …}]}``; invalid input exits 2 with nothing on stdout.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def _ok(args: list[str]) -> dict:
    res = runner.invoke(app, ["teach", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _refused(args: list[str], reason: str) -> None:
    res = runner.invoke(app, ["teach", *args])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert reason in res.stderr, res.stderr


@pytest.fixture(scope="module")
def captured(teach_ws, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ONCOHYBRID_HOME", str(teach_ws.settings.home))
    doc = _ok(["capture", teach_ws.patient["patient_id"], "--title", "Responding lung cancer"])
    out = tmp_path_factory.mktemp("export") / "case.zip"
    _ok(["export", doc["case_id"], "--out", str(out)])
    yield doc["case_id"], out
    mp.undo()


def test_capture_lists_and_exports(in_ws, captured):
    case_id, out = captured
    cases = _ok(["ls"])["cases"]
    row = next(c for c in cases if c["case_id"] == case_id)
    assert row["title"] == "Responding lung cancer" and row["status"] == "draft"
    assert row["timepoints"] == 2 and row["lesions"] == 4
    assert {"modality:PET/CT", "criterion:recist1.1", "organ:lung"} <= set(row["tags"])
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        doc = json.loads(zf.read("case.json"))
    assert doc["case_id"] == case_id and doc["format"] == "oncohybrid-teaching-case"
    pt0 = [n for n in names if n.startswith("tp0/PT/")]
    ct0 = [n for n in names if n.startswith("tp0/CT/")]
    p = in_ws.patient["timepoints"][0]
    assert len(pt0) == p["pt_grid"]["shape"][0] and len(ct0) == p["ct_grid"]["shape"][0]
    assert "tp0/SEG.dcm" in names and "tp1/SEG.dcm" in names
    kinds = [q["kind"] for q in doc["questions"]]
    assert {"category", "percist", "deauville", "click", "measurement"} <= set(kinds)
    recist = next(q for q in doc["questions"] if q["params"].get("criterion") == "recist1.1")
    assert recist["reference"]["answer"] == "PR"  # the stored assessment at follow-up 1


def test_capture_chosen_timepoints_and_bad_input(in_ws):
    pid = in_ws.patient["patient_id"]
    base = in_ws.patient["timepoints"][0]["date"]
    doc = _ok(["capture", pid, "--timepoints", base, "--title", "Baseline only"])
    row = next(c for c in _ok(["ls"])["cases"] if c["case_id"] == doc["case_id"])
    assert row["timepoints"] == 1
    _refused(["capture", pid, "--timepoints", "2001-01-01", "--title", "x"],
             "no assessed timepoint on 2001-01-01")
    _refused(["capture", pid, "--timepoints", "yesterday", "--title", "x"], "not a date")
    _refused(["capture", "NOBODY", "--title", "x"], "no stored patient")
    _refused(["capture", pid, "--title", "  "], "needs a title")
    _refused(["export", "TC-NOPE", "--out", "/tmp/x.zip"], "not found")


def test_import_into_another_site_is_idempotent(captured, tmp_path, monkeypatch):
    case_id, out = captured
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "site-b"))
    assert _ok(["ls"]) == {"cases": []}
    assert _ok(["import", str(out)]) == {"case_id": case_id, "status": "imported"}
    assert _ok(["import", str(out)]) == {"case_id": case_id, "status": "already present"}
    cases = _ok(["ls"])["cases"]
    assert [c["case_id"] for c in cases] == [case_id]
    assert cases[0]["questions"] >= 5 and cases[0]["timepoints"] == 2
    # The files arrived whole: same bytes as in the zip.
    folder = tmp_path / "site-b" / "teaching" / "cases" / case_id
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            if name != "case.json":
                assert (folder / name).read_bytes() == zf.read(name)
    # The imported case works at site B: its masks resolve on its own PET copies.
    from oncohybrid.config import get_settings
    from oncohybrid.services import teaching

    labels, _affine, names = teaching.click_labels(case_id, 0, get_settings())
    assert sorted(names.values()) == ["L1", "L2", "L3", "L4"]
    assert all((labels == n).any() for n in names)
    # A re-export from site B imports back as the same case.
    again = tmp_path / "again.zip"
    _ok(["export", case_id, "--out", str(again)])
    with zipfile.ZipFile(again) as zf:
        assert json.loads(zf.read("case.json"))["case_id"] == case_id


def _nothing_imported(home: Path) -> None:
    cases = home / "teaching" / "cases"
    assert not cases.exists() or not any(cases.iterdir())
    assert not [p for p in (home / "teaching").glob(".import-*")]
    assert _ok(["ls"]) == {"cases": []}


def _rezip(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        members = {n: zin.read(n) for n in zin.namelist()}
        for name, data in edit(members).items():
            zout.writestr(name, data)


def test_corrupt_or_foreign_zips_are_refused_and_nothing_is_half_imported(
        captured, tmp_path, monkeypatch):
    _case_id, good = captured
    home = tmp_path / "site-c"
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    _refused(["import", str(truncated)], "not a zip file")
    flipped = bytearray(data)
    # corrupt one byte inside the compressed data of the first DICOM member
    with zipfile.ZipFile(good) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".dcm"))
    flipped[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(flipped))
    _refused(["import", str(tmp_path / "crc.zip")], "corrupt zip")
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("readme.txt", "holiday photos")
    _refused(["import", str(foreign)], "not an oncohybrid teaching case")
    other_format = tmp_path / "other.zip"
    with zipfile.ZipFile(other_format, "w") as zf:
        zf.writestr("case.json", json.dumps({"format": "radiopaedia", "id": 1}))
    _refused(["import", str(other_format)], "not an oncohybrid teaching case")

    def tamper(m):
        name = next(n for n in m if n.startswith("tp1/PT/"))
        b = bytearray(m[name])
        b[len(b) // 2] ^= 0x5A  # one changed pixel byte
        m[name] = bytes(b)
        return m
    _rezip(good, tmp_path / "tampered.zip", tamper)
    _refused(["import", str(tmp_path / "tampered.zip")], "does not match its SHA-256")

    def identified(m):
        # a listed file whose identity was never removed, with a matching checksum
        name = next(n for n in m if n.startswith("tp0/CT/"))
        ds = pydicom.dcmread(io.BytesIO(m[name]))
        ds.PatientIdentityRemoved = "NO"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        m[name] = buf.getvalue()
        doc = json.loads(m["case.json"])
        for f in doc["files"]:
            if f["path"] == name:
                f["sha256"] = hashlib.sha256(m[name]).hexdigest()
        m["case.json"] = json.dumps(doc)
        return m
    _rezip(good, tmp_path / "identified.zip", identified)
    _refused(["import", str(tmp_path / "identified.zip")], "not de-identified")

    def escape(m):
        doc = json.loads(m["case.json"])
        doc["files"].append({"path": "../../evil.dcm", "sha256": "0"})
        m["case.json"] = json.dumps(doc)
        return m
    _rezip(good, tmp_path / "escape.zip", escape)
    _refused(["import", str(tmp_path / "escape.zip")], "unsafe file path")
    _nothing_imported(home)


def test_a_failure_while_importing_leaves_nothing(captured, tmp_path, monkeypatch):
    from oncohybrid.services import teaching

    _case_id, good = captured
    home = tmp_path / "site-d"
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))

    class Boom(Exception):
        pass

    def fail(*_a, **_k):
        raise Boom("disk full")

    monkeypatch.setattr(teaching, "TeachRevision", fail)  # after the files are extracted
    with pytest.raises(Boom):
        teaching.import_case(good)
    monkeypatch.undo()
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    _nothing_imported(home)
    assert _ok(["import", str(good)])["status"] == "imported"
