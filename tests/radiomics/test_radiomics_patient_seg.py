"""``oncohybrid radiomics --patient ID`` on an assessed phantom patient, and a DICOM SEG
``--mask`` against the same mask as NIfTI (#18, RF).

The phantom patient is assessed by the demo pipeline (small size), which stores each
measured lesion mask as a SEG per timepoint (docs/record.md "stored masks"), as in
tests/report/test_report_stored_masks.py. Independent checks: the record's own SUVmax of
each lesion (measured by the assess pipeline) equals the maximum intensity (84IY) of the
row's ROI; the row's voxel-count volume (YEKZ) is the stored mask's voxel count times the
PET voxel volume; every row's features equal those of the plain ``IMAGE --mask`` path on the
exported SUV image and mask; a SEG written here with highdicom gives the same features as
the NIfTI mask it was made from.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def assessed(tmp_path_factory):
    from oncohybrid.config import get_settings
    from oncohybrid.services.demo import run_demo

    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("radiomics-home")
    mp.setenv("ONCOHYBRID_HOME", str(home))
    mp.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(home)
    result = run_demo(settings, size="small")
    pid = result.ground_truth["patients"][0]["patient_id"]
    yield settings, pid
    mp.undo()


def _record(settings, pid):
    """(timepoint name, lesion key) → (record SUVmax, PET series UID) of lesions in use."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_record import Lesion, Observation, Timepoint, TimepointStudy

    with session_scope(settings) as s:
        ppk = s.scalar(sa.select(Patient.id).where(Patient.patient_id == pid))
        rows = s.execute(
            sa.select(Timepoint.tp_index, Lesion.key, Observation.suv_max,
                      TimepointStudy.pet_series_uid)
            .join(Observation, Observation.timepoint_pk == Timepoint.id)
            .join(Lesion, Observation.lesion_pk == Lesion.id)
            .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
            .where(Timepoint.patient_pk == ppk, Observation.in_use, Observation.present,
                   Observation.mask_segment_number.is_not(None))).all()
    return {(f"TP{i}", k): (suv, uid) for i, k, suv, uid in rows}


def test_patient_rows_per_timepoint_and_lesion_match_the_record(assessed, tmp_path):
    settings, pid = assessed
    res = runner.invoke(app, ["radiomics", "--patient", pid, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    record = _record(settings, pid)
    assert record, "the demo patient has stored lesion masks"
    assert {(r["timepoint"], r["lesion"]) for r in rows} == set(record)
    for r in rows:
        suv_max, pet_uid = record[(r["timepoint"], r["lesion"])]
        assert r["pet_series_uid"] == pet_uid
        f = r["features"]
        assert f["84IY"] == pytest.approx(suv_max, rel=1e-3), (r["timepoint"], r["lesion"])
        assert r["settings"]["name"] == "pet-suvbw"
        assert f["Q4LE"] <= f["84IY"]
        assert "KOBO" in " ".join(f)  # 3D texture
    # CSV without --json: one line per row, identifiers first
    res = runner.invoke(app, ["radiomics", "--patient", pid])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [(t["timepoint"], t["lesion"]) for t in table] == [
        (r["timepoint"], r["lesion"]) for r in rows]
    assert float(table[0]["Q4LE"]) == pytest.approx(rows[0]["features"]["Q4LE"], rel=1e-9)


def _write_nifti(path: Path, arr_zyx: np.ndarray, spacing_zyx) -> None:
    import nibabel as nib

    aff = np.diag([spacing_zyx[2], spacing_zyx[1], spacing_zyx[0], 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr_zyx.transpose(2, 1, 0)), aff), str(path))


def _first_lesion(settings, pid):
    """SUV volume, stored mask, PET files and lesion of the baseline's first lesion."""
    from oncohybrid.dicom.suv import suv_volume
    from oncohybrid.services.masks import stored_masks
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_record import Timepoint, TimepointStudy
    from oncohybrid.store.queries import series_files

    with session_scope(settings) as s:
        ppk = s.scalar(sa.select(Patient.id).where(Patient.patient_id == pid))
        tp_pk, pet_uid = s.execute(
            sa.select(Timepoint.id, TimepointStudy.pet_series_uid)
            .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
            .where(Timepoint.patient_pk == ppk).order_by(Timepoint.tp_index)).first()
    files = series_files(pet_uid, settings)
    pet, _ = suv_volume(files)
    masks = stored_masks(settings, tp_pk, [pydicom.dcmread(f, stop_before_pixels=True)
                                           for f in files])
    key = sorted(masks)[0]
    return pet, masks[key], files, key


def test_patient_row_equals_the_image_mask_path_on_exported_files(assessed, tmp_path):
    settings, pid = assessed
    pet, mask, _files, key = _first_lesion(settings, pid)
    spacing = tuple(float(v) for v in pet.spacing)
    _write_nifti(tmp_path / "suv.nii.gz", np.asarray(pet.array, np.float32), spacing)
    _write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8), spacing)
    # the pet-suvbw settings spelled out from config C (a --params file without ``base``
    # starts from defaults that do not validate: configs.py)
    (tmp_path / "pet.yaml").write_text(
        "base: C\nnew_spacing_mm: null\nimage_interpolation: none\n"
        "round_intensities: false\nround_input: false\noutlier_sigma: null\n"
        "resegment_range: [0.0, null]\ndiscretisation: fbs\nbin_width: 0.25\n"
        "ivh_discretisation: fbs\nivh_bin_width: 0.1\nmask_interpolation: none\n")
    res = runner.invoke(app, ["radiomics", str(tmp_path / "suv.nii.gz"), "--mask",
                              str(tmp_path / "mask.nii.gz"), "--params",
                              str(tmp_path / "pet.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    files_feats = json.loads(res.stdout)["features"]
    res = runner.invoke(app, ["radiomics", "--patient", pid, "--json"])
    row = next(r for r in json.loads(res.stdout)
               if r["timepoint"] == "TP0" and r["lesion"] == key)
    assert row["n_voxels"] == int(mask.sum())
    assert row["features"]["YEKZ"] == pytest.approx(mask.sum() * np.prod(spacing), rel=1e-9)
    assert set(files_feats) == set(row["features"])
    for k, v in row["features"].items():
        assert files_feats[k] == pytest.approx(v, rel=1e-6, abs=1e-9, nan_ok=True), k


def test_dicom_seg_mask_gives_the_nifti_mask_result(assessed, tmp_path):
    """A SEG written with highdicom on the phantom PET series and the same mask as NIfTI."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from oncohybrid.dicom.volume import load_series, sort_slices

    settings, pid = assessed
    pet, mask, files, _key = _first_lesion(settings, pid)
    series_dir = tmp_path / "pet"
    series_dir.mkdir()
    for f in files:
        (series_dir / Path(f).name).write_bytes(Path(f).read_bytes())
    datasets = sort_slices([pydicom.dcmread(f) for f in files])
    raw = load_series(datasets)
    assert raw.array.shape == mask.shape
    # a box around the lesion grown by one voxel: a ROI unlike the stored one
    roi = np.zeros(mask.shape, bool)
    nz = np.nonzero(mask)
    roi[tuple(slice(max(int(a.min()) - 1, 0), int(a.max()) + 2) for a in nz)] = True
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="box", segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=roi.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[desc],
        series_instance_uid=hd.UID(), series_number=77, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="oncohybrid tests", manufacturer_model_name="t",
        software_versions="0", device_serial_number="0")
    seg.save_as(tmp_path / "roi_seg.dcm")
    spacing = tuple(float(v) for v in raw.spacing)
    _write_nifti(tmp_path / "roi.nii.gz", roi.astype(np.uint8), spacing)
    out = {}
    for name, m in (("seg", tmp_path / "roi_seg.dcm"), ("nifti", tmp_path / "roi.nii.gz")):
        res = runner.invoke(app, ["radiomics", str(series_dir), "--mask", str(m),
                                  "--ibsi-config", "D", "--json"])
        assert res.exit_code == 0, res.output
        out[name] = json.loads(res.stdout)["features"]
    from oncohybrid.services.radiomics import read_image, read_mask

    assert np.array_equal(read_mask(tmp_path / "roi_seg.dcm", read_image(series_dir)), roi)
    assert out["seg"].keys() == out["nifti"].keys()
    for k, v in out["nifti"].items():
        assert out["seg"][k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k
