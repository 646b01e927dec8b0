"""Stored lesion masks (issue #11): the demo pipeline stores each measured mask as a DICOM
SEG per timepoint; the SEG round-trips voxel-equal; the report contours, the SEG output
and the web contours read the stored masks, so editing a stored mask changes them all.
"""

from __future__ import annotations

import datetime as dt
import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
import sqlalchemy as sa
from report_tools import dciodvfy_errors

from oncohybrid.report import plots
from oncohybrid.report.data import LesionInfo, TimepointImages
from oncohybrid.report.seg import build_lesion_seg, read_lesion_masks, read_segment_masks
from oncohybrid.services import masks as mask_service
from oncohybrid.services import record
from oncohybrid.services import report as report_service
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_record import Lesion, Observation, Timepoint, TimepointStudy
from oncohybrid.store.queries import series_files


@pytest.fixture(scope="module")
def demo(tmp_path_factory, monkeypatch_module):
    """The demo pipeline (small size) with the measured masks captured at save time."""
    from oncohybrid.config import get_settings
    from oncohybrid.services.demo import run_demo

    home = tmp_path_factory.mktemp("masks-home")
    monkeypatch_module.setenv("ONCOHYBRID_HOME", str(home))
    monkeypatch_module.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(home)
    measured: dict[tuple[str, str], np.ndarray] = {}  # (date, lesion key) -> mask
    original = record.save_course

    def capture(patient_id, analyses, course, roles, params, settings=None):
        for t in course.tracks:
            for k, lab in enumerate(t.labels):
                det = next((d for d in analyses[k].lesions if d.label == lab), None)
                if det is not None and det.pet_mask is not None:
                    mask = mask_service.full_grid_mask(det.pet_mask, analyses[k].pet)
                    assert int(mask.sum()) == det.pet.n_voxels  # the voxels measured
                    measured[(analyses[k].input.date.isoformat(), t.id)] = mask
        return original(patient_id, analyses, course, roles, params, settings)

    monkeypatch_module.setattr(record, "save_course", capture)
    result = run_demo(settings, size="small")
    monkeypatch_module.setattr(record, "save_course", original)
    pid = result.ground_truth["patients"][0]["patient_id"]
    return settings, pid, measured


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _timepoints(settings, pid):
    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Timepoint.id, Timepoint.scan_date, Timepoint.mask_seg_path,
                      TimepointStudy.pet_series_uid, TimepointStudy.study_instance_uid)
            .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
            .order_by(Timepoint.tp_index)).all()
    return rows


def _headers(settings, series_uid):
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in series_files(series_uid, settings)]


def test_stored_seg_round_trips_voxel_equal_to_the_measured_masks(demo):
    settings, pid, measured = demo
    assert measured
    seen = 0
    for tp_pk, date, rel, pet_uid, _study in _timepoints(settings, pid):
        assert rel, f"{date}: no stored SEG"
        path = mask_service.seg_path(settings, rel)
        seg = hd.seg.segread(path)  # highdicom reads it back
        if shutil.which("dciodvfy"):
            assert dciodvfy_errors(path) == []
        assert seg.SegmentationType == "BINARY"
        assert {str(r.SeriesInstanceUID) for r in seg.ReferencedSeriesSequence} == {pet_uid}
        with session_scope(settings) as s:
            numbers = dict(s.execute(
                sa.select(Lesion.key, Observation.mask_segment_number)
                .join(Lesion, Observation.lesion_pk == Lesion.id)
                .where(Observation.timepoint_pk == tp_pk, Observation.in_use,
                       Observation.present)).all())
        labels = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
        back = read_segment_masks(path, _headers(settings, pet_uid))
        for key, number in numbers.items():
            assert labels[number] == key  # segment label = lesion key
            expected = measured[(date.isoformat(), key)]
            assert np.array_equal(back[number], expected), (date, key)
            seen += 1
        # The report reads exactly these masks.
        stored = mask_service.stored_masks(settings, tp_pk, _headers(settings, pet_uid))
        assert stored is not None and set(stored) == set(numbers)
    assert seen == len(measured)


def _erase_half(path, pet_headers, key_to_number, key):
    """Rewrite the stored SEG with one lesion's mask cut in half (rows ≥ the median kept)."""
    by_number = read_segment_masks(path, pet_headers)
    mask = by_number[key_to_number[key]].copy()
    rows = np.argwhere(mask)[:, 1]
    mask[:, : int(np.median(rows)), :] = False
    by_number[key_to_number[key]] = mask
    order = sorted(key_to_number, key=key_to_number.get)
    from oncohybrid.dicom.volume import load_series

    pet = load_series(sorted({h.filename for h in pet_headers}))
    images = TimepointImages(pet_suv=pet, pet_datasets=pet_headers,
                             lesion_masks={k: by_number[key_to_number[k]] for k in order})
    infos = [LesionInfo(lesion_id=k, tracking_uid=hd.UID()) for k in order]
    ds = build_lesion_seg(images, infos, label_with_site=False, automatic=True)
    ds.save_as(path, enforce_file_format=True)
    return mask


def test_editing_a_stored_mask_changes_report_seg_output_and_web_contour(demo, tmp_path):
    from oncohybrid.services import viewer
    from oncohybrid.web import clinical

    settings, pid, _measured = demo
    tp_pk, date, rel, pet_uid, study_uid = _timepoints(settings, pid)[-1]
    with session_scope(settings) as s:
        numbers = dict(s.execute(
            sa.select(Lesion.key, Observation.mask_segment_number)
            .join(Lesion, Observation.lesion_pk == Lesion.id)
            .where(Observation.timepoint_pk == tp_pk, Observation.in_use,
                   Observation.present)).all())
        ppk = s.scalar(sa.select(Lesion.patient_pk).limit(1))
    headers = _headers(settings, pet_uid)
    before = mask_service.stored_masks(settings, tp_pk, headers)
    key = max(before, key=lambda k: int(before[k].sum()))  # the largest lesion

    data0 = report_service.load_report_data(pid, settings)
    tp0 = data0.current
    assert tp0.images.mask_note is None  # stored masks, no re-derivation
    assert np.array_equal(tp0.images.lesion_masks[key], before[key])
    viewer.clear_cache()
    vols = viewer.study_volumes(study_uid, settings)
    web0, _c, names0 = clinical.label_volume(settings, vols, study_uid)
    n0 = next(n for n, k in names0.items() if k == key)
    web_voxels0 = int((web0 == n0).sum())

    edited = _erase_half(mask_service.seg_path(settings, rel), headers, numbers, key)
    assert 0 < edited.sum() < before[key].sum()

    # Report (PDF contour): the report data carries the edited mask, and the key slice
    # drawn from it changes.
    data1 = report_service.load_report_data(pid, settings)
    tp1 = data1.current
    assert np.array_equal(tp1.images.lesion_masks[key], edited)
    m = next(les for les in data1.lesions if les.lesion_id == key).measurements[tp1.label]

    def png(mask):
        return plots.fused_slice_png([plots.SlicePanel(
            ct=tp1.images.ct, pet=tp1.images.pet_suv, mask=mask,
            centroid_lps_mm=m.centroid_lps_mm, title=key)], dpi=60)

    assert png(tp1.images.lesion_masks[key]) != png(tp0.images.lesion_masks[key])
    pdf = report_service.build_patient_report(pid, settings, out=tmp_path / "r.pdf", dpi=60)
    assert pdf.stat().st_size > 0
    # SEG output (report --seg) carries the edited mask.
    out = report_service.write_dicom_outputs(pid, settings, seg=tmp_path / "out.dcm")
    back = read_lesion_masks(out["seg"], headers)
    assert np.array_equal(back[key][1], edited)
    # Web contour: fewer voxels of this lesion on the display grid.
    viewer.clear_cache()
    vols = viewer.study_volumes(study_uid, settings)
    web1, _c, names1 = clinical.label_volume(settings, vols, study_uid)
    n1 = next(n for n, k in names1.items() if k == key)
    assert 0 < int((web1 == n1).sum()) < web_voxels0
    assert ppk is not None

    # A reader's manual correction keeps the stored mask (segment reference copied).
    record.add_manual_observation(key, date, {"ld_mm": 12.0}, patient_id=pid,
                                  reader="dr test", settings=settings)
    data2 = report_service.load_report_data(pid, settings)
    assert np.array_equal(data2.current.images.lesion_masks[key], edited)

    # A record without stored masks falls back to the re-derived contour, with a note.
    with session_scope(settings) as s:
        s.get(Timepoint, tp_pk).mask_seg_path = None
    data3 = report_service.load_report_data(pid, settings)
    assert data3.current.images.mask_note == report_service.DERIVED_MASK_NOTE
    assert key in data3.current.images.lesion_masks
    viewer.clear_cache()
    assert isinstance(date, dt.date)
