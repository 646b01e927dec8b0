"""Synthetic PET header sets for the SUV tests (no pixels unless asked).

The vendor vectors are the header values of the public calculate-suv sample series
(cornerstonejs/calculate-suv, MIT licence, ``test/metadata/*-instances.json``: three
instances per series, exported from real Siemens, GE and Philips scanners) together with
the SUVbw factor that calculate-suv's own test expects for each (``calculateSUV_SampleData
.test.ts``). The same series are the "real-world vendor header sets" of the project's PET
quantification notes (§0, §2.2-§2.3: PHILIPS_BQML, the CPS post-processed series ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"

def pet_series(n: int = 3, *, per_slice: list[dict[str, Any]] | None = None,
               philips: dict[str, Any] | None = None, philips_creator_element: int = 0x10,
               rp: dict[str, Any] | None = None, no_rp: bool = False,
               pixels: bool = False, **attrs: Any) -> list[Dataset]:
    """``n`` legacy PET slices with the given attributes (``None`` deletes one).

    ``rp`` fills the Radiopharmaceutical Information Sequence item; ``philips`` =
    {"SUVScaleFactor": .., "ActivityConcentrationScaleFactor": ..} goes into the private
    block of "Philips PET Private Group" reserved at (7053,00xx) with xx =
    ``philips_creator_element`` (0 = no creator element, raw (7053,1000)/(7053,1009)).
    """
    base: dict[str, Any] = {
        "Modality": "PT", "Manufacturer": "SIEMENS", "SeriesDate": "20250101",
        "SeriesTime": "110000", "AcquisitionDate": "20250101", "AcquisitionTime": "110000",
        "PatientWeight": "70", "PatientSize": "1.75", "PatientSex": "M",
        "Units": "BQML", "DecayCorrection": "START",
        "CorrectedImage": ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"],
        "FrameReferenceTime": "150000", "ActualFrameDuration": "300000",
        "RescaleSlope": "1", "RescaleIntercept": "0",
    }
    base.update(attrs)
    rp_item = {"RadiopharmaceuticalStartDateTime": "20250101100000",
               "RadiopharmaceuticalStartTime": "100000",
               "RadionuclideTotalDose": "368080000", "RadionuclideHalfLife": "6586.2"}
    if rp is not None:
        rp_item.update(rp)
    series_uid = generate_uid()
    out = []
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = PET_SOP_CLASS
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = "1.2.3.4"
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0.0, 0.0, 4.0 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [4.0, 4.0]
        ds.SliceThickness = "4"
        values = dict(base)
        if per_slice is not None:
            values.update(per_slice[i])
        for k, v in values.items():
            if v is not None:
                setattr(ds, k, v)
        if not no_rp:
            item = Dataset()
            for k, v in rp_item.items():
                if v is not None:
                    setattr(item, k, v)
            ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        if philips:
            for name, off in (("SUVScaleFactor", 0x00),
                              ("ActivityConcentrationScaleFactor", 0x09)):
                if name not in philips:
                    continue
                if philips_creator_element:
                    ds.add_new(0x70530000 | philips_creator_element, "LO",
                               "Philips PET Private Group")
                    ds.add_new(0x70530000 | (philips_creator_element << 8) | off, "DS",
                               philips[name])
                else:
                    ds.add_new(0x70531000 | off, "DS", philips[name])
        if pixels:
            ds.Rows = ds.Columns = 4
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1
            ds.PixelData = (np.full((4, 4), 100 * (i + 1), dtype=np.int16)).tobytes()
        out.append(ds)
    return out


# calculate-suv sample headers (values copied verbatim; three instances each) and the
# factor its test expects. "path" is the reference-time path our procedure must take.
VENDOR_VECTORS: dict[str, dict[str, Any]] = {
    # Siemens BQML, DT injection; series 1.35 s before acquisition, FRT consistent.
    "SIEMENS": {
        "shared": dict(SeriesDate="20201217", SeriesTime="104829.000000", PatientSex="M",
                       PatientWeight="67", AcquisitionDate="20201217",
                       AcquisitionTime="104830.351370", DecayCorrection="START", Units="BQML",
                       CorrectedImage=["NORM", "DTIM", "ATTN", "SCAT", "SCAT", "DECY", "RAN"],
                       Manufacturer="SIEMENS", PatientSize=None),
        "varying": [dict(FrameReferenceTime="38513.36", ActualFrameDuration="74324"),
                    dict(FrameReferenceTime="39189.36", ActualFrameDuration="75676"),
                    dict(FrameReferenceTime="39864.86", ActualFrameDuration="77027")],
        "rp": dict(RadionuclideTotalDose="374000000", RadionuclideHalfLife="6586.2",
                   RadiopharmaceuticalStartTime="083045.000000",
                   RadiopharmaceuticalStartDateTime="20201217083045.000000"),
        "expected": 0.00042748316187197236, "path": "series",
    },
    # GE BQML, series = acquisition, FRT 0.
    "GE_MEDICAL_AND_BQML": {
        "shared": dict(SeriesDate="20201217", SeriesTime="095621", PatientSex="F",
                       PatientSize="1.65", PatientWeight="52", AcquisitionDate="20201217",
                       AcquisitionTime="095621", FrameReferenceTime="0",
                       DecayCorrection="START", Units="BQML", ActualFrameDuration="120000",
                       CorrectedImage=["DECY", "ATTN", "SCAT", "DTIM", "RANSNG", "DCAL",
                                       "SLSENS", "NORM"],
                       Manufacturer="GE MEDICAL SYSTEMS"),
        "rp": dict(RadionuclideTotalDose="152022720", RadionuclideHalfLife="6586.2001953125",
                   RadiopharmaceuticalStartTime="084500.00",
                   RadiopharmaceuticalStartDateTime="20201217084500.00"),
        "expected": 0.0005367387681819742, "path": "series",
    },
    # Philips BQML with private factors that must be ignored; FRT back-computation would
    # put the reference 21 min early (notes §2.3 counter-example).
    "PHILIPS_BQML": {
        "shared": dict(SeriesDate="20201217", SeriesTime="110155", PatientSex="F",
                       PatientSize="1.75", PatientWeight="64", AcquisitionDate="20201217",
                       AcquisitionTime="110156", FrameReferenceTime="1328700",
                       DecayCorrection="START", Units="BQML", ActualFrameDuration="120700",
                       CorrectedImage=["DECY", "RADL", "ATTN", "SCAT", "DTIM", "RAN", "NORM",
                                       "CLN"],
                       Manufacturer="Philips Medical Systems"),
        "philips": {"SUVScaleFactor": "0.003515736", "ActivityConcentrationScaleFactor":
                    "4.709921"},
        "rp": dict(RadionuclideTotalDose="126000000", RadionuclideHalfLife="6586.199707",
                   RadiopharmaceuticalStartTime="100058",
                   RadiopharmaceuticalStartDateTime="20201217100058"),
        "expected": 0.0007463747013889488, "path": "series",
    },
    # Philips CNTS with both private factors: the SUV Scale Factor is the answer.
    "PHILIPS_CNTS_AND_BQML_SUV": {
        "shared": dict(SeriesDate="20201217", SeriesTime="093556", PatientSex="F",
                       PatientWeight="54", AcquisitionDate="20201217", AcquisitionTime="095439",
                       FrameReferenceTime="1183000", DecayCorrection="START", Units="CNTS",
                       ActualFrameDuration="120000", PatientSize=None,
                       CorrectedImage=["DECY", "RADL", "ATTN", "SCAT", "DTIM", "RAN", "NORM"],
                       Manufacturer="Philips Medical Systems"),
        "philips": {"SUVScaleFactor": "0.000551", "ActivityConcentrationScaleFactor":
                    "1.602563"},
        "rp": dict(RadionuclideTotalDose="238000000", RadionuclideHalfLife="6588",
                   RadiopharmaceuticalStartTime="083000",
                   RadiopharmaceuticalStartDateTime=None),
        "expected": 0.000551, "path": "series",
    },
    # Philips CNTS with the SUV Scale Factor only.
    "PHILIPS_CNTS_AND_SUV": {
        "shared": dict(SeriesDate="20201217", SeriesTime="134551", PatientSex="F",
                       PatientWeight="47", AcquisitionDate="20201217", AcquisitionTime="141336",
                       FrameReferenceTime="1755000", DecayCorrection="START", Units="CNTS",
                       ActualFrameDuration="180000", PatientSize=None,
                       CorrectedImage=["DECY", "RADL", "ATTN", "SCAT", "DTIM", "RAN", "NORM"],
                       Manufacturer="Philips Medical Systems"),
        "philips": {"SUVScaleFactor": "0.000728"},
        "rp": dict(RadionuclideTotalDose="208230000", RadionuclideHalfLife="6588",
                   RadiopharmaceuticalStartTime="123000",
                   RadiopharmaceuticalStartDateTime=None),
        "expected": 0.000728, "path": "series",
    },
    # Acquisition 5 µs before the series time: equal within tolerance, TM-only injection.
    "BQML_AC_DT_BEFORE_S_DT_SIEMENS": {
        "shared": dict(SeriesDate="20201217", SeriesTime="123515.000000", PatientSex="M",
                       PatientWeight="65", AcquisitionDate="20201217",
                       AcquisitionTime="123514.999995", FrameReferenceTime="59936.854672596",
                       DecayCorrection="START", Units="BQML", ActualFrameDuration="120000",
                       CorrectedImage=["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"],
                       Manufacturer="SIEMENS", PatientSize=None),
        "rp": dict(RadionuclideTotalDose="225000000", RadionuclideHalfLife="6586.2",
                   RadiopharmaceuticalStartTime="114100.000000",
                   RadiopharmaceuticalStartDateTime=None),
        "expected": 0.0004069156854009332, "path": "series",
    },
    # Post-processed: series time 45 min after the acquisition, FRT 0 (no back-computation):
    # the earliest acquisition is the reference (notes §2.3, "CPS case").
    "CPS_AND_BQML_AC_DT_-_S_DT": {
        "shared": dict(SeriesDate="20201217", SeriesTime="134918.000000", PatientSex="M",
                       PatientWeight="69", AcquisitionDate="20201217",
                       AcquisitionTime="130348.234000", FrameReferenceTime="0",
                       DecayCorrection="START", Units="BQML", ActualFrameDuration="180000",
                       CorrectedImage=["DECY", "SCAT", "ATTN", "NORM", "DTIM", "RAN"],
                       Manufacturer="SIEMENS", PatientSize=None),
        "rp": dict(RadionuclideTotalDose="388000000", RadionuclideHalfLife="6586.2",
                   RadiopharmaceuticalStartTime="120037.000000",
                   RadiopharmaceuticalStartDateTime=None),
        "expected": 0.00026503312764157046, "path": "earliest_acquisition",
    },
    # TM-only injection; series before acquisition (FRT back-computes to within 0.84 s).
    "RADIOPHARM_DATETIME_UNDEFINED": {
        "shared": dict(SeriesDate="20201217", SeriesTime="135431.843000", PatientSex="M",
                       PatientWeight="102", AcquisitionDate="20201217",
                       AcquisitionTime="141555.687000", FrameReferenceTime="1372857.9232493",
                       DecayCorrection="START", Units="BQML", ActualFrameDuration="180000",
                       CorrectedImage=["NORM", "DTIM", "ATTN", "SCAT", "RADL", "DECY"],
                       Manufacturer="SIEMENS", PatientSize=None),
        "rp": dict(RadionuclideTotalDose="412000000", RadionuclideHalfLife="6586.2",
                   RadiopharmaceuticalStartTime="125000.000000",
                   RadiopharmaceuticalStartDateTime=None),
        "expected": 0.0003721089202818729, "path": "series",
    },
}


def vendor_series(name: str) -> list[Dataset]:
    v = VENDOR_VECTORS[name]
    return pet_series(3, per_slice=v.get("varying"), philips=v.get("philips"), rp=v["rp"],
                      **v["shared"])
