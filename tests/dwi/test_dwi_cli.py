"""``oncohybrid dwi adc``: the JSON contract, exit 2 on invalid input with nothing on stdout,
the Parametric Map (units, dciodvfy) and the ROI in LPS mm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.phantom.dwi import write_dwi_series

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def ge_series(tmp_path_factory):
    d = tmp_path_factory.mktemp("ge")
    return write_dwi_series(d / "DWI", encoding="ge", b_values=(0, 50, 400, 800), seed=11,
                            shape=(4, 48, 48))


def test_json_contract_with_roi_in_lps_mm(ge_series, tmp_path):
    out = tmp_path / "ADC.dcm"
    # liver cylinder centred at x = 22, y = -22 mm; the slab spans z = -6 .. 6 mm.
    r = invoke("dwi", "adc", str(ge_series.directory), "--out", str(out), "--b-values",
               "50,400,800", "--roi-centre", "22,-22,0", "--roi-radius-mm", "8", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"b_values", "b_value_source", "roi"}
    assert doc["b_values"] == [50.0, 400.0, 800.0]
    assert doc["b_value_source"] == "ge"
    assert set(doc["roi"]) == {"adc_mean_um2_s", "adc_median_um2_s", "n_voxels"}
    assert doc["roi"]["adc_mean_um2_s"] == pytest.approx(1100.0, rel=0.02)
    # independent count: voxel centres (affine of the phantom) within 8 mm of the centre
    idx = np.indices(ge_series.labels.shape).reshape(3, -1)
    lps = ge_series.affine[:3, :3] @ idx + ge_series.affine[:3, 3:4]
    expected = int((np.linalg.norm(lps - np.array([[22.0], [-22.0], [0.0]]), axis=0)
                    <= 8).sum())
    assert doc["roi"]["n_voxels"] == expected
    values = (ge_series.labels.reshape(-1)[np.linalg.norm(
        lps - np.array([[22.0], [-22.0], [0.0]]), axis=0) <= 8])
    assert set(values.tolist()) == {2}  # all liver


def test_parametric_map_names_its_units_and_passes_dciodvfy(ge_series, tmp_path):
    out = tmp_path / "ADC.dcm"
    r = invoke("dwi", "adc", str(ge_series.directory), "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["roi"] is None
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    rwvm = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    unit = rwvm.MeasurementUnitsCodeSequence[0]
    assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("um2/s", "UCUM")
    assert rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == "113041"
    pm = hd.pm.ParametricMap.from_dataset(ds) if hasattr(hd.pm.ParametricMap,
                                                          "from_dataset") else ds
    frames = ds.pixel_array.astype(np.float64)  # (frames, rows, cols) in um2/s
    tumour = frames[ge_series.mask("tumour")[: frames.shape[0]]]
    assert float(tumour.mean()) == pytest.approx(800.0, rel=0.02)
    assert pm is not None
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed: scripts/install-system-deps.sh")
    proc = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines()
              if line.startswith("Error")]
    assert errors == []


def test_one_b_value_exits_2_naming_it(tmp_path):
    write_dwi_series(tmp_path / "one", b_values=(800,), shape=(2, 16, 16))
    r = invoke("dwi", "adc", str(tmp_path / "one"), "--out", str(tmp_path / "a.dcm"),
               "--json")
    assert r.exit_code == 2 and r.stdout == ""
    assert "only one b-value (b = 800" in r.stderr


def test_no_b_value_anywhere_exits_2_naming_the_b_value(tmp_path):
    write_dwi_series(tmp_path / "none", encoding="siemens", b_values=(0, 800),
                     shape=(2, 16, 16))
    for path in (tmp_path / "none").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds[0x0019100C]
        ds.save_as(path)
    r = invoke("dwi", "adc", str(tmp_path / "none"), "--out", str(tmp_path / "a.dcm"),
               "--json")
    assert r.exit_code == 2 and r.stdout == ""
    assert "no b-value" in r.stderr and "(0018,9087)" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--b-values", "50,1000"], "b-value 1000"),
    (["--b-values", "800"], "two different b-values"),
    (["--b-values", "fifty"], "--b-values"),
    (["--roi-centre", "0,0,0"], "go together"),
    (["--roi-centre", "0,0", "--roi-radius-mm", "5"], "expected 3 numbers"),
    (["--roi-centre", "900,900,900", "--roi-radius-mm", "5"], "no voxel"),
])
def test_invalid_options_exit_2_with_nothing_on_stdout(ge_series, tmp_path, args, message):
    r = invoke("dwi", "adc", str(ge_series.directory), "--out", str(tmp_path / "a.dcm"),
               *args, "--json")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert message in r.stderr
    assert not (tmp_path / "a.dcm").exists()


def test_pydicom_public_mr_files_read_without_errors():
    """pydicom's MR test files (Toshiba MR_small in its transfer syntaxes) carry no b-value:
    read as MR without error, and refused for ADC with the DWI reason."""
    from pydicom.data import get_testdata_file

    from oncohybrid.dicom.diffusion import DiffusionError, plane_diffusion, read_dwi
    from oncohybrid.dicom.volume import load_series

    for name in ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                 "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_padded.dcm"):
        path = get_testdata_file(name)
        if path is None:
            continue
        ds = pydicom.dcmread(path)
        info = plane_diffusion(ds)
        assert info.b_value is None and info.source is None
        volume = load_series([path])
        assert volume.spatial_shape == (1, 64, 64)
        with pytest.raises(DiffusionError, match="no b-value"):
            read_dwi([path])


def test_nibabel_siemens_dwi_files_give_b_values_from_the_siemens_header(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    import gzip

    from oncohybrid.dicom.diffusion import DiffusionKind, read_dwi

    data = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        if not (data / name).is_file():
            pytest.skip(f"{name} not shipped with this nibabel")
        with gzip.open(data / name) as src:
            (tmp_path / name.removesuffix(".gz")).write_bytes(src.read())
    dwi = read_dwi(tmp_path)
    assert dwi.b_values == [0.0, 1000.0] and dwi.b_value_source.value == "siemens"
    assert [v.kind for v in dwi.volumes] == [DiffusionKind.NONE, DiffusionKind.DIRECTIONAL]
    # without (0019,100C) the CSA header gives the same b-values
    for path in tmp_path.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds[0x0019100C]
        ds.save_as(path)
    dwi = read_dwi(tmp_path)
    assert dwi.b_values == [0.0, 1000.0]
    assert all(v.attribute.startswith("(0029,1010)") for v in dwi.volumes)
