"""DIMSE service user: C-ECHO, C-FIND, C-MOVE, C-GET and C-STORE towards a remote node.

Query/retrieve uses the Study Root information model (PS3.4 Annex C.6.2); C-FIND
responses are paged locally (``offset``/``limit``) and the query is cancelled with
C-CANCEL (PS3.7 §9.3.2.3) once the page is full, so a broad query does not make the
PACS stream its whole index. C-MOVE (PS3.4 C.4.2) asks the PACS to send the study to
*our* Storage SCP, whose AE title the PACS must know; C-GET (PS3.4 C.4.3) returns the
instances on the same association (SCP role negotiated per storage class,
PS3.7 D.3.3.4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    StoragePresentationContexts,
    build_role,
    evt,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from oncohybrid.errors import DicomError, PacsError
from oncohybrid.pacs.association import MAX_PDU_BYTES, tune_association
from oncohybrid.pacs.node import PacsNode
from oncohybrid.pacs.query import StudyQuery, StudyResult, study_result_from_dataset

log = logging.getLogger(__name__)

DEFAULT_CALLING_AE = "ONCOHYBRID"
_PENDING = (0xFF00, 0xFF01)


def _ae(calling_ae: str) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.maximum_pdu_size = MAX_PDU_BYTES
    ae.acse_timeout = 30
    ae.dimse_timeout = 120
    ae.network_timeout = 60
    return ae


def _associate(ae: AE, node: PacsNode, **kwargs: Any) -> Any:
    if node.is_dicomweb:
        raise PacsError(f"node {node.name!r} is a DICOMweb node; this needs a DIMSE node")
    handlers = list(kwargs.pop("evt_handlers", []))
    handlers.append((evt.EVT_CONN_OPEN, tune_association))
    assoc = ae.associate(
        node.host, node.port, ae_title=node.ae_title, evt_handlers=handlers, **kwargs
    )
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        why = "association rejected (check that it knows our AE title and host)"
    elif assoc.is_aborted:  # also what pynetdicom reports for a refused TCP connection
        why = "connection refused or aborted (check host and port, and our AE title there)"
    else:
        why = "no answer (host/port unreachable or not a DICOM service)"
    raise PacsError(f"node {node.name!r} ({node.address}): {why}")


def _status_text(status: Dataset | None) -> str:
    if status is None or "Status" not in status:
        return "no response (timeout or aborted)"
    code = int(status.Status)
    comment = status.get("ErrorComment")
    return f"status 0x{code:04X}" + (f" ({comment})" if comment else "")


def echo(node: PacsNode, *, calling_ae: str = DEFAULT_CALLING_AE) -> float:
    """C-ECHO (PS3.4 Annex A); return the round-trip time in seconds."""
    import time

    ae = _ae(calling_ae)
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    assoc = _associate(ae, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if status is None or int(status.get("Status", -1)) != 0:
        raise PacsError(f"node {node.name!r}: C-ECHO failed, {_status_text(status)}")
    return time.perf_counter() - start


def find_studies(
    node: PacsNode, query: StudyQuery, *, calling_ae: str = DEFAULT_CALLING_AE
) -> list[StudyResult]:
    """C-FIND at STUDY level; results ``[offset, offset + limit)`` in the PACS's order."""
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, node)
    results: list[StudyResult] = []
    seen = 0
    final: Dataset | None = None
    cancelled = False
    try:
        responses = assoc.send_c_find(
            query.identifier(), StudyRootQueryRetrieveInformationModelFind
        )
        for status, identifier in responses:
            final = status
            if status is None or int(status.get("Status", -1)) not in _PENDING:
                break
            if identifier is None:
                continue
            result = study_result_from_dataset(identifier)
            if result is None:
                continue
            if seen >= query.offset and len(results) < query.limit:
                results.append(result)
            seen += 1
            if len(results) >= query.limit and not cancelled:
                assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelFind)
                cancelled = True
    finally:
        if assoc.is_established:
            assoc.release()
    if final is None:
        raise PacsError(f"node {node.name!r}: C-FIND got no response")
    code = int(final.get("Status", -1))
    if code not in (0x0000, 0xFE00, *_PENDING):
        raise PacsError(f"node {node.name!r}: C-FIND failed, {_status_text(final)}")
    return results


@dataclass
class RetrieveResult:
    """Counts reported by the peer (C-MOVE/C-GET final response, PS3.4 C.4.2.1.5)."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: int = 0  # instances that arrived on our side (C-GET) / were ingested
    outcomes: dict[str, int] = field(default_factory=dict)


def _counts(status: Dataset | None, result: RetrieveResult) -> None:
    if status is None:
        return
    result.completed = int(status.get("NumberOfCompletedSuboperations", result.completed) or 0)
    result.failed = int(status.get("NumberOfFailedSuboperations", result.failed) or 0)
    result.warning = int(status.get("NumberOfWarningSuboperations", result.warning) or 0)


def _retrieve_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def move_study(
    node: PacsNode,
    study_uid: str,
    *,
    destination_ae: str,
    calling_ae: str = DEFAULT_CALLING_AE,
) -> RetrieveResult:
    """C-MOVE the study to `destination_ae` (our listener, known to the PACS)."""
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = _associate(ae, node)
    result = RetrieveResult()
    final: Dataset | None = None
    try:
        for status, _identifier in assoc.send_c_move(
            _retrieve_identifier(study_uid),
            destination_ae,
            StudyRootQueryRetrieveInformationModelMove,
        ):
            final = status
            _counts(status, result)
            if status is None or int(status.get("Status", -1)) not in _PENDING:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    code = -1 if final is None else int(final.get("Status", -1))
    if code not in (0x0000, 0xB000):
        raise PacsError(
            f"node {node.name!r}: C-MOVE of study to {destination_ae} failed, "
            f"{_status_text(final)}; check that the PACS knows {destination_ae} "
            "(AE title, host, port)"
        )
    return result


def get_study(
    node: PacsNode,
    study_uid: str,
    on_instance: Callable[[Dataset], str],
    *,
    calling_ae: str = DEFAULT_CALLING_AE,
) -> RetrieveResult:
    """C-GET the study; every instance received is passed to `on_instance`.

    `on_instance` returns an outcome label (e.g. ``"new"``/``"duplicate"``) counted in
    ``RetrieveResult.outcomes``; raising from it refuses that instance (status 0xA700).
    """
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    # C-GET carries sub-operations on this association: offer the storage SCP role.
    contexts = StoragePresentationContexts[: 128 - 1]
    roles = []
    for cx in contexts:
        ae.add_requested_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        roles.append(build_role(cx.abstract_syntax, scp_role=True))
    result = RetrieveResult()

    def _store(event: evt.Event) -> int:
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            label = on_instance(ds)
        except Exception as exc:  # refuse the instance, keep the association
            log.error("C-GET instance could not be ingested: %s", exc)
            return 0xA700
        result.received += 1
        result.outcomes[label] = result.outcomes.get(label, 0) + 1
        return 0x0000

    assoc = _associate(ae, node, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, _store)])
    final: Dataset | None = None
    try:
        for status, _identifier in assoc.send_c_get(
            _retrieve_identifier(study_uid), StudyRootQueryRetrieveInformationModelGet
        ):
            final = status
            _counts(status, result)
            if status is None or int(status.get("Status", -1)) not in _PENDING:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    code = -1 if final is None else int(final.get("Status", -1))
    if code not in (0x0000, 0xB000):
        raise PacsError(f"node {node.name!r}: C-GET failed, {_status_text(final)}")
    return result


@dataclass
class SendResult:
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def read_for_sending(paths: Iterable[Path]) -> list[tuple[Path, Dataset]]:
    """Read DICOM files to send, naming the file that cannot be read."""
    out = []
    for path in paths:
        try:
            ds = dcmread(path)
        except Exception as exc:
            raise DicomError(f"{path}: not a readable DICOM file ({exc})") from exc
        if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
            raise DicomError(f"{path}: no (0008,0016) SOP Class UID / (0008,0018) SOP Instance UID")
        out.append((Path(path), ds))
    return out


def store_files(
    node: PacsNode,
    items: list[tuple[Path, Dataset]],
    *,
    calling_ae: str = DEFAULT_CALLING_AE,
) -> SendResult:
    """C-STORE the datasets on one association (PS3.4 Annex B), in their own encoding."""
    ae = _ae(calling_ae)
    wanted: dict[str, set[str]] = {}
    for _path, ds in items:
        meta = getattr(ds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        wanted.setdefault(str(ds.SOPClassUID), set()).add(str(ts or "1.2.840.10008.1.2.1"))
    if len(wanted) > 128:
        raise PacsError("more than 128 SOP classes in one send; split the files")
    for sop_class, syntaxes in wanted.items():
        # offer the file's own syntax and the uncompressed ones pynetdicom can convert to
        ae.add_requested_context(
            sop_class, sorted(syntaxes | {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"})
        )
    assoc = _associate(ae, node)
    result = SendResult()
    try:
        for path, ds in items:
            status = assoc.send_c_store(ds)
            code = -1 if status is None else int(status.get("Status", -1))
            if code == 0x0000 or 0xB000 <= code <= 0xBFFF:
                result.sent += 1
            else:
                result.failed.append((str(path), _status_text(status)))
            if not assoc.is_established:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    done = {p for p, _ in result.failed}
    for path, _ in items[result.sent + len(result.failed):]:
        if str(path) not in done:
            result.failed.append((str(path), "association ended before sending"))
    return result
