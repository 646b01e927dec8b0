"""autoPET evaluation on constructed masks with hand-computed Dice, FP/FN volumes and
lesion-wise detection (values worked out by hand in the comments, not by the code)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from oncohybrid.ai.evaluation import autopet_metrics
from oncohybrid.cli.main import app

VOXEL_ML = 2 * 2 * 2 / 1000  # 2 mm isotropic


def _case():
    gt = np.zeros((20, 20, 20), np.uint8)
    pred = np.zeros_like(gt)
    gt[2:5, 2:5, 2:5] = 1          # lesion A: 27 voxels
    gt[12:14, 12:14, 12:14] = 1    # lesion B: 8 voxels, missed
    pred[2:5, 2:5, 3:6] = 1        # A shifted by one in x: overlap 3×3×2 = 18, 27 voxels
    pred[15:16, 2:4, 2:4] = 1      # spurious: 1×2×2 = 4 voxels, no overlap
    return pred, gt


def test_hand_computed_case():
    pred, gt = _case()
    m = autopet_metrics(pred, gt, (2.0, 2.0, 2.0))
    assert m["dice"] == pytest.approx(2 * 18 / (31 + 35))
    assert m["false_positive_volume_ml"] == pytest.approx(4 * VOXEL_ML)
    assert m["false_negative_volume_ml"] == pytest.approx(8 * VOXEL_ML)
    assert (m["gt_lesions"], m["detected_lesions"], m["sensitivity"]) == (2, 1, 0.5)
    assert (m["predicted_lesions"], m["false_positive_lesions"]) == (2, 1)


def test_a_predicted_component_touching_gt_by_one_voxel_is_not_a_false_positive():
    gt = np.zeros((10, 10, 10), bool)
    gt[1, 1, 1] = True
    pred = np.zeros_like(gt)
    pred[1, 1, 1:9] = True  # 8 voxels, one on the lesion
    m = autopet_metrics(pred, gt, (1.0, 1.0, 1.0))
    assert m["false_positive_volume_ml"] == 0.0 and m["dice"] == pytest.approx(2 / 9)


def test_corner_neighbours_are_separate_lesions_with_18_connectivity():
    gt = np.zeros((5, 5, 5), bool)
    gt[1, 1, 1] = True
    pred = gt.copy()
    pred[2, 2, 2] = True  # touches (1,1,1) by a corner only
    m18 = autopet_metrics(pred, gt, (10.0, 10.0, 10.0))  # 1 ml voxels
    assert m18["false_positive_volume_ml"] == pytest.approx(1.0)
    assert m18["predicted_lesions"] == 2 and m18["false_positive_lesions"] == 1
    m26 = autopet_metrics(pred, gt, (10.0, 10.0, 10.0), connectivity=26)
    assert m26["false_positive_volume_ml"] == 0.0 and m26["predicted_lesions"] == 1
    pred[2, 2, 2], pred[1, 2, 2] = False, True  # now an edge neighbour: joined under 18
    assert autopet_metrics(pred, gt, (10.0,) * 3)["false_positive_volume_ml"] == 0.0


def test_empty_cases():
    empty = np.zeros((4, 4, 4), bool)
    m = autopet_metrics(empty, empty, (1, 1, 1))
    assert m["dice"] is None and m["sensitivity"] is None
    assert m["false_positive_volume_ml"] == m["false_negative_volume_ml"] == 0.0
    one = empty.copy()
    one[0, 0, 0] = True
    m = autopet_metrics(one, empty, (10, 10, 10))
    assert m["dice"] == 0.0 and m["false_positive_volume_ml"] == pytest.approx(1.0)


def test_segment_eval_cli_on_nifti_files(tmp_path):
    import nibabel as nib

    pred, gt = _case()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(pred, affine), tmp_path / "pred.nii.gz")
    nib.save(nib.Nifti1Image(gt * 3, affine), tmp_path / "gt.nii.gz")  # any label counts
    r = CliRunner().invoke(app, ["segment-eval", str(tmp_path / "pred.nii.gz"),
                                 str(tmp_path / "gt.nii.gz"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["dice"] == pytest.approx(36 / 66)
    assert doc["false_positive_volume_ml"] == pytest.approx(0.032)
    assert doc["false_negative_volume_ml"] == pytest.approx(0.064)
    assert doc["sensitivity"] == 0.5 and doc["false_positive_lesions"] == 1
    assert doc["resampled_to_ground_truth"] is False


def test_segment_eval_cli_refuses_a_missing_file(tmp_path):
    r = CliRunner().invoke(app, ["segment-eval", str(tmp_path / "no.nii"),
                                 str(tmp_path / "no2.nii"), "--json"])
    assert r.exit_code == 2 and "no such mask file" in r.output
