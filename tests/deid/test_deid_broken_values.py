"""A value whose bytes do not fit the VR pydicom gives it must not stop de-identification
(seen on real Philips PET: (01F1,1026) stored as text in implicit VR, FD by the private
dictionary): the element becomes UN and gets the profile's action like any other."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from oncohybrid.deid.engine import Deidentifier, PatientKey
from oncohybrid.deid.profile import DEFAULT_OPTIONS, Option


def _philips_like() -> Dataset:
    ds = Dataset()
    ds.PatientID = "PID-4411"
    ds.PatientName = "Doe^Jane"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.SOPInstanceUID = generate_uid()
    ds.add_new(0x01F10010, "LO", "ELSCINT1")
    ds.add_new(0x01F11026, "DS", "0.828")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def test_a_value_that_does_not_fit_its_vr_is_handled_not_fatal() -> None:
    for options in (DEFAULT_OPTIONS, DEFAULT_OPTIONS | {Option.RETAIN_SAFE_PRIVATE}):
        ds = _philips_like()
        Deidentifier(PatientKey("PSN-9", 7), lambda u: "2.25.99", options).apply(ds)
        assert ds.PatientID == "PSN-9" and "Doe" not in str(ds.PatientName)
        if 0x01F11026 in ds:  # kept only where the safe-private list names it
            assert ds[0x01F11026].VR == "UN" and ds[0x01F11026].value == b"0.828 "
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)  # and the result can be written
