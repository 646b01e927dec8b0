"""AI labels in the longitudinal record (issue #18): a model's lesion labels become the
record's lesions and its organ labels place the PERCIST reference VOIs.

The model is built here with ``onnx.helper``: a 1×1×1 convolution giving the lesion logit
``SUV − 2.5`` plus a constant logit tensor that is +1000 inside a liver sphere and an aorta
tube drawn at the phantom's true places (and −1000 outside), and −1000 for "lesion" away
from the true lesions. Its patch is the whole PET grid at the PET spacing, so its output is
known exactly: the expected masks are computed here independently of the runner.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from onnx_models import write_onnx_folder
from scipy import ndimage

LIVER_RADIUS_MM = 40.0
AORTA_RADIUS_MM = 8.0
THRESHOLD = 2.5


def _lps_grid(pet):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in pet.spatial_shape], indexing="ij"), -1)
    return idx @ pet.affine[:3, :3].T + pet.affine[:3, 3]


def _truth_masks(pet, tp: dict) -> dict[str, np.ndarray]:
    """Liver sphere, aorta tube (LPS z, 250 mm long) and lesion neighbourhoods at the
    phantom's true places, on the PET grid."""
    lps = _lps_grid(pet)
    liver = np.sum((lps - tp["liver_reference_centre_lps_mm"]) ** 2, -1) <= LIVER_RADIUS_MM ** 2
    c = np.asarray(tp["blood_pool_centre_lps_mm"])
    aorta = ((lps[..., 0] - c[0]) ** 2 + (lps[..., 1] - c[1]) ** 2 <= AORTA_RADIUS_MM ** 2) & (
        lps[..., 2] >= c[2] - 150) & (lps[..., 2] <= c[2] + 100)
    near = np.zeros(pet.spatial_shape, bool)
    for les in tp["lesions"]:
        if les["present"]:
            r = max(les["axes_mm"]) + 8.0
            near |= np.sum((lps - les["centre_lps_mm"]) ** 2, -1) <= r ** 2
    return {"liver": liver, "aorta": aorta & ~liver, "near": near & ~liver & ~aorta}


def _model(folder: Path, pet, masks: dict[str, np.ndarray]) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = tuple(int(s) for s in pet.spatial_shape)
    const = np.zeros((1, 4, *shape), np.float32)
    const[0, 1] = np.where(masks["near"], 0.0, -1000.0)
    const[0, 2] = np.where(masks["liver"], 1000.0, -1000.0)
    const[0, 3] = np.where(masks["aorta"], 1000.0, -1000.0)
    w = np.zeros((4, 1, 1, 1, 1), np.float32)
    w[1] = 1.0
    b = np.array([0.0, -THRESHOLD, 0.0, 0.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W", "B"], ["conv"], kernel_shape=[1, 1, 1]),
         helper.make_node("Add", ["conv", "C"], ["output"])], "organs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, *shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, *shape])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
                     numpy_helper.from_array(const, "C")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    card = {"name": "organs-and-lesions",
            "inputs": [{"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
            "spacing_mm": [float(s) for s in pet.spacing], "patch_size": list(shape),
            "labels": {"1": "lesion", "2": "liver", "3": "aorta"}, "overlap": 0.5}
    return write_onnx_folder(folder, model.SerializeToString(), card)


@pytest.fixture(scope="module")
def ai_workspace(tmp_path_factory):
    """One phantom patient (2 timepoints) ingested; each PET segmented by the model above
    and the SEG stored for the record; then assessed."""
    from oncohybrid.config import get_settings
    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import read_series
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.segment import segment_study, store_labels
    from oncohybrid.store.db import dispose_engines

    home = tmp_path_factory.mktemp("ai-home")
    data = tmp_path_factory.mktemp("ai-data")
    old = os.environ.get("ONCOHYBRID_HOME")
    os.environ["ONCOHYBRID_HOME"] = str(home)
    try:
        truth = generate_cohort(data, patients=1, timepoints=2, vendor="siemens", seed=5,
                                size="small")
        with Ingestor() as ing:
            ing.ingest_paths([data])
        p = truth["patients"][0]
        expected = []
        stored = []
        for k, tp in enumerate(p["timepoints"]):
            pt_dir = data / tp["pt_dir"]
            pet, _ = suv_volume(read_series(pt_dir), normalisation=Normalisation.BW)
            masks = _truth_masks(pet, tp)
            folder = _model(tmp_path_factory.mktemp(f"model{k}"), pet, masks)
            seg = segment_study(pt_dir, folder, data / f"seg{k}.dcm")
            stored.append(store_labels(seg["seg_file"], get_settings()))
            expected.append((pet, masks, (pet.array > THRESHOLD) & masks["near"], seg))
        result = assess_patient(p["patient_id"], ["percist", "recist1.1"])
        yield p, expected, stored, result, get_settings()
    finally:
        dispose_engines()
        if old is None:
            os.environ.pop("ONCOHYBRID_HOME", None)
        else:
            os.environ["ONCOHYBRID_HOME"] = old


def test_the_stored_seg_belongs_to_the_pet_series(ai_workspace) -> None:
    p, _expected, stored, _result, _settings = ai_workspace
    for tp, s in zip(p["timepoints"], stored, strict=True):
        assert s["pet_series_uid"] == tp["pt_series_uid"]
        assert s["labels"] == {1: "lesion", 2: "liver", 3: "aorta"}
        assert Path(s["stored"]).is_file()


def test_liver_voi_is_placed_at_the_deepest_point_of_the_ai_liver_label(ai_workspace) -> None:
    from oncohybrid.quant.references import sphere_mask
    from oncohybrid.segment.grid import image_grid

    p, expected, _stored, result, _settings = ai_workspace
    for k, (pet, masks, _lesions, _seg) in enumerate(expected):
        liver = result.reference_vois[k]["liver"]
        assert liver["placement"] == "ai-organ-label"
        assert liver["anatomy_checks"][0].startswith(
            "liver VOI from AI organ label 'liver' (model organs-and-lesions)")
        # deepest point of a sphere label = the voxel nearest its centre
        dist = ndimage.distance_transform_edt(np.pad(masks["liver"], 1),
                                              sampling=pet.spacing)[1:-1, 1:-1, 1:-1]
        deepest = np.argwhere(dist == dist.max())
        centres = deepest @ pet.affine[:3, :3].T + pet.affine[:3, 3]
        assert np.min(np.linalg.norm(centres - liver["centre_lps_mm"], axis=1)) < 1e-6
        truth = np.asarray(p["timepoints"][k]["liver_reference_centre_lps_mm"])
        assert np.linalg.norm(truth - liver["centre_lps_mm"]) <= max(pet.spacing)
        # the SUV mean is that of the 3 cm sphere there, computed here
        _arr, grid = image_grid(pet)
        sphere = sphere_mask(grid, liver["centre_lps_mm"], 30.0)
        assert liver["suv_mean"] == pytest.approx(float(pet.array[sphere].mean()), rel=1e-6)
        assert liver["suv_mean"] == pytest.approx(p["timepoints"][k]["liver_suv_mean"],
                                                  rel=0.05)


def test_blood_pool_voi_is_placed_in_the_upper_half_of_the_ai_aorta_label(ai_workspace) -> None:
    p, expected, _stored, result, _settings = ai_workspace
    for k, (pet, _masks, _lesions, _seg) in enumerate(expected):
        blood = result.reference_vois[k]["blood_pool"]
        assert blood["placement"] == "ai-organ-label"
        assert "blood-pool VOI from AI organ label 'aorta'" in blood["anatomy_checks"][0]
        assert "fits inside it" in blood["anatomy_checks"][0]
        c = np.asarray(p["timepoints"][k]["blood_pool_centre_lps_mm"])
        got = np.asarray(blood["centre_lps_mm"])
        # on the tube's axis (within a voxel), in its upper (thoracic) half
        assert np.hypot(*(got[:2] - c[:2])) <= max(pet.spacing[1:])
        assert c[2] - 25.0 <= got[2] <= c[2] + 100.0 - 10.0
        assert blood["suv_mean"] == pytest.approx(p["timepoints"][k]["blood_pool_suv"],
                                                  rel=0.15)


def test_ai_lesion_components_become_the_record_lesions(ai_workspace) -> None:
    from oncohybrid.services.record import patient_record
    from oncohybrid.tracking.course import Course

    p, expected, _stored, result, _settings = ai_workspace
    course: Course = result.course
    for k, (pet, _masks, lesion_mask, _seg) in enumerate(expected):
        lab, n = ndimage.label(lesion_mask, structure=np.ones((3, 3, 3)))
        voxel_ml = float(np.prod(pet.spacing)) / 1000.0
        sizes = np.bincount(lab.ravel())[1:]
        want = sorted((float(pet.array[lab == i + 1].max()) for i in range(n)
                       if sizes[i] * voxel_ml >= 0.5), reverse=True)
        got = sorted((t.values[k]["suv_max"] for t in course.tracks
                      if t.values[k] is not None and t.labels[k] is not None
                      and t.labels[k].startswith("ai")), reverse=True)
        assert want, "the phantom must have lesions above SUV 2.5"
        assert got == pytest.approx(want, rel=1e-5)
    rec = patient_record(p["patient_id"])
    text = json.dumps(rec, default=str)
    assert "AI label (model organs-and-lesions)" in text
    assert len(rec["lesions"]) == len(course.tracks)
    # each lesion's measured mask is kept in the timepoint SEG of the record
    assert all(o["mask_segment_number"] for les in rec["lesions"]
               for o in les["observations"] if o["present"] and o["label"])


def test_without_stored_labels_assess_places_the_references_automatically(
        ai_workspace, tmp_path) -> None:
    from oncohybrid.services.segment import stored_labels_file

    _p, _expected, stored, _result, settings = ai_workspace
    assert stored_labels_file(settings, stored[0]["pet_series_uid"]) is not None
    assert stored_labels_file(settings, "1.2.3.4") is None
    assert stored_labels_file(settings, "../../etc") is None


def test_store_labels_refuses_a_seg_of_a_series_not_in_the_workspace(ai_workspace,
                                                                       tmp_path) -> None:
    import pydicom

    from oncohybrid.errors import InputError
    from oncohybrid.services.segment import store_labels

    _p, expected, _stored, _result, settings = ai_workspace
    ds = pydicom.dcmread(expected[0][3]["seg_file"])
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.999"
    other = tmp_path / "other.dcm"
    ds.save_as(other)
    with pytest.raises(InputError, match="not a PET series of patient"):
        store_labels(other, settings)


def test_segment_store_cli_keeps_the_seg_and_prints_where(ai_workspace, tmp_path) -> None:
    from typer.testing import CliRunner

    from oncohybrid.cli.main import app
    from oncohybrid.services.segment import stored_labels_file

    p, expected, _stored, _result, settings = ai_workspace
    tp = p["timepoints"][0]
    folder = _model(tmp_path / "m", expected[0][0], expected[0][1])
    # the SEGs were written into the phantom's data folder
    pt_dir = Path(expected[0][3]["seg_file"]).parent / tp["pt_dir"]
    out = tmp_path / "again.dcm"
    res = CliRunner().invoke(app, ["segment", str(pt_dir), "--model", str(folder), "--out",
                                   str(out), "--store", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["stored"]["pet_series_uid"] == tp["pt_series_uid"]
    kept = stored_labels_file(settings, tp["pt_series_uid"])
    assert kept is not None and kept.read_bytes() == out.read_bytes()


def test_segment_store_cli_exits_2_for_a_pet_not_in_the_workspace(phantom_tp, tmp_path,
                                                                    monkeypatch) -> None:
    from onnx_models import suv_threshold_model
    from typer.testing import CliRunner

    from oncohybrid.cli.main import app

    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "empty-home"))
    pt, _ct = phantom_tp
    folder = write_onnx_folder(tmp_path / "m", suv_threshold_model(), {
        "name": "t", "inputs": [{"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
        "spacing_mm": [3.0, 4.0, 4.0], "patch_size": [32, 32, 32], "labels": {"1": "lesion"}})
    res = CliRunner().invoke(app, ["segment", str(pt), "--model", str(folder), "--out",
                                   str(tmp_path / "s.dcm"), "--store", "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert "is not a PET series of patient" in res.stderr


def test_the_patient_page_notes_say_where_the_references_came_from(ai_workspace) -> None:
    from oncohybrid.services.record import patient_record
    from oncohybrid.services.segment_jobs import reference_notes
    from oncohybrid.services.worklist import patient_pk_of_study

    p, _expected, _stored, _result, settings = ai_workspace
    pk = patient_pk_of_study(p["timepoints"][0]["study_uid"], settings)
    notes = reference_notes(settings, pk)
    rec = patient_record(p["patient_id"], settings)
    for tp in rec["timepoints"]:
        mine = [n for n in notes if n.startswith(f"{tp['label']}: ")]
        assert any("liver VOI from AI organ label 'liver' (model organs-and-lesions)" in n
                   for n in mine)
        assert any("blood-pool VOI from AI organ label 'aorta'" in n for n in mine)
        assert any("lesions from the AI model organs-and-lesions" in n for n in mine)
    assert not any(tp["date"] in n for tp in p["timepoints"] for n in notes)  # no dates
    ai_obs = [o for les in rec["lesions"] for o in les["observations"]
              if (o["label"] or "").startswith("ai")]
    assert ai_obs and all(o["methods"]["suv_max"]["method"].startswith(
        "AI model label (model organs-and-lesions") for o in ai_obs)
