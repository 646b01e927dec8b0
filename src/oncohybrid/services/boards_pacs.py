"""Use-case: a board session's DICOM objects for the PACS — per case an Encapsulated PDF of
the case's pack section and a Key Object Selection of its key images — written to a folder
and, on request, sent to a configured node through the existing PACS edge
(:func:`oncohybrid.services.pacs.send`).

- Encapsulated PDF (PS3.3 A.45.1, :func:`oncohybrid.report.encapsulated.build_encapsulated_pdf`)
  of the case sheet and the patient's tumour-board report, in the current study.
- Key Object Selection Document (PS3.3 A.35.4, TID 2010; built with highdicom ``ko``)
  titled (113005, DCM, "For Conference") from CID 7010, referencing the CT and PET images
  through the first target lesion (the instance whose position along the slice normal is
  nearest the lesion centroid) of the baseline and current studies — the slices the room
  looked at, so that the PACS viewer opens on them.

DICOM objects belong to the patient's record and carry the patient's identity: there is
no pseudonymised variant (use the pseudonymised pack or slides instead).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit
from oncohybrid.services import boards as board_service

__all__ = ["write_dicom", "send_session", "nearest_instance"]

#: Series numbers of the objects (distinct from the report's 3001–3003).
KOS_SERIES_NUMBER = 3010
PDF_SERIES_NUMBER = 3011


def nearest_instance(headers: list[Any], point_lps_mm: list[float]) -> Any:
    """The image whose plane is nearest ``point_lps_mm`` along the slice normal
    ((0020,0037) *Image Orientation (Patient)* row × column, (0020,0032) *Image Position
    (Patient)*, PS3.3 C.7.6.2.1.1)."""
    best, best_d = None, np.inf
    p = np.asarray(point_lps_mm, dtype=float)
    for ds in headers:
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        d = abs(float(np.dot(p - np.asarray(ds.ImagePositionPatient, dtype=float), normal)))
        if d < best_d:
            best, best_d = ds, d
    if best is None:
        raise InputError("key images: the series has no image with a position")
    return best


def _study_series(settings: Settings, study_uid: str) -> list[str]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Series, Study

    with session_scope(settings) as s:
        return list(s.scalars(
            sa.select(Series.series_instance_uid).join(Study, Study.id == Series.study_pk)
            .where(Study.study_instance_uid == study_uid, Series.modality.in_(("CT", "PT")))
            .order_by(Series.modality, Series.series_number)))


def _key_images(settings: Settings, case_id: int) -> list[Any]:
    """Headers of the key images of a case (CT and PET through the first target lesion,
    baseline and current); the middle slice where no target lesion has a centroid."""
    import pydicom

    from oncohybrid.store.queries import series_files

    pres = board_service.case_presentation(settings, case_id)
    out = []
    for img in pres["images"]:
        if img["study_uid"] is None:
            continue
        for series_uid in _study_series(settings, img["study_uid"]):
            headers = [pydicom.dcmread(f, stop_before_pixels=True)
                       for f in series_files(series_uid, settings)]
            headers = [h for h in headers if "ImagePositionPatient" in h]
            if not headers:
                continue
            if img["centroid_lps_mm"] is not None:
                out.append(nearest_instance(headers, img["centroid_lps_mm"]))
            else:
                out.append(headers[len(headers) // 2])
    return out


def _list_all_evidence(doc: Any, evidence: list[Any]) -> None:
    """List every referenced image in (0040,A375) *Current Requested Procedure Evidence
    Sequence*, one item per study (PS3.3 C.17.2.3: all composite objects the content
    references); highdicom lists the document's own study only."""
    from pydicom.dataset import Dataset

    by_study: dict[str, Any] = {it.StudyInstanceUID: it
                                for it in doc.CurrentRequestedProcedureEvidenceSequence}
    for ds in evidence:
        study = by_study.get(ds.StudyInstanceUID)
        if study is None:
            study = Dataset()
            study.StudyInstanceUID = ds.StudyInstanceUID
            study.ReferencedSeriesSequence = []
            doc.CurrentRequestedProcedureEvidenceSequence.append(study)
            by_study[ds.StudyInstanceUID] = study
        series = next((x for x in study.ReferencedSeriesSequence
                       if x.SeriesInstanceUID == ds.SeriesInstanceUID), None)
        if series is None:
            series = Dataset()
            series.SeriesInstanceUID = ds.SeriesInstanceUID
            series.ReferencedSOPSequence = []
            study.ReferencedSeriesSequence.append(series)
        if all(x.ReferencedSOPInstanceUID != ds.SOPInstanceUID
               for x in series.ReferencedSOPSequence):
            ref = Dataset()
            ref.ReferencedSOPClassUID = ds.SOPClassUID
            ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
            series.ReferencedSOPSequence.append(ref)


def write_dicom(settings: Settings | None, session_id: int, out_dir: str | os.PathLike[str],
                *, actor: str = "cli") -> dict[str, Any]:
    """Write each case's Encapsulated PDF and Key Object Selection into ``out_dir``."""
    from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from oncohybrid import __version__
    from oncohybrid.report.encapsulated import build_encapsulated_pdf
    from oncohybrid.report.seg import write_dataset
    from oncohybrid.services import boards_pack

    settings = settings or get_settings()
    detail = board_service.session_detail(settings, session_id)
    if not detail["cases"]:
        raise InputError(f"session {session_id}: no case on the agenda")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is not a folder")
    mats = boards_pack._gather(settings, detail, pseudonymise=False, dpi=110, progress=None)
    objects: list[dict[str, Any]] = []
    pending: list[tuple[Any, Path]] = []
    title = f"Tumour board {detail['board']['name']} {detail['date']}"
    for k, m in enumerate(mats, start=1):
        c = m.case
        if m.data is None:
            objects.append({"case_id": c["case_id"], "skipped": m.note})
            continue
        keys = _key_images(settings, c["case_id"])
        if not keys:
            objects.append({"case_id": c["case_id"], "skipped": "no image to reference"})
            continue
        one = {**detail, "cases": [c]}
        pdf, _pages = boards_pack._render_pack_pdf(one, [m], pseudonymised=False,
                                                   agenda=False, first=k, total=len(mats))
        # the PDF belongs to the current study: its newest key image's study
        source = keys[-1]
        enc = build_encapsulated_pdf(pdf, source, title=title,
                                     series_number=PDF_SERIES_NUMBER)
        # the document's study is its first evidence's: the current study
        evidence = sorted(keys, key=lambda ds: ds.StudyInstanceUID != source.StudyInstanceUID)
        kos_doc = KeyObjectSelectionDocument(
            evidence=evidence,
            content=KeyObjectSelection(
                document_title=codes.DCM.ForConference, referenced_objects=evidence,
                description=(f"{title}, case {k}: key images through the first target "
                             "lesion")[:1024]),
            series_instance_uid=generate_uid(), series_number=KOS_SERIES_NUMBER,
            sop_instance_uid=generate_uid(), instance_number=1,
            manufacturer=f"oncohybrid {__version__}")
        _list_all_evidence(kos_doc, evidence)
        stem = f"case{c['case_id']}"
        pending += [(enc, out / f"{stem}-pdf.dcm"), (kos_doc, out / f"{stem}-kos.dcm")]
        objects.append({"case_id": c["case_id"], "pdf": str(out / f"{stem}-pdf.dcm"),
                        "kos": str(out / f"{stem}-kos.dcm"),
                        "key_images": [ds.SOPInstanceUID for ds in keys]})
    out.mkdir(parents=True, exist_ok=True)
    for ds, path in pending:  # written only once every case was built
        write_dataset(ds, path)
    audit.record(settings, actor, "board.dicom", f"board-session:{session_id}",
                 {"objects": len(pending)})
    return {"session_id": int(session_id), "cases": objects,
            "files": [str(p) for _ds, p in pending]}


def send_session(settings: Settings | None, session_id: int, node_name: str, *,
                 out_dir: str | os.PathLike[str] | None = None, actor: str = "cli"
                 ) -> dict[str, Any]:
    """Write the objects (into ``out_dir`` or the workspace) and C-STORE / STOW-RS them to
    the configured node ``node_name``."""
    from oncohybrid.services import pacs

    settings = settings or get_settings()
    node = pacs.default_repository(settings).get(node_name)  # InputError when unknown
    folder = Path(out_dir) if out_dir is not None else (
        settings.derived_dir / "boards" / f"session{int(session_id)}-"
        f"{dt.datetime.now():%Y%m%d-%H%M%S}")
    written = write_dicom(settings, session_id, folder, actor=actor)
    if not written["files"]:
        raise InputError(f"session {session_id}: no case with images to send")
    report = pacs.send(node, written["files"])
    audit.record(settings, actor, "board.pacs.send", f"board-session:{session_id}",
                 {"node": node.name, "sent": report.sent, "failed": len(report.failed)})
    return {**written, "node": node.name, "sent": report.sent,
            "failed": [{"file": f, "reason": r} for f, r in report.failed]}
