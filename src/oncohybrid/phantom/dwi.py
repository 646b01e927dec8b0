"""Synthetic diffusion-weighted MR series with known ADC (and IVIM parameters) per tissue.

Cylindrical tissues in an axial slab; the signal of tissue *t* at b-value *b* is the IVIM
model ``S0 · [(1 − f) · exp(−b·D) + f · exp(−b·D*)]`` (Le Bihan et al., Radiology
168:497–505, 1988; f = 0 gives the mono-exponential ADC = D), with Rician noise (complex
Gaussian noise of standard deviation ``S0_ref / snr`` in each channel, magnitude taken;
Gudbjartsson & Patz, Magn Reson Med 34:910–914, 1995).

Written as acquired by each vendor's b-value encoding (:mod:`oncohybrid.dicom.diffusion`):

- ``standard``: (0018,9087) *Diffusion b-value*, (0018,9075) *Diffusion Directionality*,
  (0018,9089) *Diffusion Gradient Orientation* (directional images);
- ``siemens``: (0019,100C) *B_value* and (0019,100E) *DiffusionGradientDirection* under
  ``SIEMENS MR HEADER``; trace images typed ``…\\TRACEW``;
- ``siemens-csa``: only the CSA Image Header Info (0029,1010) ``B_value`` and
  ``DiffusionGradientDirection`` (CSA2 ``SV10`` layout as nibabel reads it);
- ``ge``: (0043,1039) ``[10⁹ + b, 8, 0, 0]`` under ``GEMS_PARM_01`` (the offset some
  software versions add);
- ``philips``: (2001,1003) *Diffusion B-Factor* and (2001,1004) *Diffusion Direction*
  (``I`` isotropic) under ``Philips Imaging DD 001``.

``layout="classic"`` writes one MR Image (PS3.3 A.4) per plane; ``layout="enhanced"`` one
Enhanced MR Image (PS3.3 A.36) with the MR Diffusion functional group per frame (the
enhanced IOD has only the standard encoding).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = [
    "DEFAULT_TISSUES",
    "ENCODINGS",
    "DwiPhantom",
    "DwiTissue",
    "add_dwi_studies",
    "csa2_header",
    "write_dwi_series",
]

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
ENCODINGS = ("standard", "siemens", "siemens-csa", "ge", "philips")
_MANUFACTURER = {"standard": "OncohybridPhantom", "siemens": "SIEMENS",
                 "siemens-csa": "SIEMENS", "ge": "GE MEDICAL SYSTEMS",
                 "philips": "Philips Medical Systems"}


@dataclass(frozen=True)
class DwiTissue:
    """A cylinder (axis along z) of one tissue: centre (x, y) and radius in mm, diffusion
    coefficient ``adc_mm2_s`` (D), S0, and IVIM perfusion fraction ``f`` and ``d_star``."""

    name: str
    adc_mm2_s: float
    centre_xy_mm: tuple[float, float]
    radius_mm: float
    s0: float = 1000.0
    f: float = 0.0
    d_star_mm2_s: float = 0.0

    def signal(self, b: np.ndarray | float) -> np.ndarray:
        """Noise-free signal at ``b`` (s/mm²)."""
        b = np.asarray(b, dtype=np.float64)
        return self.s0 * ((1 - self.f) * np.exp(-b * self.adc_mm2_s)
                          + self.f * np.exp(-b * self.d_star_mm2_s))


#: Mono-exponential tissues (ADC = D) and one IVIM tissue, in an 96 × 96 mm field.
DEFAULT_TISSUES: tuple[DwiTissue, ...] = (
    DwiTissue("tumour", 0.8e-3, (-22.0, -22.0), 13.0),
    DwiTissue("liver", 1.1e-3, (22.0, -22.0), 13.0),
    DwiTissue("kidney", 2.0e-3, (-22.0, 22.0), 13.0),
    DwiTissue("ivim", 1.0e-3, (22.0, 22.0), 13.0, f=0.15, d_star_mm2_s=20e-3),
)


@dataclass(frozen=True)
class DwiPhantom:
    """What was written: directory, files, b-values, tissues and the label volume
    (``labels[k, i, j]`` = 1 + tissue index, 0 background; slice 0 at the lowest z), its
    LPS affine (as :func:`oncohybrid.dicom.volume.load_series` builds it)."""

    directory: Path
    files: tuple[Path, ...]
    b_values: tuple[float, ...]
    encoding: str
    layout: str
    tissues: tuple[DwiTissue, ...]
    labels: np.ndarray = field(repr=False)
    affine: np.ndarray = field(repr=False)

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of tissue ``name``."""
        names = [t.name for t in self.tissues]
        return self.labels == names.index(name) + 1


def csa2_header(tags: dict[str, tuple[str, Sequence[str]]]) -> bytes:
    """A Siemens CSA2 header (``SV10``) holding ``tags``: name → (VR, values as text)."""
    out = bytearray(b"SV10" + b"\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77))
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0,
                           len(values), 77)
        for value in values:
            data = value.encode() + b"\x00"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\x00" * (-len(data) % 4)
    return bytes(out)


def _ds(value: float) -> str:
    return f"{value:.6g}"


def _common(ds: Dataset, uids: dict[str, str], encoding: str, rows: int, cols: int) -> None:
    ds.PatientName = uids.get("patient_name", "DWI^Phantom")
    ds.PatientID = uids.get("patient_id", "DWI-PHANTOM")
    ds.PatientBirthDate = uids.get("birth_date", "")
    ds.PatientSex = uids.get("sex", "O")
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["for"]
    date = uids.get("study_date", "20260101")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = uids.get("accession", "")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 5
    ds.Modality = "MR"
    ds.Manufacturer = _MANUFACTURER[encoding]
    ds.SeriesDescription = f"DWI phantom ({encoding})"
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "ABDOMEN"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.MagneticFieldStrength = "1.5"


def _vendor_b(ds: Dataset, encoding: str, b: float, direction: Sequence[float] | None,
              trace: bool) -> None:
    """The b-value and direction of one classic image, encoded as ``encoding`` does."""
    if encoding == "standard":
        ds.DiffusionBValue = float(b)
        ds.DiffusionDirectionality = ("NONE" if b == 0 else
                                      "DIRECTIONAL" if direction is not None else "ISOTROPIC")
        if direction is not None:
            ds.DiffusionGradientOrientation = [float(v) for v in direction]
    elif encoding == "siemens":
        ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
        ds.add_new((0x0019, 0x100C), "IS", str(int(round(b))))
        if direction is not None:
            ds.add_new((0x0019, 0x100E), "FD", [float(v) for v in direction])
    elif encoding == "siemens-csa":
        tags: dict[str, tuple[str, Sequence[str]]] = {"B_value": ("IS", [str(int(round(b)))])}
        if direction is not None:
            tags["DiffusionGradientDirection"] = ("FD", [f"{v:.8f}" for v in direction])
        ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA HEADER")
        ds.add_new((0x0029, 0x1010), "OB", csa2_header(tags))
    elif encoding == "ge":
        ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
        ds.add_new((0x0043, 0x1039), "IS", [str(1_000_000_000 + int(round(b))), "8", "0", "0"])
    elif encoding == "philips":
        ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
        ds.add_new((0x2001, 0x1003), "FL", float(b))
        ds.add_new((0x2001, 0x1004), "CS", "I" if trace and b > 0 else
                   ("O" if direction is not None else " "))
    else:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    siemens = encoding.startswith("siemens")
    if siemens and trace and b > 0:
        ds.ImageType = ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW", "ND"]
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]


def write_dwi_series(directory: str | Path, *, encoding: str = "standard",
                     layout: str = "classic",
                     b_values: Sequence[float] = (0, 50, 400, 800),
                     tissues: Sequence[DwiTissue] = DEFAULT_TISSUES, snr: float = 50.0,
                     s0_reference: float = 1000.0, shape: tuple[int, int, int] = (4, 48, 48),
                     pixel_mm: float = 2.0, slice_mm: float = 4.0, directions: int = 0,
                     seed: int = 0, patient: dict[str, str] | None = None) -> DwiPhantom:
    """Write a DWI series of the phantom into ``directory`` and return the ground truth.

    ``shape`` is (slices, rows, columns); ``directions`` 0 writes trace-weighted images,
    3 writes three orthogonal directional images per b > 0 instead. ``snr`` is
    ``s0_reference / σ`` (``inf`` for no noise). ``patient``: the study's identity
    (``patient_id``, ``patient_name``, ``birth_date`` and ``study_date`` as DICOM DA,
    ``sex``, ``accession``); default a "DWI-PHANTOM" patient scanned on 2026-01-01.

    Example:
        >>> truth = write_dwi_series(tmp, encoding="ge")  # doctest: +SKIP
        >>> truth.tissues[1].adc_mm2_s  # doctest: +SKIP
        0.0011
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    if layout not in ("classic", "enhanced"):
        raise ValueError(f"layout must be classic or enhanced, got {layout!r}")
    if layout == "enhanced" and encoding != "standard":
        raise ValueError("the enhanced MR IOD carries only the standard b-value encoding")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    # Voxel centres, LPS mm: x along columns, y along rows, z along slices.
    x = (np.arange(nx) - (nx - 1) / 2) * pixel_mm
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_mm
    yy, xx = np.meshgrid(y, x, indexing="ij")
    plane_labels = np.zeros((ny, nx), dtype=np.int16)
    for k, t in enumerate(tissues):
        inside = (xx - t.centre_xy_mm[0]) ** 2 + (yy - t.centre_xy_mm[1]) ** 2 \
            <= t.radius_mm ** 2
        plane_labels[inside] = k + 1
    labels = np.broadcast_to(plane_labels, (nz, ny, nx)).copy()
    origin = np.array([x[0], y[0], -(nz - 1) / 2 * slice_mm])
    affine = np.eye(4)
    affine[:3, 0] = [0, 0, slice_mm]
    affine[:3, 1] = [0, pixel_mm, 0]
    affine[:3, 2] = [pixel_mm, 0, 0]
    affine[:3, 3] = origin
    sigma = 0.0 if not np.isfinite(snr) else s0_reference / snr
    dirs: list[tuple[float, float, float] | None]
    images: list[tuple[float, tuple[float, float, float] | None]] = []
    for b in b_values:
        if b == 0 or directions == 0:
            dirs = [None]
        elif directions == 3:
            dirs = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
        else:
            raise ValueError(f"directions must be 0 (trace) or 3, got {directions}")
        images.extend((float(b), d) for d in dirs)
    uids = {"study": generate_uid(), "series": generate_uid(), "for": generate_uid(),
            **(patient or {})}
    planes: list[np.ndarray] = []
    for b, _d in images:
        clean = np.zeros((nz, ny, nx))
        for k, t in enumerate(tissues):
            clean[labels == k + 1] = t.signal(b)
        noisy = np.hypot(clean + sigma * rng.standard_normal(clean.shape),
                         sigma * rng.standard_normal(clean.shape))
        planes.append(np.clip(np.rint(noisy), 0, 65535).astype(np.uint16))
    files: list[Path] = []
    if layout == "classic":
        number = 0
        for (b, d), vol in zip(images, planes, strict=True):
            for k in range(nz):
                number += 1
                ds = _classic(uids, encoding, b, d, vol[k], origin, k, slice_mm, pixel_mm,
                              number)
                path = out / f"IM{number:05d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                files.append(path)
    else:
        ds = _enhanced(uids, images, planes, origin, slice_mm, pixel_mm)
        path = out / "DWI_ENHANCED.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return DwiPhantom(out, tuple(files), tuple(float(b) for b in b_values), encoding, layout,
                      tuple(tissues), labels, affine)


def _meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _classic(uids: dict[str, str], encoding: str, b: float,
             direction: tuple[float, float, float] | None, plane: np.ndarray,
             origin: np.ndarray, k: int, slice_mm: float, pixel_mm: float,
             number: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = _meta(ds.SOPClassUID, ds.SOPInstanceUID)
    _common(ds, uids, encoding, plane.shape[0], plane.shape[1])
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(origin[2] + k * slice_mm)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [_ds(pixel_mm), _ds(pixel_mm)]
    ds.SliceThickness = _ds(slice_mm)
    ds.SliceLocation = _ds(origin[2] + k * slice_mm)
    ds.ScanningSequence = "EP"
    ds.SequenceVariant = "SK"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "4000"
    ds.EchoTime = "70"
    ds.EchoTrainLength = 1
    _vendor_b(ds, encoding, b, direction, trace=direction is None)
    ds.PixelData = np.ascontiguousarray(plane).tobytes()
    return ds


def _enhanced(uids: dict[str, str],
              images: Sequence[tuple[float, tuple[float, float, float] | None]],
              volumes: Sequence[np.ndarray], origin: np.ndarray, slice_mm: float,
              pixel_mm: float) -> Dataset:
    nz, ny, nx = volumes[0].shape
    ds = Dataset()
    ds.SOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = _meta(ds.SOPClassUID, ds.SOPInstanceUID)
    _common(ds, uids, "standard", ny, nx)
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.NumberOfFrames = len(images) * nz
    ds.AcquisitionDateTime = "20260101120000"
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [_ds(pixel_mm), _ds(pixel_mm)]
    pm.SliceThickness = _ds(slice_mm)
    shared.PixelMeasuresSequence = DicomSequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = DicomSequence([po])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for index, (b, d) in enumerate(images):
        for k in range(nz):
            fg = Dataset()
            fc = Dataset()
            fc.StackID = "1"
            fc.InStackPositionNumber = k + 1
            fc.DimensionIndexValues = [index + 1, k + 1]
            fg.FrameContentSequence = DicomSequence([fc])
            pp = Dataset()
            pp.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]),
                                       _ds(origin[2] + k * slice_mm)]
            fg.PlanePositionSequence = DicomSequence([pp])
            diff = Dataset()
            diff.DiffusionBValue = float(b)
            diff.DiffusionDirectionality = ("NONE" if b == 0 else
                                            "DIRECTIONAL" if d is not None else "ISOTROPIC")
            if d is not None:
                g = Dataset()
                g.DiffusionGradientOrientation = [float(v) for v in d]
                diff.DiffusionGradientDirectionSequence = DicomSequence([g])
            fg.MRDiffusionSequence = DicomSequence([diff])
            ftype = Dataset()
            ftype.FrameType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            fg.MRImageFrameTypeSequence = DicomSequence([ftype])
            per_frame.append(fg)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.ascontiguousarray(np.concatenate(list(volumes))).tobytes()
    return ds


#: The b-value encoding of each PET/CT vendor of the cohort (oncohybrid.phantom.vendors).
VENDOR_ENCODING = {"siemens": "siemens", "ge": "ge", "philips": "philips"}


def add_dwi_studies(out: str | Path, truth: dict, *, encoding: str = "vendor",
                    layout: str = "classic",
                    b_values: Sequence[float] = (0, 50, 400, 800), snr: float = 50.0,
                    directions: int = 0, seed: int = 0) -> dict:
    """Give every timepoint of a phantom cohort (:func:`oncohybrid.phantom.generate_cohort`)
    an MR DWI study of the same patient on the same day, in ``<patient>/TP<k>/MR/``, and
    add its truth to the timepoint as ``"dwi"`` (``ground_truth.json`` is rewritten).

    ``encoding``: ``vendor`` (the patient's PET/CT vendor: Siemens (0019,100C), GE
    (0043,1039), Philips (2001,1003)), ``all`` (the five encodings in turn over the
    timepoints: standard, Siemens, Siemens CSA only, GE, Philips), or one of
    :data:`ENCODINGS`. The tissues are :data:`DEFAULT_TISSUES` (known ADC; one IVIM).
    """
    import json

    root = Path(out)
    if encoding not in ("vendor", "all", *ENCODINGS):
        raise ValueError(f"DWI encoding must be vendor, all or one of {', '.join(ENCODINGS)}, "
                         f"got {encoding!r}")
    n = 0
    for p in truth["patients"]:
        for tp in p["timepoints"]:
            if encoding == "vendor":
                enc = VENDOR_ENCODING.get(p["vendor"], "standard")
            elif encoding == "all":
                enc = ENCODINGS[n % len(ENCODINGS)]
            else:
                enc = encoding
            folder = root / Path(tp["pt_dir"]).parent / "MR"
            identity = {"patient_id": p["patient_id"], "patient_name": p["patient_name"],
                        "birth_date": p["birth_date"].replace("-", ""), "sex": p["sex"],
                        "study_date": tp["date"].replace("-", ""),
                        "accession": f"{tp.get('accession_number') or ''}MR"[:16]}
            ph = write_dwi_series(folder, encoding=enc,
                                  layout=layout if enc == "standard" else "classic",
                                  b_values=b_values, snr=snr, directions=directions,
                                  seed=seed + n, patient=identity)
            import pydicom

            head = pydicom.dcmread(ph.files[0], stop_before_pixels=True)
            tp["dwi"] = {
                "dir": str(folder.relative_to(root)), "encoding": enc,
                "layout": ph.layout, "b_values": list(ph.b_values), "snr": snr,
                "directions": directions, "study_uid": str(head.StudyInstanceUID),
                "series_uid": str(head.SeriesInstanceUID),
                "b_value_source": "standard" if enc == "standard" else
                ("siemens" if enc.startswith("siemens") else enc),
                "tissues": [{"name": t.name, "adc_mm2_s": t.adc_mm2_s,
                             "centre_lps_mm": [t.centre_xy_mm[0], t.centre_xy_mm[1], 0.0],
                             "radius_mm": t.radius_mm, "f": t.f,
                             "d_star_mm2_s": t.d_star_mm2_s} for t in ph.tissues],
            }
            n += 1
    for p in truth["patients"]:
        if (root / p["patient_id"]).is_dir():
            (root / p["patient_id"] / "ground_truth.json").write_text(json.dumps(p, indent=2))
    (root / "ground_truth.json").write_text(json.dumps(truth, indent=2))
    return truth
