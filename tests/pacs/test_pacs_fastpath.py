"""The direct C-STORE receive path (oncohybrid.pacs.fastpath) against raw PDU sequences.

Each test sends P-DATA-TF PDUs built by hand (PS3.8 §9.3.5, Annex E) on a pynetdicom
association and reads the responses through pynetdicom's own DIMSE decoder, so the
path is checked against the standard's framing, not against itself: fragmented data
sets, several messages in one PDU, a C-ECHO between C-STOREs, and requests it must
leave to pynetdicom.
"""

from __future__ import annotations

import time

import pacs_data
import pacs_net
import pytest
import sqlalchemy as sa
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import Verification

from oncohybrid.config import get_settings
from oncohybrid.pacs import scp
from oncohybrid.pacs.fastpath import parse_command
from oncohybrid.pacs.scp import StorageListener
from oncohybrid.services.ingest import Ingestor


def stored_files() -> dict[str, str]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance

    with session_scope(get_settings()) as s:
        rows = s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all()
    return {uid: path for uid, path in rows}


@pytest.fixture
def listener(home, monkeypatch):  # noqa: ANN001, ANN201
    calls: list[str] = []
    original = scp._Receiver._on_store

    def counting(self, event):  # noqa: ANN001, ANN202 - pynetdicom's own C-STORE path
        calls.append(str(event.request.AffectedSOPInstanceUID))
        return original(self, event)

    monkeypatch.setattr(scp._Receiver, "_on_store", counting)
    settings = get_settings()
    lst = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool", port=0,
                          quiet_period_s=30, receive_processes=0)
    lst.start()
    lst.pynetdicom_calls = calls  # type: ignore[attr-defined]
    yield lst
    lst.stop(grace_s=1)


def command(ds: Dataset, message_id: int, *, field: int = 0x0001) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = ds.SOPClassUID if field == 0x0001 else Verification
    cmd.CommandField = field
    cmd.MessageID = message_id
    if field == 0x0001:
        cmd.Priority = 0
        cmd.CommandDataSetType = 0x0000
        cmd.AffectedSOPInstanceUID = ds.SOPInstanceUID
    else:
        cmd.CommandDataSetType = 0x0101
    body = encode(cmd, True, True)
    group = Dataset()
    group.CommandGroupLength = len(body)
    return encode(group, True, True) + body


class RawSender:
    """A pynetdicom association whose P-DATA PDUs are written by hand."""

    def __init__(self, port: int, ds: Dataset) -> None:
        ae = pacs_net.sender_ae("RAW")
        ae.add_requested_context(ds.SOPClassUID, "1.2.840.10008.1.2.1")
        ae.add_requested_context(Verification)
        self.responses: list[tuple[int, int]] = []  # (message id responded to, status)

        def on_recv(event) -> None:  # noqa: ANN001
            cs = event.message.command_set
            self.responses.append((int(cs.MessageIDBeingRespondedTo), int(cs.Status)))

        self.assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID",
                                  evt_handlers=[(evt.EVT_DIMSE_RECV, on_recv)])
        assert self.assoc.is_established
        by_syntax = {str(cx.abstract_syntax): cx.context_id
                     for cx in self.assoc.accepted_contexts}
        self.store_cx = by_syntax[str(ds.SOPClassUID)]
        self.echo_cx = by_syntax[str(Verification)]

    def send(self, *pdvs: bytes) -> None:
        self.assoc.dul.socket.send(pacs_net._p_data_tf(*pdvs))

    def wait(self, n: int, timeout_s: float = 10) -> list[tuple[int, int]]:
        deadline = time.monotonic() + timeout_s
        while len(self.responses) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.responses)

    def release(self) -> None:
        self.assoc.release()


def test_parse_command_reads_the_dimse_encoding() -> None:
    ds = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    elements = parse_command(command(ds, 42))
    assert elements is not None
    assert int.from_bytes(elements[0x0100], "little") == 0x0001
    assert int.from_bytes(elements[0x0110], "little") == 42
    assert elements[0x1000].rstrip(b"\x00") == str(ds.SOPInstanceUID).encode()
    assert parse_command(b"\x08\x00\x16\x00\x02\x00\x00\x00ab") is None  # not group 0000
    assert parse_command(command(ds, 1)[:-3]) is None  # cut off


def test_fragmented_and_combined_messages_are_stored_bit_identical(listener) -> None:  # noqa: ANN001
    study = pacs_data.make_study(n_ct=3, n_pt=0, size=64)
    first, second, third = study
    raw = RawSender(listener.port, first)
    cx, echo = raw.store_cx, raw.echo_cx
    data = [encode(ds, False, True) for ds in study]
    pdv = pacs_net._pdv

    # 1: the data set in 9 fragments over 3 PDUs, the last PDU also holding a C-ECHO-RQ
    chunks = [data[0][i : i + 1000] for i in range(0, len(data[0]), 1000)]
    assert len(chunks) >= 9
    raw.send(pdv(cx, 0x03, command(first, 1)), *(pdv(cx, 0x00, c) for c in chunks[:4]))
    raw.send(*(pdv(cx, 0x00, c) for c in chunks[4:-1]))
    raw.send(pdv(cx, 0x02, chunks[-1]), pdv(echo, 0x03, command(first, 2, field=0x0030)))
    assert sorted(raw.wait(2)) == [(1, 0), (2, 0)]
    # 2: two whole C-STOREs in one PDU
    raw.send(pdv(cx, 0x03, command(second, 3)), pdv(cx, 0x02, data[1]),
             pdv(cx, 0x03, command(third, 4)), pdv(cx, 0x02, data[2]))
    assert sorted(raw.wait(4)) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    raw.release()

    assert listener.flush(30)
    files = stored_files()
    assert set(files) == {str(ds.SOPInstanceUID) for ds in study}
    for ds, encoded in zip(study, data, strict=True):
        with open(files[str(ds.SOPInstanceUID)], "rb") as fh:
            assert fh.read().endswith(encoded)  # the data set exactly as sent
        meta = dcmread(files[str(ds.SOPInstanceUID)], stop_before_pixels=True).file_meta
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert listener.pynetdicom_calls == []  # every C-STORE took the direct path


def test_command_split_over_pdus_goes_to_pynetdicom_and_still_stores(listener) -> None:  # noqa: ANN001
    ds = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    raw = RawSender(listener.port, ds)
    cmd = command(ds, 5)
    pdv = pacs_net._pdv
    raw.send(pdv(raw.store_cx, 0x01, cmd[:20]))  # command, not the last fragment
    raw.send(pdv(raw.store_cx, 0x03, cmd[20:]), pdv(raw.store_cx, 0x02, encode(ds, False, True)))
    assert raw.wait(1) == [(5, 0)]
    # and the next plain request is direct again
    other = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    raw.send(pdv(raw.store_cx, 0x03, command(other, 6)),
             pdv(raw.store_cx, 0x02, encode(other, False, True)))
    assert raw.wait(2) == [(5, 0), (6, 0)]
    raw.release()
    assert listener.flush(30)
    assert set(stored_files()) == {str(ds.SOPInstanceUID), str(other.SOPInstanceUID)}
    assert listener.pynetdicom_calls == [str(ds.SOPInstanceUID)]


def test_store_and_echo_through_pynetdicom_sender_interleave(listener) -> None:  # noqa: ANN001
    study = pacs_data.make_study(n_ct=2, n_pt=2)
    ae = pacs_net.sender_ae()
    for sop_class in {str(ds.SOPClassUID) for ds in study}:
        ae.add_requested_context(sop_class, "1.2.840.10008.1.2.1")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="ONCOHYBRID")
    statuses = []
    for ds in study:
        statuses.append(int(assoc.send_c_store(ds).Status))
        statuses.append(int(assoc.send_c_echo().Status))
    assoc.release()
    assert statuses == [0] * 8
    assert listener.flush(30)
    assert set(stored_files()) == {str(ds.SOPInstanceUID) for ds in study}
