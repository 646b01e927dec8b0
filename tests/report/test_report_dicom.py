"""DICOM outputs: TID 1500 SR, lesion SEG, Encapsulated PDF — dciodvfy-clean and round-trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pydicom
import pytest
from report_tools import dciodvfy_errors

from oncohybrid.errors import InputError
from oncohybrid.report.encapsulated import build_encapsulated_pdf
from oncohybrid.report.pdf import render_patient_pdf_bytes
from oncohybrid.report.seg import build_lesion_seg, read_lesion_masks, segment_order, write_dataset
from oncohybrid.report.sr import build_measurement_sr, read_measurements

SR_KEYS = {"ld_mm": "ld_mm", "sa_mm": "sa_mm", "volume_ml": "volume_ml", "suv_max": "suv_max"}


@pytest.fixture(scope="module")
def written(data_p1, tmp_path_factory):
    """SEG + SR of both timepoints of the progressor (who has a new lesion at TP1)."""
    out = tmp_path_factory.mktemp("report-dicom")
    files = {}
    for tp in data_p1.timepoints:
        seg = build_lesion_seg(tp.images, data_p1.lesions)
        numbers = segment_order(tp.images, data_p1.lesions)
        sr = build_measurement_sr(data_p1, tp, seg=seg, segment_numbers=numbers)
        files[tp.label] = (write_dataset(seg, out / f"seg-{tp.label}.dcm"),
                           write_dataset(sr, out / f"sr-{tp.label}.dcm"), numbers)
    return files


def test_sr_and_seg_validate_with_dciodvfy(written):
    for seg_path, sr_path, _ in written.values():
        assert dciodvfy_errors(seg_path) == []
        assert dciodvfy_errors(sr_path) == []
        assert pydicom.dcmread(sr_path).SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"


def test_sr_reads_back_to_the_record_numbers(data_p1, written):
    for tp in data_p1.timepoints:
        _, sr_path, numbers = written[tp.label]
        groups = {g.tracking_id: g for g in read_measurements(sr_path)}
        expected = [les for les in data_p1.lesions if tp.label in les.measurements]
        assert set(groups) == {les.lesion_id for les in expected}
        for les in expected:
            g = groups[les.lesion_id]
            m = les.measurements[tp.label]
            assert g.tracking_uid == les.tracking_uid
            assert g.time_point == tp.label
            assert g.referenced_segment == numbers.get(les.lesion_id)
            assert g.finding_site.lower() == les.site
            for attr, key in SR_KEYS.items():
                value = getattr(m, attr)
                if value is None:
                    assert key not in g.values
                else:
                    assert g.values[key] == pytest.approx(value, rel=1e-9), (les.lesion_id, key)


def test_tracking_uids_are_stable_across_timepoints(data_p1, written):
    base = {g.tracking_id: g.tracking_uid for g in read_measurements(written["TP0"][1])}
    follow = {g.tracking_id: g.tracking_uid for g in read_measurements(written["TP1"][1])}
    common = set(base) & set(follow)
    assert len(common) >= 3
    assert all(base[k] == follow[k] for k in common)
    assert set(follow) - set(base), "the progressor's new lesion appears only at TP1"
    assert len(set(follow.values())) == len(follow)


def test_seg_reads_back_to_the_same_masks_and_tracking(data_p1, written):
    uid_of = {les.lesion_id: les.tracking_uid for les in data_p1.lesions}
    for tp in data_p1.timepoints:
        seg_path, _, numbers = written[tp.label]
        back = read_lesion_masks(seg_path, tp.images.pet_datasets)
        assert set(back) == set(numbers)
        for lid, (uid, mask) in back.items():
            assert uid == uid_of[lid]
            assert np.array_equal(mask, tp.images.lesion_masks[lid]), lid


def test_encapsulated_pdf_validates_and_holds_the_report(data_p0, tmp_path):
    source = data_p0.current.images.pet_datasets[0]
    # Figures are not what this test is about: render the text-only report (fast).
    text_only = replace(data_p0, timepoints=[replace(tp, images=None)
                                             for tp in data_p0.timepoints])
    pdf = render_patient_pdf_bytes(text_only, dpi=50)
    ds = build_encapsulated_pdf(pdf, source, title="Tumour-board report")
    path = write_dataset(ds, tmp_path / "report.dcm")
    assert dciodvfy_errors(path) == []
    back = pydicom.dcmread(path)
    assert back.EncapsulatedDocument[: int(back.EncapsulatedDocumentLength)] == pdf
    assert back.StudyInstanceUID == source.StudyInstanceUID
    assert back.PatientID == source.PatientID
    with pytest.raises(InputError, match="%PDF"):
        build_encapsulated_pdf(b"not a pdf", source, title="x")
