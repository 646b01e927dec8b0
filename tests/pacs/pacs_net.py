"""Network helpers of the PACS tests: a pynetdicom sender and a deliberately broken one."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import Verification


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sender_ae(calling_ae: str = "SENDER") -> AE:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    return ae


def send(port: int, datasets: list[Dataset], calling_ae: str = "SENDER") -> list[int]:
    """C-STORE on one association; the status of each dataset (-1: no response)."""
    ae = sender_ae(calling_ae)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID")
    assert assoc.is_established, "association refused"
    statuses = []
    for ds in datasets:
        status = assoc.send_c_store(ds)
        statuses.append(int(status.Status) if status and "Status" in status else -1)
    assoc.release()
    return statuses


def echo_ok(port: int, calling_ae: str = "SENDER") -> bool:
    ae = sender_ae(calling_ae)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return status is not None and int(status.Status) == 0


def _pdv(context_id: int, control: int, data: bytes) -> bytes:
    # PS3.8 §9.3.5.1: item length, presentation context ID, message control header
    return struct.pack(">IBB", len(data) + 2, context_id, control) + data


def _p_data_tf(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BBI", 0x04, 0x00, len(body)) + body


def _store_command(ds: Dataset) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = ds.SOPClassUID
    cmd.CommandField = 0x0001  # C-STORE-RQ
    cmd.MessageID = 7
    cmd.Priority = 0
    cmd.CommandDataSetType = 0x0000
    cmd.AffectedSOPInstanceUID = ds.SOPInstanceUID
    body = encode(cmd, True, True)
    group_length = Dataset()
    group_length.CommandGroupLength = len(body)
    return encode(group_length, True, True) + body


def abort_mid_dataset(port: int, ds: Dataset, fraction: float = 0.5) -> None:
    """Open an association, send a C-STORE command and part of its dataset, then abort."""
    ae = sender_ae("BROKEN")
    ae.add_requested_context(ds.SOPClassUID, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID")
    assert assoc.is_established
    cx = assoc.accepted_contexts[0]
    data = encode(ds, False, True)
    part = data[: int(len(data) * fraction)]
    sock = assoc.dul.socket
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x03, _store_command(ds))))  # command, last
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x00, part)))  # dataset, NOT last
    assoc.abort()


def send_truncated(port: int, ds: Dataset, keep_bytes: int) -> int:
    """A formally complete C-STORE whose dataset stops after `keep_bytes`; the status."""
    import time

    ae = sender_ae("TRUNCATE")
    ae.add_requested_context(ds.SOPClassUID, "1.2.840.10008.1.2.1")
    replies: list[int] = []

    from pynetdicom import evt

    def _on_dimse_recv(event) -> None:  # noqa: ANN001
        status = getattr(event.message, "command_set", None)
        if status is not None and "Status" in status:
            replies.append(int(status.Status))

    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID",
                         evt_handlers=[(evt.EVT_DIMSE_RECV, _on_dimse_recv)])
    assert assoc.is_established
    cx = assoc.accepted_contexts[0]
    data = encode(ds, False, True)[:keep_bytes]
    sock = assoc.dul.socket
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x03, _store_command(ds))))
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x02, data)))  # dataset, last fragment
    deadline = time.monotonic() + 10
    while not replies and time.monotonic() < deadline:
        time.sleep(0.01)
    assoc.release()
    return replies[0] if replies else -1


def start_listener_process(
    home: object, port: int, *, extra_env: dict[str, str] | None = None, timeout_s: float = 30
) -> subprocess.Popen:
    """``oncohybrid listen`` as a subprocess on ``port``, returned once it answers C-ECHO."""
    exe = Path(sys.executable).with_name("oncohybrid")
    proc = subprocess.Popen(
        [str(exe), "listen", "--port", str(port), "--quiet-period", "5",
         "--shutdown-grace", "0.3"],
        env={**os.environ, "ONCOHYBRID_HOME": str(home), **(extra_env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    try:
        while not echo_ok(port):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "listener did not start"
            time.sleep(0.2)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def send_recording_acks(port: int, study: list[Dataset], acked: list[str]) -> None:
    """C-STORE ``study`` in one association, appending each acknowledged SOP Instance UID;
    stops quietly when the listener goes away mid-association."""
    ae = sender_ae()
    ae.dimse_timeout = 3
    ae.add_requested_context(study[0].SOPClassUID, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID")
    for ds in study:
        if not assoc.is_established:
            break
        status = assoc.send_c_store(ds)
        if status is not None and int(status.get("Status", -1)) == 0:
            acked.append(str(ds.SOPInstanceUID))
    if assoc.is_established:
        assoc.release()


def store_raw(
    port: int,
    ds: Dataset,
    *,
    command_class: str | None = None,
    command_instance: str | None = None,
    calling_ae: str = "SENDER",
) -> tuple[int, str]:
    """One C-STORE whose command names `command_class`/`command_instance` (default: the
    data set's own), the data set sent as encoded; (status, error comment) of the reply."""
    from pynetdicom import evt

    sop_class = command_class or str(ds.SOPClassUID)
    ae = sender_ae(calling_ae)
    ae.add_requested_context(sop_class, "1.2.840.10008.1.2.1")
    replies: list[tuple[int, str]] = []

    def _on_dimse_recv(event) -> None:  # noqa: ANN001
        status = getattr(event.message, "command_set", None)
        if status is not None and "Status" in status:
            replies.append((int(status.Status), str(status.get("ErrorComment", ""))))

    assoc = ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID",
                         evt_handlers=[(evt.EVT_DIMSE_RECV, _on_dimse_recv)])
    assert assoc.is_established
    cx = assoc.accepted_contexts[0]
    header = Dataset()
    header.SOPClassUID = sop_class
    header.SOPInstanceUID = command_instance or str(ds.SOPInstanceUID)
    data = encode(ds, False, True)
    sock = assoc.dul.socket
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x03, _store_command(header))))
    sock.send(_p_data_tf(_pdv(cx.context_id, 0x02, data)))  # dataset, last fragment
    deadline = time.monotonic() + 10
    while not replies and time.monotonic() < deadline:
        time.sleep(0.01)
    assoc.release()
    return replies[0] if replies else (-1, "")


def request_association(
    port: int, *, calling_ae: str = "SENDER", called_ae: str = "ONCOHYBRID"
) -> object:
    """A pynetdicom association request (Verification); the Association, released if
    it was established, so its ``is_rejected`` / ``acceptor.primitive`` can be read."""
    ae = sender_ae(calling_ae)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if assoc.is_established:
        assoc.release()
    return assoc


def capture_association_request(calling_ae: str = "SENDER") -> bytes:
    """The A-ASSOCIATE-RQ PDU pynetdicom sends for a Verification association, as bytes
    (caught by a plain loopback socket that then closes the connection)."""
    import threading

    from pynetdicom import AE

    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])
    caught: list[bytes] = []

    def _grab() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while len(data) < 6 or len(data) < 6 + struct.unpack(">I", data[2:6])[0]:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            caught.append(data)

    grabber = threading.Thread(target=_grab)
    grabber.start()
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = 2
    ae.add_requested_context(Verification)
    ae.associate("127.0.0.1", port, ae_title="ONCOHYBRID")  # ends when we close
    grabber.join(timeout=10)
    server.close()
    assert caught and caught[0][0] == 0x01, "no A-ASSOCIATE-RQ caught"
    return caught[0]
