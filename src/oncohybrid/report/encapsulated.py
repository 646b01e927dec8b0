"""Encapsulated PDF Storage of a report (PS3.3 A.45.1, SOP Class 1.2.840.10008.5.1.4.1.1.104.1).

Neither highdicom nor pydicom has a builder for this IOD (DCMTK's ``pdf2dcm`` is a
command-line tool), so the dataset is assembled here with pydicom, module by module:
Patient and General Study copied from a source image of the timepoint (so that the PDF
files into the patient's study), Encapsulated Document Series (Modality ``DOC``),
General Equipment, SC Equipment (Conversion Type ``WSD``, workstation), Encapsulated
Document (C.24.2) and SOP Common.
"""

from __future__ import annotations

import datetime as dt

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from oncohybrid import __version__
from oncohybrid.errors import InputError

__all__ = ["ENCAPSULATED_PDF_STORAGE", "build_encapsulated_pdf"]

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"

_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
_STUDY = ("StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
          "AccessionNumber", "StudyDescription")


def build_encapsulated_pdf(pdf: bytes, source: Dataset, *, title: str,
                           series_number: int = 3003, when: dt.datetime | None = None
                           ) -> Dataset:
    """Wrap ``pdf`` in an Encapsulated PDF dataset belonging to ``source``'s study.

    Raises :class:`InputError` when ``pdf`` is not a PDF or ``source`` lacks (0020,000D)
    *Study Instance UID*.
    """
    if not pdf.startswith(b"%PDF-"):
        raise InputError("Encapsulated PDF: the document does not start with '%PDF-'")
    if "StudyInstanceUID" not in source:
        raise InputError("Encapsulated PDF: the source image has no (0020,000D) Study Instance UID")
    when = when or dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    # Patient (C.7.1.1) and General Study (C.7.2.1): type 2 attributes present, maybe empty.
    for kw in _PATIENT + _STUDY:
        value = source.get(kw)
        if value is not None:
            setattr(ds, kw, value)
        elif kw not in ("IssuerOfPatientID", "StudyDescription"):
            setattr(ds, kw, "")
    # Encapsulated Document Series (C.24.1)
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "Tumour-board report (PDF)"
    # General Equipment (C.7.5.1) and SC Equipment (C.8.6.1)
    ds.Manufacturer = "oncohybrid"
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"
    # Encapsulated Document (C.24.2)
    ds.InstanceNumber = 1
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF shows the patient's identity
    ds.DocumentTitle = title[:64]
    concept = Dataset()
    # (18748-4, LN) "Diagnostic imaging study" — CID 7020 document title for imaging reports.
    concept.CodeValue = "18748-4"
    concept.CodingSchemeDesignator = "LN"
    concept.CodeMeaning = "Diagnostic imaging report"
    ds.ConceptNameCodeSequence = [concept]
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    # OB values have even length; a trailing NUL pads an odd-length document (C.24.2.1).
    ds.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    # SOP Common (C.12.1)
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceCreationDate = ds.ContentDate
    ds.InstanceCreationTime = ds.ContentTime
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds
