"""`quantify`: physiological uptake exclusion and tracer awareness (issue #12).

A bladder was lesion 1 of 21 in a whole-body FDG quantification; a Lu-177 SPECT stored as
PET got PERCIST thresholds with no word. Phantom: clinical field of view (vertex to
pelvis, bladder, heart, kidneys in view), FDG, Series Type WHOLE BODY.
"""

from __future__ import annotations

import json
import shutil

import jsonschema
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.services.quantify import QUANTIFY_JSON_SCHEMA

phantom = pytest.importorskip("oncohybrid.phantom")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("wb")
    truth = phantom.generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=3,
                                    size="clinical")
    return root / truth["patients"][0]["patient_id"] / "TP0"


@pytest.fixture()
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    from oncohybrid.cli.main import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def _run(cli, *args):
    res = cli("quantify", *args, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, QUANTIFY_JSON_SCHEMA)
    return doc


def test_bladder_is_not_a_lesion_in_whole_body_fdg(study, cli):
    raw = _run(cli, study / "PT", "--ct", study / "CT", "--method", "suv2.5",
               "--no-exclude-physiological")
    # the bladder: the lowest component of >= 150 ml (phantom bladder ~280 ml, midline)
    big = [m for m in raw["lesions"] if m["mtv_ml"] >= 150.0]
    bladder = min(big, key=lambda m: m["centroid_lps_mm"][2])
    assert raw["physiological_exclusion"]["excluded"] == []
    doc = _run(cli, study / "PT", "--ct", study / "CT", "--method", "suv2.5")
    assert doc["tracer"]["family"] == "FDG" and doc["tracer"]["radionuclide"] == "F-18"
    phys = doc["physiological_exclusion"]
    assert phys["default"] is True and set(phys["organs"]) == {"heart", "bladder", "kidneys",
                                                               "brain"}
    organs = [e["organ"] for e in phys["excluded"]]
    assert "bladder" in organs and "heart" in organs
    c = np.asarray(bladder["centroid_lps_mm"])
    for m in doc["lesions"]:
        assert np.linalg.norm(np.asarray(m["centroid_lps_mm"]) - c) > 20.0, m["lesion_id"]
    assert doc["lesions"][0]["mtv_ml"] < 150.0  # lesion 1 is a lesion, not an organ
    assert len(doc["lesions"]) == len(raw["lesions"]) - len(phys["excluded"])
    # only the bladder asked for: the heart stays
    only = _run(cli, study / "PT", "--ct", study / "CT", "--method", "suv2.5",
                "--exclude-physiological", "bladder")
    assert [e["organ"] for e in only["physiological_exclusion"]["excluded"]] == ["bladder"]
    bad = cli("quantify", study / "PT", "--exclude-physiological", "spleen", "--json")
    assert bad.exit_code == 2 and "spleen" in bad.output


def _retag(src, dst, nuclide_text, half_life_s, code=None):
    dst.mkdir(parents=True)
    for f in src.iterdir():
        ds = pydicom.dcmread(f)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.Radiopharmaceutical = nuclide_text
        item.RadionuclideHalfLife = str(half_life_s)
        if code is None:
            del item.RadiopharmaceuticalCodeSequence
            del item.RadionuclideCodeSequence
        ds.save_as(dst / f.name)


def test_lu177_stored_as_pet_is_refused_for_percist(study, cli, tmp_path):
    # Same images relabelled Lu-177 DOTATATE (half-life 6.647 d): SPECT physics in a PT
    # container. The SUV maths still runs (half-life from the header); PERCIST must not.
    lu = tmp_path / "lu" / "PT"
    _retag(study / "PT", lu, "Lu-177 DOTATATE", 574300.8)
    res = cli("quantify", lu, "--ct", study / "CT", "--json")
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "percist" in out and "Lu-177" in out and "SPECT/NM" in out
    assert "--allow-tracer-mismatch" in out
    doc = _run(cli, lu, "--ct", study / "CT", "--method", "suv4")
    assert doc["tracer"]["radionuclide"] == "Lu-177" and doc["tracer"]["imaging"] == "SPECT/NM"
    assert any("emits no positrons" in n for n in doc["notes"])
    assert doc["physiological_exclusion"]["default"] and not doc["physiological_exclusion"][
        "organs"]  # not whole-body FDG: nothing excluded by default
    ok = cli("quantify", lu, "--ct", study / "CT", "--json", "--allow-tracer-mismatch")
    assert ok.exit_code == 0, ok.output
    assert any("assessed anyway" in n for n in json.loads(ok.stdout)["notes"])


def test_unknown_tracer_warns_and_psma_is_refused(study, cli, tmp_path):
    unk = tmp_path / "unk" / "PT"
    _retag(study / "PT", unk, "", 6586.2)
    doc = _run(cli, unk, "--ct", study / "CT")  # F-18 by half-life, compound not stated
    assert doc["tracer"]["family"] == "unknown" and doc["tracer"]["radionuclide"] == "F-18"
    assert any("not stated" in n for n in doc["notes"])
    psma = tmp_path / "psma" / "PT"
    _retag(study / "PT", psma, "18F-PSMA-1007", 6586.2)
    res = cli("quantify", psma, "--ct", study / "CT", "--json")
    assert res.exit_code == 2 and "PSMA" in res.output
    shutil.rmtree(tmp_path / "psma")
