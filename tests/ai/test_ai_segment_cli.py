"""``oncohybrid segment`` on a phantom PET/CT with a tiny ONNX model whose mask is known
(SUV > 2.5 → lesion): the written DICOM SEG, read back with highdicom, and the --json
volumes and components against voxel counts; ``segment-eval`` round trip; card errors."""

from __future__ import annotations

import json

import numpy as np
import onnx_models
import pytest
from skimage.measure import label as sk_label
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def pet(phantom_tp):
    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import read_series, sort_slices

    datasets = read_series(phantom_tp[0])
    vol, _ = suv_volume(datasets, normalisation=Normalisation.BW)
    return vol, sort_slices(datasets)


def _card(spacing, patch=(16, 32, 32), inputs=None):
    return {"name": "suv-threshold", "inputs": inputs or [
        {"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
        "spacing_mm": list(spacing), "patch_size": list(patch),
        "labels": {"1": "lesion"}, "overlap": 0.5}


def _read_seg(path, sources):
    import highdicom as hd

    seg = hd.seg.segread(path)
    uids = [str(ds.SOPInstanceUID) for ds in sources]
    arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                            segment_numbers=[1])
    return seg, arr[..., 0].astype(bool)


def test_segment_writes_the_threshold_mask_as_dicom_seg(tmp_path, phantom_tp, pet):
    vol, sources = pet
    expected = vol.array > 2.5
    assert 0 < expected.sum() < expected.size // 10
    model = onnx_models.write_onnx_folder(tmp_path / "model",
                                          onnx_models.suv_threshold_model(),
                                          _card(vol.spacing))
    out = tmp_path / "seg.dcm"
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model),
                            "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    seg, mask = _read_seg(out, sources)
    np.testing.assert_array_equal(mask, expected)
    desc = seg.SegmentSequence[0]
    assert desc.SegmentLabel == "lesion" and desc.SegmentAlgorithmType == "AUTOMATIC"
    assert desc.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"  # SCT Lesion
    voxel_ml = float(np.prod(vol.spacing)) / 1000.0
    item = doc["labels"]["1"]
    assert item["voxels"] == int(expected.sum())
    assert item["volume_ml"] == pytest.approx(expected.sum() * voxel_ml, rel=1e-9)
    lab = sk_label(expected, connectivity=2)  # 18-connectivity in 3-D
    assert item["n_components"] == lab.max() == len(item["components"])
    sizes = sorted(np.bincount(lab.ravel())[1:].tolist(), reverse=True)
    assert [c["voxels"] for c in item["components"]] == sizes
    assert sum(c["volume_ml"] for c in item["components"]) == pytest.approx(item["volume_ml"])


def test_segment_with_ct_channel_resampled_to_pet(tmp_path, phantom_tp, pet):
    vol, sources = pet
    card = _card(vol.spacing, patch=(24, 24, 24), inputs=[
        {"modality": "CT", "units": "HU", "normalisation": "ct-window", "window": [-1000, 1000]},
        {"modality": "PT", "units": "SUVbw"}])
    model = onnx_models.write_onnx_folder(
        tmp_path / "model2", onnx_models.suv_threshold_model(n_channels=2, pet_channel=1), card)
    out = tmp_path / "seg2.dcm"
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model), "--out",
                            str(out)])
    assert r.exit_code == 1 + 1 and "--ct" in r.output  # CT channel without --ct: exit 2
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--ct", str(phantom_tp[1]),
                            "--model", str(model), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    _, mask = _read_seg(out, sources)
    np.testing.assert_array_equal(mask, vol.array > 2.5)


def test_segment_at_a_coarser_model_spacing_resamples_back(tmp_path, phantom_tp, pet):
    vol, sources = pet
    spacing = [s * 2 for s in vol.spacing]
    model = onnx_models.write_onnx_folder(tmp_path / "model3",
                                          onnx_models.suv_threshold_model(), _card(spacing))
    out = tmp_path / "seg3.dcm"
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model), "--out",
                            str(out), "--json"])
    assert r.exit_code == 0, r.output
    _, mask = _read_seg(out, sources)
    expected = vol.array > 2.5
    assert mask.shape == expected.shape
    dice = 2 * (mask & expected).sum() / (mask.sum() + expected.sum())
    assert dice > 0.8  # half the resolution each way; boundaries move, lesions stay


def test_segment_eval_of_the_written_seg_against_a_nifti_reference(tmp_path, phantom_tp, pet):
    """The SEG (highdicom geometry) and a NIfTI of the expected mask (RAS affine) line up."""
    import nibabel as nib

    vol, _ = pet
    expected = vol.array > 2.5
    model = onnx_models.write_onnx_folder(tmp_path / "model4",
                                          onnx_models.suv_threshold_model(), _card(vol.spacing))
    seg_path = tmp_path / "seg4.dcm"
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model), "--out",
                            str(seg_path), "--json"])
    assert r.exit_code == 0, r.output
    a = vol.affine
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.column_stack([a[:, 2], a[:, 1], a[:, 0],
                                                             a[:, 3]])
    gt = expected.copy()
    gt[np.nonzero(gt)[0][0]] = False  # drop the first lesion slice: known FN share
    removed = expected & ~gt
    nib.save(nib.Nifti1Image(np.transpose(gt, (2, 1, 0)).astype(np.uint8), ras),
             tmp_path / "gt.nii.gz")
    r = runner.invoke(app, ["segment-eval", str(seg_path), str(tmp_path / "gt.nii.gz"),
                            "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["resampled_to_ground_truth"] is False
    assert doc["dice"] == pytest.approx(2 * gt.sum() / (gt.sum() + expected.sum()))
    assert doc["false_negative_volume_ml"] == 0.0
    assert doc["gt_lesions"] == sk_label(gt, connectivity=2).max()
    assert doc["sensitivity"] == 1.0
    assert removed.sum() > 0


@pytest.mark.parametrize(("edit", "field"), [
    (lambda c: c.update(patch_size=[64, 64]), "patch_size"),
    (lambda c: c["inputs"][0].update(units="BQML"), "inputs[0].units"),
    (lambda c: c["inputs"][0].update(modality="MR"), "inputs[0].modality"),
    (lambda c: c["inputs"][0].update(normalisation="ct-window"), "inputs[0].window"),
    (lambda c: c.pop("labels"), "labels"),
    (lambda c: c.update(overlap=1.5), "overlap"),
    (lambda c: c.update(spacing_mm=[2, 0, 2]), "spacing_mm[1]"),
    (lambda c: c.update(labels={"one": "lesion"}), "labels.one"),
])
def test_invalid_model_card_exits_2_naming_the_field(tmp_path, phantom_tp, edit, field):
    card = _card((2.0, 4.0, 4.0))
    edit(card)
    model = onnx_models.write_onnx_folder(tmp_path / "bad", onnx_models.suv_threshold_model(),
                                          card)
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model), "--out",
                            str(tmp_path / "x.dcm"), "--json"])
    assert r.exit_code == 2, r.output
    assert field in r.output and "model card" in r.output
    assert not (tmp_path / "x.dcm").exists()


def test_model_output_channels_must_match_the_labels(tmp_path, phantom_tp, pet):
    vol, _ = pet
    card = _card(vol.spacing)
    card["labels"] = {"1": "lesion", "2": "liver"}  # 3 classes; the model gives 2
    model = onnx_models.write_onnx_folder(tmp_path / "m5", onnx_models.suv_threshold_model(),
                                          card)
    r = runner.invoke(app, ["segment", str(phantom_tp[0]), "--model", str(model), "--out",
                            str(tmp_path / "x.dcm")])
    assert r.exit_code == 2 and "channels" in r.output
