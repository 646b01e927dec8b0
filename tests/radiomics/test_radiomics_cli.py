"""``oncohybrid radiomics`` end to end on the IBSI digital phantom (NIfTI in, JSON out).

The digital phantom's reference values are exact to 3 significant digits (IBSI 1 §5.1;
shared/data/ibsi-radiomics): every non-texture row and every texture row the installed
families compute must match through the command line.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import refdata
from oncohybrid.cli.main import app

runner = CliRunner()
AGG = {"2D, averaged": "BTW3", "2D, slice-merged": "SUJT", "2.5D, direction-merged": "JJUI",
       "2.5D, merged": "ZW7Z", "3D, averaged": "ITBB", "3D, merged": "IAZD", "2D": "8QNN",
       "2.5D": "62GR", "3D": "KOBO"}
IVH = {"ivh.V10": "BC2M/V10", "ivh.V90": "BC2M/V90", "ivh.I10": "GBPN/I10",
       "ivh.I90": "GBPN/I90", "ivh.V10minusV90": "DDTU/V10-V90",
       "ivh.I10minusI90": "CNV2/I10-I90"}


def _phantom() -> tuple[Path, Path]:
    d = refdata.require("ibsi-radiomics") / "ibsi1_digital_phantom"
    return d / "phantom.nii.gz", d / "mask.nii.gz"


def _reference() -> dict[str, tuple[float, float]]:
    path = refdata.require("ibsi-radiomics") / "ibsi1_reference_values.csv"
    out = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["dataset"] != "digital_phantom" or not r["value"].strip():
                continue
            key = IVH[r["math_tag"]] if r["family"] == "ivh" else (
                r["ibsi_id"] + ("/" + AGG[r["aggregation"]] if r["aggregation"] else ""))
            out[key] = (float(r["value"]), float(r["tolerance"] or 0))
    return out


def test_digital_phantom_through_the_cli_matches_every_computed_reference_value() -> None:
    image, mask = _phantom()
    res = runner.invoke(app, ["radiomics", str(image), "--mask", str(mask),
                              "--ibsi-config", "digital-phantom", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"features", "settings"}
    feats = out["features"]
    ref = _reference()
    wrong = []
    for key, (value, tol) in ref.items():
        if key not in feats:
            continue
        r3 = float(f"{feats[key]:.3g}")
        if not abs(r3 - value) <= tol + 1e-12 * max(1.0, abs(value)):
            wrong.append(f"{key}: {feats[key]:.4g} vs {value} ± {tol}")
    assert not wrong, "\n".join(wrong)
    # the non-texture families are all installed: each of their rows must be there
    non_texture = [k for k in ref if "/" not in k or k[:4] in ("BC2M", "GBPN", "DDTU", "CNV2")]
    assert [k for k in non_texture if k not in feats] == []
    assert out["settings"]["name"] == "digital-phantom"
    assert math.isclose(feats["Q4LE"], 2.1486, rel_tol=1e-3)  # IBSI: mean 2.15


def test_pyradiomics_names_where_a_mapping_exists() -> None:
    image, mask = _phantom()
    res = runner.invoke(app, ["radiomics", str(image), "--mask", str(mask),
                              "--ibsi-config", "digital-phantom", "--names", "pyradiomics",
                              "--json"])
    assert res.exit_code == 0, res.output
    feats = json.loads(res.stdout)["features"]
    assert float(f"{feats['original_firstorder_Mean']:.3g}") == 2.15
    assert "IPH6" in feats  # excess kurtosis differs from pyradiomics': keeps its IBSI id


def test_table_batch_writes_one_csv_row_per_roi_with_the_extra_columns(tmp_path: Path) -> None:
    image, mask = _phantom()
    table = tmp_path / "list.csv"
    table.write_text(f"patient,image,mask\nP1,{image},{mask}\nP2,{image},{mask}\n")
    res = runner.invoke(app, ["radiomics", "--table", str(table),
                              "--ibsi-config", "digital-phantom"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert [r["patient"] for r in rows] == ["P1", "P2"]
    assert float(f"{float(rows[0]['ECT3']):.3g}") == 3.05  # IBSI variance 3.05


@pytest.mark.parametrize(("args", "names"), [
    (["missing.nii.gz", "--mask", "m.nii.gz"], "missing.nii.gz"),
    (["{image}", "--mask", "nope.nii.gz"], "nope.nii.gz"),
    (["{image}", "--mask", "{mask}", "--ibsi-config", "F"], "--ibsi-config"),
    (["{image}", "--mask", "{mask}", "--names", "mirp"], "--names"),
])
def test_invalid_input_exits_2_naming_the_file_or_field(args: list[str], names: str) -> None:
    image, mask = _phantom()
    argv = ["radiomics", *[a.format(image=image, mask=mask) for a in args], "--json"]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert names in res.output


def test_params_yaml_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    image, mask = _phantom()
    params = tmp_path / "p.yaml"
    params.write_text("base: C\nbin_widht: 10\n")
    res = runner.invoke(app, ["radiomics", str(image), "--mask", str(mask), "--params",
                              str(params), "--json"])
    assert res.exit_code == 2 and "bin_widht" in res.output
