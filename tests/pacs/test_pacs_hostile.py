"""The Storage SCP under hostile input (issue #12 items 1, 7, 8, 13).

* idle TCP connections must not take association slots from real senders;
* a C-STORE whose data set does not match its command or SOP class is refused with
  0xA900 (PS3.4 Table B.2-1, PS3.7 C.4.2) and nothing is stored;
* native Pixel Data shorter than the image attributes imply is refused at receipt;
* an unknown calling AE or a wrong called AE gets an A-ASSOCIATE-RJ with the reason
  of PS3.8 §9.3.4, read back by a pynetdicom requestor, not a dropped connection.

Both receive paths are exercised where the instance goes through one: the direct
fast path (default) and pynetdicom's own C-STORE handling (``ONCOHYBRID_SCP_POLL=1``).
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pacs_data
import pacs_net
import pytest
import sqlalchemy as sa
from pydicom.uid import CTImageStorage, PositronEmissionTomographyImageStorage, generate_uid

from oncohybrid.config import get_settings
from oncohybrid.pacs.scp import AllowedCaller, StorageListener
from oncohybrid.services.ingest import Ingestor

STATUS_DOES_NOT_MATCH = 0xA900  # PS3.4 Table B.2-1


def db_instances() -> dict[str, Path]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance

    with session_scope(get_settings()) as s:
        rows = s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all()
    return {uid: Path(p) for uid, p in rows}


@pytest.fixture(params=["fast path", "pynetdicom path"])
def receive_path(request, monkeypatch) -> str:  # noqa: ANN001
    if request.param == "pynetdicom path":
        monkeypatch.setenv("ONCOHYBRID_SCP_POLL", "1")
    return str(request.param)


@pytest.fixture
def make_listener(home):  # noqa: ANN001, ANN201
    started: list[StorageListener] = []

    def _make(**kw) -> StorageListener:  # noqa: ANN003
        settings = get_settings()
        kw.setdefault("quiet_period_s", 30)
        kw.setdefault("receive_processes", 0)
        listener = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool",
                                   port=0, **kw)
        listener.start()
        started.append(listener)
        return listener

    yield _make
    for listener in started:
        listener.stop(grace_s=1)


def assert_nothing_stored(listener: StorageListener, refused: int) -> None:
    assert listener.flush(10)
    assert listener.stats.received == 0
    assert listener.stats.refused_instances == refused
    assert db_instances() == {}
    assert sorted(p.name for p in listener.spool_dir.iterdir()) == []


# -- item 7: the data set must match the command and its SOP class ----------------------


def test_data_set_with_another_sop_instance_uid_than_the_command_is_refused_a900(
    make_listener, receive_path  # noqa: ANN001
) -> None:
    listener = make_listener()
    ds = pacs_data.make_study(n_ct=0, n_pt=1)[0]
    status, comment = pacs_net.store_raw(listener.port, ds, command_instance=generate_uid())
    assert status == STATUS_DOES_NOT_MATCH
    assert "SOP Instance UID" in comment
    assert_nothing_stored(listener, refused=1)
    assert pacs_net.send(listener.port, [ds]) == [0]  # the consistent request is stored
    assert listener.flush(30) and set(db_instances()) == {str(ds.SOPInstanceUID)}


def test_ct_data_set_under_the_pet_sop_class_is_refused_a900(
    make_listener, receive_path  # noqa: ANN001
) -> None:
    listener = make_listener()
    ct = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    assert ct.SOPClassUID == CTImageStorage
    # the command says PET, the data set is a CT Image (its own SOP Class UID says so)
    status, comment = pacs_net.store_raw(
        listener.port, ct, command_class=PositronEmissionTomographyImageStorage)
    assert status == STATUS_DOES_NOT_MATCH
    assert "SOP Class UID" in comment
    # a CT relabelled as PET in the data set too: its Modality still says CT
    ct.SOPClassUID = PositronEmissionTomographyImageStorage
    status, comment = pacs_net.store_raw(listener.port, ct)
    assert status == STATUS_DOES_NOT_MATCH
    assert "Modality" in comment and "CT" in comment
    assert_nothing_stored(listener, refused=2)


# -- item 8: Pixel Data as long as Rows x Columns x frames x bits imply ----------------


@pytest.mark.parametrize("frames", [1, 3])
def test_short_native_pixel_data_is_refused_at_receipt(
    make_listener, receive_path, frames  # noqa: ANN001
) -> None:
    listener = make_listener()
    ds = pacs_data.make_study(n_ct=1, n_pt=0, size=16)[0]
    if frames > 1:  # 3 frames declared, 2 sent
        ds.NumberOfFrames = frames
        ds.PixelData = ds.PixelData * (frames - 1)
    else:
        ds.PixelData = ds.PixelData[: 16 * 15 * 2]  # one row short
    statuses = pacs_net.send(listener.port, [ds])
    assert statuses != [0] and 0xA000 <= statuses[0] <= 0xCFFF  # a failure status
    assert_nothing_stored(listener, refused=1)
    whole = pacs_data.make_study(n_ct=1, n_pt=0, size=16)[0]
    assert pacs_net.send(listener.port, [whole]) == [0]
    assert listener.flush(30) and set(db_instances()) == {str(whole.SOPInstanceUID)}


# -- item 13: A-ASSOCIATE-RJ with the reason, not a dropped connection -----------------


@pytest.mark.parametrize("receive_processes", [0, 2])
def test_unknown_calling_ae_gets_an_a_associate_rj_not_a_dropped_connection(
    make_listener, receive_processes  # noqa: ANN001
) -> None:
    listener = make_listener(allowed_callers=[AllowedCaller("GOODAE", "127.0.0.1")],
                             receive_processes=receive_processes)
    for _ in range(5):  # the reject raced the socket shutdown: every try must see it
        assoc = pacs_net.request_association(listener.port, calling_ae="BADAE")
        assert assoc.is_rejected and not assoc.is_aborted
        rj = assoc.acceptor.primitive
        # PS3.8 §9.3.4: rejected-permanent, DICOM UL service-user, calling AE not recognized
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x03)
    deadline = time.monotonic() + 5  # receiver processes report their counts in batches
    while listener.stats.rejected_associations < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listener.stats.rejected_associations == 5
    assert pacs_net.request_association(listener.port, calling_ae="GOODAE").is_released


def test_wrong_called_ae_title_gets_an_a_associate_rj(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    for _ in range(3):
        assoc = pacs_net.request_association(listener.port, called_ae="SOMEONEELSE")
        assert assoc.is_rejected and not assoc.is_aborted
        rj = assoc.acceptor.primitive
        # rejected-permanent, DICOM UL service-user, called AE title not recognized
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x07)
    assert pacs_net.request_association(listener.port).is_released


# -- item 1: idle connections must not exhaust the association slots ------------------


def open_idle_connections(port: int, n: int) -> list[socket.socket]:
    """`n` TCP connections to the listener on loopback that never send a byte."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    except BaseException:
        close_all(socks)
        raise
    return socks


def closed_by_listener(s: socket.socket) -> bool:
    """True when the listener closed `s`: end-of-file, or a reset (it closed with bytes
    of ours unread)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


@pytest.mark.parametrize("receive_processes", [0, 2])
def test_listener_serves_a_sender_while_200_idle_connections_are_held_open(
    home, receive_processes  # noqa: ANN001
) -> None:
    settings = get_settings()
    listener = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool", port=0,
                               receive_processes=receive_processes)
    listener.start()
    idle: list[socket.socket] = []
    try:
        idle = open_idle_connections(listener.port, 200)
        time.sleep(0.5)  # let the listener take them all in
        study = pacs_data.make_study(n_ct=10, n_pt=10, size=16)
        start = time.monotonic()
        statuses = pacs_net.send(listener.port, study[:10]) + pacs_net.send(
            listener.port, study[10:])
        elapsed = time.monotonic() - start
        assert statuses == [0] * 20
        assert elapsed < 20, f"20 instances took {elapsed:.1f} s next to idle connections"
        assert listener.flush(60)
        assert set(db_instances()) == {str(ds.SOPInstanceUID) for ds in study}
    finally:
        close_all(idle)
        listener.stop(grace_s=1)


def test_idle_connections_are_closed_after_the_request_timeout(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=0.5)
    idle = open_idle_connections(listener.port, 20)
    try:
        start = time.monotonic()
        for s in idle:  # the listener closes each: the peer reads end-of-file
            s.settimeout(10)
            assert s.recv(1) == b""
        assert time.monotonic() - start < 5
        assert listener.pending_connections == 0
    finally:
        close_all(idle)
    assert pacs_net.echo_ok(listener.port)


def test_a_closed_idle_connection_frees_its_place_at_once(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=60)
    idle = open_idle_connections(listener.port, 30)
    try:
        deadline = time.monotonic() + 5
        while listener.pending_connections < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.pending_connections == 30
    finally:
        close_all(idle)
    deadline = time.monotonic() + 5
    while listener.pending_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listener.pending_connections == 0


def test_per_source_pending_limit_closes_the_oldest_idle_connection(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=60, max_pending_per_source=8)
    idle = open_idle_connections(listener.port, 12)
    try:
        for s in idle[:4]:  # the four oldest were closed to make room
            s.settimeout(5)
            assert s.recv(1) == b""
        for s in idle[4:]:
            s.settimeout(0.2)
            with pytest.raises(TimeoutError):
                s.recv(1)
        assert listener.pending_connections == 8
        assert pacs_net.echo_ok(listener.port)  # a real request still gets through
    finally:
        close_all(idle)


def test_per_source_association_limit_rejects_with_local_limit_exceeded(
    make_listener,  # noqa: ANN001
) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    listener = make_listener(max_associations_per_source=2)
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(Verification)
    held = [ae.associate("127.0.0.1", listener.port, ae_title="ONCOHYBRID") for _ in range(2)]
    try:
        assert all(a.is_established for a in held)
        third = pacs_net.request_association(listener.port)
        assert third.is_rejected
        rj = third.acceptor.primitive
        # PS3.8 §9.3.4: rejected-transient, service-provider (presentation), local limit
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02)
    finally:
        for a in held:
            a.release()
    time.sleep(0.3)
    assert pacs_net.request_association(listener.port).is_released


@pytest.mark.parametrize("comment", ["odd length!", "even length", "x" * 80])
def test_failure_response_with_details_equals_pynetdicom_encoding(comment) -> None:  # noqa: ANN001
    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    from oncohybrid.pacs.fastpath import encode_store_response

    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 3
    rsp.AffectedSOPClassUID = PositronEmissionTomographyImageStorage
    rsp.AffectedSOPInstanceUID = "1.2.3.45"
    rsp.Status = STATUS_DOES_NOT_MATCH
    rsp.OffendingElement = [0x00080018, 0x7FE00010]
    rsp.ErrorComment = comment[:64]
    msg = C_STORE_RSP()
    msg.primitive_to_message(rsp)
    assert encode_store_response(
        PositronEmissionTomographyImageStorage, 3, STATUS_DOES_NOT_MATCH, "1.2.3.45",
        error_comment=comment, offending=(0x00080018, 0x7FE00010),
    ) == encode(msg.command_set, True, True)


@pytest.mark.parametrize("args", [["--request-timeout", "0"], ["--max-pending-per-host", "0"],
                                  ["--max-associations-per-host", "-1"]])
def test_listen_refuses_invalid_connection_limits_with_exit_2(home, args) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from oncohybrid.cli.main import app

    result = CliRunner().invoke(app, ["listen", "--port", str(pacs_net.free_port()), *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and args[0] in result.output  # not "No such option"


def test_an_association_request_arriving_in_pieces_is_still_accepted(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=5)
    rq = pacs_net.capture_association_request()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
        for part in (rq[:3], rq[3:20], rq[20:]):  # a slow network: header, then body
            s.sendall(part)
            time.sleep(0.3)
        assert s.recv(1) == b"\x02"  # A-ASSOCIATE-AC (PS3.8 Table 9-11)


def test_a_request_that_never_completes_is_closed_at_the_timeout(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=0.5)
    rq = pacs_net.capture_association_request()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
        s.sendall(rq[:40])  # a trickling sender that stops
        start = time.monotonic()
        assert closed_by_listener(s)
        assert time.monotonic() - start < 5
    assert listener.stats.idle_connections_closed == 1
    assert pacs_net.echo_ok(listener.port)


def test_a_sender_that_gives_up_mid_request_is_dropped_at_once(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=60)
    rq = pacs_net.capture_association_request()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
        s.sendall(rq[:40])
        s.shutdown(socket.SHUT_WR)  # half-closed: the rest will never come
        start = time.monotonic()
        assert closed_by_listener(s)
        assert time.monotonic() - start < 5
    assert listener.pending_connections == 0


def test_a_connection_sending_no_dicom_pdu_is_closed_at_once(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(association_request_timeout_s=60)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
        assert closed_by_listener(s)
    assert listener.stats.idle_connections_closed == 1
    assert listener.pending_connections == 0


def test_a_rejected_caller_that_keeps_the_connection_open_is_disconnected(
    make_listener,  # noqa: ANN001
) -> None:
    listener = make_listener(allowed_callers=[AllowedCaller("GOODAE", "127.0.0.1")])
    rq = pacs_net.capture_association_request(calling_ae="BADAE")
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as s:
        s.sendall(rq)
        rj = s.recv(10)
        # A-ASSOCIATE-RJ PDU (PS3.8 Table 9-21): type 3, length 4, reserved, result,
        # source, reason: rejected-permanent, service-user, calling AE not recognized
        assert rj == b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x03"
        start = time.monotonic()
        assert closed_by_listener(s)  # we never close: the listener does, soon
        assert time.monotonic() - start < 6
    assert listener.stats.rejected_associations == 1


@pytest.mark.parametrize(
    ("sop_class", "modality", "refused"),
    [
        (PositronEmissionTomographyImageStorage, "CT", True),
        (CTImageStorage, "PT", True),
        (CTImageStorage, "MR", True),
        ("1.2.840.10008.5.1.4.1.1.130", "CT", True),  # Enhanced PET Image
        (PositronEmissionTomographyImageStorage, "PT", False),
        (PositronEmissionTomographyImageStorage, "NM", False),  # SPECT stored as PET
        ("1.2.840.10008.5.1.4.1.1.20", "PT", False),  # NM Image class, PT modality
        (CTImageStorage, "OT", False),  # not one of the four: left to ingest
        ("1.2.840.10008.5.1.4.1.1.7", "CT", False),  # Secondary Capture: any modality
    ],
)
def test_modality_that_contradicts_the_sop_class_is_refused(sop_class, modality, refused) -> None:  # noqa: ANN001
    from oncohybrid.pacs.integrity import ReceivedHeader
    from oncohybrid.pacs.receipt import check_received

    header = ReceivedHeader(sop_class, "1.2.3.4", modality, 2, 2, 16, 1, None, 8)
    outcome = check_received(sop_class, "1.2.3.4", "1.2.840.10008.1.2.1", header)
    assert (outcome is not None) is refused
    if refused:
        assert outcome.status == STATUS_DOES_NOT_MATCH and modality in outcome.comment


def test_gate_keeps_serving_after_a_hand_over_fails() -> None:
    from oncohybrid.pacs.gate import ConnectionGate

    handed: list[bytes] = []

    def hand_over(sock: socket.socket, _address: object) -> None:
        data = sock.recv(64)
        sock.close()
        if b"boom" in data:
            raise RuntimeError("a receiver that failed")
        handed.append(data)

    gate = ConnectionGate(hand_over, timeout_s=5)
    gate.start()
    server = socket.create_server(("127.0.0.1", 0))
    try:
        port = server.getsockname()[1]
        for payload in (b"\x01\x00\x00\x00\x00\x04boom", b"\x01\x00\x00\x00\x00\x02ok"):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn, address = server.accept()
            gate.add(conn, address)
            client.sendall(payload)  # a whole PDU: type 1, length, body
            time.sleep(0.2)
            client.close()
        deadline = time.monotonic() + 5
        while not handed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert handed == [b"\x01\x00\x00\x00\x00\x02ok"]
        assert gate.pending == 0
    finally:
        server.close()
        gate.stop()
