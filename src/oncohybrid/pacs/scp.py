"""Storage SCP: receive instances over DICOM and ingest them like ``oncohybrid ingest``.

Implements the Storage Service Class (PS3.4 Annex B) for every storage SOP class
pynetdicom knows, in every transfer syntax (compressed ones are stored as received,
never decoded), plus Verification (PS3.4 Annex A).

Receive path, chosen for throughput and for never losing an acknowledged instance:

1. The C-STORE handler takes the encoded dataset exactly as the sender wrote it
   (``Event.encoded_dataset``), checks that it is structurally whole
   (:mod:`oncohybrid.pacs.integrity`), writes it with its file meta (PS3.10 §7.1,
   encoded directly by :func:`file_meta_header`) to a spool folder under a temporary
   name and renames it into place (atomic on POSIX), and only then answers *Success*
   (0000). Pixel data is never decoded.
2. Indexing threads take the spooled files in batches and hand them to
   ``Ingestor.ingest_files_batch(paths, source="network", link=True)`` - the
   folder-ingest code path (headers only, one transaction and one sync per batch)
   with the same duplicate rules - then delete the spool files. An ingestor without that method gets
   one ``ingest_dataset`` call per file.
3. On start, spool files left by an earlier process (acknowledged but not yet
   indexed when it died) are indexed first. On stop (SIGTERM), the listener stops
   accepting associations, lets running ones finish for a grace period, then drains
   the spool before it returns.

Per-instance CPU is what limits a Python receiver, so: on an established association a
plain C-STORE-RQ is received, spooled and answered by :mod:`oncohybrid.pacs.fastpath`
(everything else stays with pynetdicom); pynetdicom's polling threads are made to wait
for work (:class:`_IdleWaitQueue`, :func:`_waiting_reactor`); other C-STORE responses
are encoded directly (:func:`encode_store_response`); and with ``receive_processes=N``
(or ``ONCOHYBRID_LISTEN_PROCESSES=N``) the listener process only accepts connections
and indexes (at a lower CPU priority), handing each association (its socket) to one of
N receiver processes that spool and acknowledge and report spooled files back in
batches. Spool files are hard-linked into the store, not copied.
``ONCOHYBRID_SCP_POLL=1`` switches the pynetdicom hooks off.

A connection becomes an association only once its A-ASSOCIATE-RQ has arrived
(:class:`oncohybrid.pacs.gate.ConnectionGate`: a short request timeout and per-address
limits on waiting connections), so idle connections hold no association slot; one
address holds at most ``max_associations_per_source`` associations.

At negotiation a request that names another called AE title than ours is rejected
(A-ASSOCIATE-RJ rejected-permanent, service-user, reason 7 "called AE title not
recognized", PS3.8 §9.3.4), and so is a caller not on the allow-list of calling AE
titles with their hosts (from nodes configured with ``--accept-store``; reason 3
"calling AE title not recognized"); an empty allow-list accepts any caller.

At receipt, a data set that is cut short, is not the instance or of the SOP class the
command announces, or whose native Pixel Data is short is refused before it is written
(:mod:`oncohybrid.pacs.receipt`).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import multiprocessing
import os
import queue
import select
import selectors
import signal
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import reduction
from pathlib import Path
from typing import Any, Protocol, cast

import pynetdicom
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from oncohybrid.errors import OncohybridError, PacsError
from oncohybrid.pacs.fastpath import DirectStorePath, StoreStatus, encode_store_response
from oncohybrid.pacs.gate import ConnectionGate
from oncohybrid.pacs.hooks import StudyCompletionTracker, StudyHook
from oncohybrid.pacs.integrity import IncompleteDataset, read_header
from oncohybrid.pacs.node import validate_ae_title, validate_port
from oncohybrid.pacs.receipt import check_received

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1
STATUS_CANNOT_UNDERSTAND = 0xC210  # PS3.4 Table B.2-1 (Cxxx: error, cannot understand)

# pynetdicom polls its sockets and sleeps 1 ms between idle loops; with one C-STORE
# in flight per association that sleep dominates small-instance latency.
_DUL_LOOP_DELAY_S = 0.0001
MAX_PDU_BYTES = 1_048_576
# pynetdicom versions whose reactor loops and C-STORE-RSP encoding the hooks reproduce
_HOOKED_PYNETDICOM = ("3.0.",)
# the longest an idle acceptor thread waits before it re-checks its timers and flags
_IDLE_WAIT_S = 0.02
#: Spooled files indexed per database transaction, and how long an indexer waits for a
#: batch to fill once its first file is there.
INDEX_BATCH = 250
INDEX_LINGER_S = 0.05
# with receiver processes, indexing yields the CPU to them: a sender waits for the
# acknowledgement, not for the index, and the spool keeps what is not indexed yet
INDEX_NICENESS = 10
REPORT_INTERVAL_S = 0.005  # receiver processes report spooled files this often
# how long a rejected caller may take to close the connection after the A-ASSOCIATE-RJ
REJECT_LINGER_S = 2.0


class DatasetIngestor(Protocol):
    """What the listener needs from ``oncohybrid.services.ingest.Ingestor``."""

    def ingest_dataset(self, ds: Any, *, source: str = ...) -> Any: ...

    def close(self) -> None: ...


class BatchIngestor(DatasetIngestor, Protocol):
    """An ingestor that also indexes spooled files in batches (``Ingestor`` is one)."""

    def ingest_files_batch(
        self, paths: Sequence[Any], *, source: str = ..., link: bool = ...
    ) -> list[Any]: ...


@dataclass(frozen=True)
class AllowedCaller:
    """A calling AE title that may open associations, and the host it must come from."""

    ae_title: str
    host: str

    def addresses(self) -> set[str]:
        try:
            infos = socket.getaddrinfo(self.host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            log.warning("allow-list host %s does not resolve; its AE cannot connect", self.host)
            return set()
        return {str(info[4][0]) for info in infos}


@dataclass
class ListenerStats:
    received: int = 0
    rejected_associations: int = 0
    refused_instances: int = 0
    idle_connections_closed: int = 0
    indexed_new: int = 0
    indexed_duplicate: int = 0
    indexed_skipped: int = 0
    index_failed: int = 0
    recovered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class _NoDelayServer(ThreadedAssociationServer):
    """Association server that disables Nagle's algorithm on accepted sockets.

    Small DIMSE messages otherwise wait for delayed ACKs (tens of ms per C-STORE).
    With a :class:`ConnectionGate` in `gate`, an accepted connection becomes an
    association only once its A-ASSOCIATE-RQ has arrived.
    """

    request_queue_size = 128  # socketserver's 5 drops connections of a burst
    gate: ConnectionGate | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.gate is not None:
            self.gate.add(request, client_address)
        else:
            super().process_request(request, client_address)

    def start_association(self, request: Any, client_address: Any) -> None:
        """Serve an accepted connection as an association (the gate's hand-over)."""
        super().process_request(request, client_address)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def shutdown(self) -> None:
        # pynetdicom's shutdown also unregisters from AE._servers, which make_server
        # never registered this server with.
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def tune_association(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler for requestors and acceptors: no Nagle, short poll delay."""
    assoc = event.assoc
    with contextlib.suppress(AttributeError, OSError):
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(assoc.dul, "_run_loop_delay"):
        assoc.dul._run_loop_delay = _DUL_LOOP_DELAY_S


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that wakes the DUL thread whenever something is put on it."""

    def __init__(self, wake: socket.socket) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
            self._wake.send(b"\x00")


class _IdleWaitQueue(queue.Queue):  # type: ignore[type-arg]
    """The DUL event queue of an acceptor: an empty poll first waits for work.

    pynetdicom's DUL thread polls: when its event queue is empty it sleeps
    ``_run_loop_delay`` and checks the socket and the outgoing-primitive queue again.
    Short delays burn CPU (three associations poll ~10,000 times a second and hold the
    GIL the receiving threads need), long ones add latency to every C-STORE. Here the
    empty poll blocks in ``select`` until the peer sends data or the association
    queues an outgoing primitive (``_WakingQueue``), at most ``_IDLE_WAIT_S``.
    pynetdicom offers no event-driven mode, hence this hook.
    """

    def __init__(self, dul: Any, wake_recv: socket.socket) -> None:
        super().__init__()
        self._dul = dul
        self._wake_recv = wake_recv

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block and not self.qsize() and not self._dul.to_provider_queue.qsize():
            self._wait_for_work()
        return super().get(block, timeout)

    def _wait_for_work(self) -> None:
        assoc_sock = self._dul.socket
        raw = getattr(assoc_sock, "socket", None)
        if raw is None or self._dul._kill_thread:
            time.sleep(_DUL_LOOP_DELAY_S)
            return
        try:
            ready, _, _ = select.select([raw, self._wake_recv], [], [], _IDLE_WAIT_S)
            if self._wake_recv in ready:
                self._wake_recv.recv(4096)
        except (OSError, ValueError):  # closed meanwhile: the DUL notices on its next pass
            time.sleep(_DUL_LOOP_DELAY_S)


class _SignalQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that sets a :class:`threading.Event` whenever something is put on it."""

    def __init__(self, signal_: threading.Event) -> None:
        super().__init__()
        self._signal = signal_

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._signal.set()


def _waiting_reactor(assoc: Any, wake: threading.Event) -> Callable[[], None]:
    """pynetdicom's acceptor reactor loop (``Association._run_reactor``, 3.0), waiting.

    The original sleeps 1 ms before every look at its queues; this one waits until the
    DUL thread queues a DIMSE message or an A-RELEASE/A-ABORT (``_SignalQueue``), at
    most ``_IDLE_WAIT_S``, and otherwise does exactly the same checks in the same order.
    """
    dimse, dul, acse = assoc.dimse, assoc.dul, assoc.acse
    pyn_log = logging.getLogger("pynetdicom.association")

    def run() -> None:
        assoc._is_paused = False
        while not assoc._kill:
            if dimse.msg_queue.empty() and dul.to_user_queue.empty():
                wake.wait(_IDLE_WAIT_S)
            wake.clear()
            assoc._is_paused = True
            assoc._reactor_checkpoint.wait()
            assoc._is_paused = False
            context_id, msg = dimse.get_msg(block=False)
            if msg:
                assoc._serve_request(msg, context_id)
            if assoc.is_established and acse.is_release_requested():
                acse.send_release(is_response=True)
                pyn_log.info("Association Released")
                assoc.is_released = True
                assoc.is_established = False
                evt.trigger(assoc, evt.EVT_RELEASED, {})
                assoc.kill()
                return
            if acse.is_aborted():
                pyn_log.info("Association Aborted")
                dul.receive_pdu(wait=False)
                assoc.is_aborted = True
                assoc.is_established = False
                evt.trigger(assoc, evt.EVT_ABORTED, {})
                assoc.kill()
                return
            if not dul.is_alive():
                assoc.kill()
                return
            if dul.idle_timer_expired():
                pyn_log.error("Network timeout reached")
                if assoc.network_timeout_response == "A-RELEASE":
                    assoc._is_paused = True
                    assoc._reactor_checkpoint.wait()
                    assoc.release()
                    assoc._is_paused = False
                else:
                    assoc.abort()
                assoc.kill()
                return

    return run


_REACTOR_ATTRIBUTES = (
    "_kill", "_reactor_checkpoint", "_is_paused", "_serve_request", "kill",
    "network_timeout_response", "_run_reactor",
)


def _make_event_driven(assoc: Any) -> None:
    """Let an acceptor's DUL thread sleep until there is work (see ``_IdleWaitQueue``)."""
    dul = assoc.dul
    if dul.is_alive() or not hasattr(dul, "to_provider_queue") or not hasattr(dul, "event_queue"):
        return  # not the pynetdicom internals this was written for: keep polling
    wake_send, wake_recv = socket.socketpair()
    wake_send.setblocking(False)
    wake_recv.setblocking(False)
    events = _IdleWaitQueue(dul, wake_recv)
    while not dul.event_queue.empty():  # Evt5 (transport connection indication) is there
        events.put(dul.event_queue.get_nowait())
    outgoing = _WakingQueue(wake_send)
    while not dul.to_provider_queue.empty():
        outgoing.put(dul.to_provider_queue.get_nowait())
    dul.event_queue, dul.to_provider_queue = events, outgoing
    if all(hasattr(assoc, a) for a in _REACTOR_ATTRIBUTES) and hasattr(assoc.dimse, "msg_queue"):
        wake = threading.Event()
        for owner, name in ((assoc.dimse, "msg_queue"), (dul, "to_user_queue")):
            old_queue, new_queue = getattr(owner, name), _SignalQueue(wake)
            while not old_queue.empty():
                new_queue.put(old_queue.get_nowait())
            setattr(owner, name, new_queue)
        assoc._run_reactor = _waiting_reactor(assoc, wake)
    dul._oncohybrid_wake = (wake_send, wake_recv)
    dul._run_loop_delay = 0  # the wait happens in the event queue


def _fast_store_responses(assoc: Any) -> None:
    """Send plain C-STORE-RSPs (no error comment/offending element) with one P-DATA.

    Everything else, and any response that does not fit the peer's maximum PDU, goes
    through pynetdicom's own ``send_msg``. The fast path does not trigger
    EVT_DIMSE_SENT, which the listener does not use.
    """
    dimse = assoc.dimse
    original = dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        if (
            type(primitive) is C_STORE
            and primitive.MessageIDBeingRespondedTo is not None
            and primitive.Status is not None
            and primitive.ErrorComment is None
            and primitive.OffendingElement is None
            and primitive.AffectedSOPClassUID
            and primitive.AffectedSOPInstanceUID
        ):
            try:
                command = encode_store_response(
                    str(primitive.AffectedSOPClassUID),
                    int(primitive.MessageIDBeingRespondedTo),
                    int(primitive.Status),
                    str(primitive.AffectedSOPInstanceUID),
                )
            except (UnicodeEncodeError, struct.error):
                command = b""
            max_pdu = dimse.maximum_pdu_size
            if command and (not max_pdu or len(command) + 6 <= max_pdu):
                pdata = P_DATA()
                # message control header 0x03: command, last fragment (PS3.8 Annex E.2)
                pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
                dimse.dul.send_pdu(pdata)
                return
        original(primitive, context_id)

    dimse.send_msg = send_msg


def _close_wake(event: evt.Event) -> None:
    for sock in getattr(event.assoc.dul, "_oncohybrid_wake", ()):
        sock.close()


def _meta_element(elem: int, vr: bytes, value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")
    if len(raw) % 2:
        raw += pad
    return struct.pack("<HH2sH", 0x0002, elem, vr, len(raw)) + raw


def file_meta_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, ``DICM`` prefix and File Meta Information of a received instance.

    PS3.10 §7.1 (Table 7.1-1), explicit VR little endian (PS3.5 §7.1.2): the same
    elements and values pynetdicom's ``Event.file_meta`` carries, encoded directly -
    building and encoding them as a pydicom dataset cost as much CPU as the rest of
    the C-STORE handler.
    """
    body = b"".join((
        struct.pack("<HH2s2xI", 0x0002, 0x0001, b"OB", 2), b"\x00\x01",
        _meta_element(0x0002, b"UI", sop_class_uid, b"\x00"),
        _meta_element(0x0003, b"UI", sop_instance_uid, b"\x00"),
        _meta_element(0x0010, b"UI", transfer_syntax_uid, b"\x00"),
        _meta_element(0x0012, b"UI", PYNETDICOM_IMPLEMENTATION_UID, b"\x00"),
        _meta_element(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION, b" "),
    ))
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body))
    return b"".join((b"\x00" * 128, b"DICM", group_length, body))


def _write_all(fd: int, *chunks: bytes) -> None:
    """Write `chunks` to `fd` with one ``writev`` in the usual case (short writes retried)."""
    views = [memoryview(c) for c in chunks if c]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def storage_contexts() -> list[Any]:
    """Every storage SOP class in every transfer syntax, plus Verification."""
    return [*AllStoragePresentationContexts]


class _CheapCopyContexts(list):  # type: ignore[type-arg]
    """The server's presentation contexts, deep-copied cheaply for each association.

    pynetdicom deep-copies every supported context (here ~150 SOP classes x 45 transfer
    syntaxes) when it accepts a connection - measured at 15% of a receiver's CPU in the
    benchmark. The contexts hold only immutable values (UIDs, numbers) and the list of
    transfer syntaxes, so copying the objects and that list is an equivalent deep copy.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copies = []
        for cx in self:
            new = copy.copy(cx)
            for name, value in vars(cx).items():
                if isinstance(value, list):
                    setattr(new, name, list(value))
            copies.append(new)
        return copies


class _Receiver:
    """The association side of the SCP: AE, allow-list and C-STORE → spool.

    One runs in the listener's process, or one in each receiver process.
    """

    def __init__(
        self,
        *,
        ae_title: str,
        spool_dir: Path,
        allowed: dict[str, set[str]],
        max_associations: int,
        stats: Any,
        on_spooled: Callable[[Path, str], None],
        name_tag: str = "",
        event_driven: bool = True,
        max_associations_per_source: int = 0,
        check_called_ae: bool = True,
    ) -> None:
        self.ae_title = ae_title
        self.spool_dir = spool_dir
        self.allowed = allowed
        self.max_associations = max_associations
        self.stats = stats
        self.on_spooled = on_spooled
        self.name_tag = name_tag
        self.event_driven = event_driven
        self.max_associations_per_source = max_associations_per_source
        self.check_called_ae = check_called_ae
        self.fast_responses = event_driven  # both off with ONCOHYBRID_SCP_POLL=1
        self._seq = itertools.count()
        self._spool_prefix = os.path.join(os.fspath(spool_dir), "")

    def make_server(
        self, address: tuple[str, int], server_class: type[_NoDelayServer] = _NoDelayServer
    ) -> _NoDelayServer:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = MAX_PDU_BYTES
        ae.maximum_associations = self.max_associations
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        for cx in storage_contexts():
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_CONN_CLOSE, _close_wake),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_STORE, self._on_store),
        ]
        server = ae.make_server(address, evt_handlers=handlers, server_class=server_class)
        server.contexts = _CheapCopyContexts(server.contexts)
        return cast(_NoDelayServer, server)

    def _on_conn_open(self, event: evt.Event) -> None:
        tune_association(event)
        if self.event_driven:
            _make_event_driven(event.assoc)
        if self.fast_responses:
            _fast_store_responses(event.assoc)
            DirectStorePath.install(event.assoc, self.spool)

    def _on_requested(self, event: evt.Event) -> None:
        """EVT_REQUESTED: accept or reject the A-ASSOCIATE-RQ (PS3.8 §9.3.4, Table 9-21).

        In order: the called AE title must be ours (rejected-permanent, service-user,
        reason 7), the calling AE title and host on the allow-list when there is one
        (reason 3), and the caller's address below its share of the associations
        (rejected-transient, service-provider presentation, reason 2 "local limit
        exceeded").
        """
        assoc = event.assoc
        requestor = assoc.requestor
        # the A-ASSOCIATE-RQ itself: requestor.ae_title is filled in only after negotiation
        primitive = requestor.primitive
        calling = str(getattr(primitive, "calling_ae_title", "") or requestor.ae_title).strip()
        called = str(getattr(primitive, "called_ae_title", "") or "").strip()
        address = str(requestor.address)
        if self.check_called_ae and called != self.ae_title:
            log.warning("rejected association from AE %r at %s: it called AE %r, we are %r",
                        calling, address, called, self.ae_title)
            self._reject(assoc, 0x01, 0x01, 0x07)
        elif self.allowed and address not in self.allowed.get(calling, set()):
            log.warning("rejected association from AE %r at %s: not on the allow-list",
                        calling, address)
            self._reject(assoc, 0x01, 0x01, 0x03)
        elif self.max_associations_per_source and self._associations_from(
            assoc, address
        ) > self.max_associations_per_source:
            log.warning("rejected association from AE %r at %s: %d associations from "
                        "that address already", calling, address,
                        self.max_associations_per_source)
            self._reject(assoc, 0x02, 0x03, 0x02)

    @staticmethod
    def _associations_from(assoc: Any, address: str) -> int:
        """Associations of this AE with `address` (this request included).

        Rejected ones still waiting for the caller to close count too: they hold a
        slot of the AE's maximum until then.
        """
        return sum(
            1 for other in assoc.ae.active_associations
            if other.is_acceptor and str(other.requestor.address) == address
        )

    def _reject(self, assoc: Any, result: int, source: int, reason: int) -> None:
        """Send an A-ASSOCIATE-RJ and wait until it is on the wire.

        pynetdicom closes the socket as soon as the EVT_REQUESTED handler returns
        with the association rejected; the reject PDU, queued for the DUL thread, was
        often not sent yet, and the caller saw a dropped connection. ``kill`` waits
        for the DUL to send it and reach Sta1 (the peer closes, PS3.8 §9.2 AR-5, or
        the ARTIM timer, shortened here to ``REJECT_LINGER_S``, expires - a caller that
        keeps the connection open holds a slot no longer than that).
        """
        self.stats.add("rejected_associations")
        with contextlib.suppress(AttributeError):
            assoc.dul.artim_timer.timeout = REJECT_LINGER_S
        assoc.acse.send_reject(result, source, reason)
        assoc.kill()

    def _on_store(self, event: evt.Event) -> int | Dataset:
        """EVT_C_STORE handler: requests that pynetdicom itself received."""
        request = event.request
        # the dataset exactly as the sender encoded it, taken once (no decoding)
        reply = self.spool(
            str(request.AffectedSOPClassUID),
            str(request.AffectedSOPInstanceUID),
            str(event.context.transfer_syntax),
            event.encoded_dataset(include_meta=False),
            event.assoc.requestor.ae_title or "",
        )
        if isinstance(reply, int):
            return reply
        status = Dataset()  # PS3.7 C.4.2: the failure's details in the response
        status.Status = reply.status
        if reply.offending:
            status.OffendingElement = list(reply.offending)
        if reply.comment:
            status.ErrorComment = reply.comment[:64]
        return status

    def spool(
        self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str,
        body: bytes, calling_ae: str,
    ) -> int | StoreStatus:
        """Write one received instance to the spool; the C-STORE status to answer.

        PS3.4 §B.2.3: Success only once the instance is safely on disk, so an
        acknowledged instance survives a crash (it is indexed at the next start).
        Refused before anything is written: a data set cut short (Cxxx), one that is
        not the instance the command announces or not of its SOP class (A900), native
        Pixel Data shorter than its image attributes imply (Cxxx) - see
        :mod:`oncohybrid.pacs.receipt`.
        """
        try:
            header = read_header(body, transfer_syntax_uid)
        except IncompleteDataset as exc:
            self.stats.add("refused_instances")
            log.warning("refused an incomplete dataset from %s: %s", calling_ae, exc)
            return STATUS_CANNOT_UNDERSTAND
        refusal = check_received(sop_class_uid, sop_instance_uid, transfer_syntax_uid, header)
        if refusal is not None:
            self.stats.add("refused_instances")
            log.warning("refused a C-STORE from %s with status 0x%04X: %s", calling_ae,
                        refusal.status, refusal.detail or refusal.comment)
            return refusal
        # plain strings, not Paths: this runs once per received instance
        base = f"{self._spool_prefix}{time.time_ns():020d}{self.name_tag}-{next(self._seq):08d}"
        final, partial = base + ".dcm", base + ".part"
        try:
            # PS3.10 §7.1: preamble, prefix and file meta, then the dataset as received
            head = file_meta_header(sop_class_uid, sop_instance_uid, transfer_syntax_uid)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, head, body)
            finally:
                os.close(fd)
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            log.error("cannot spool a received instance: %s", exc)
            return STATUS_OUT_OF_RESOURCES
        self.stats.add("received")
        self.on_spooled(Path(final), calling_ae)
        return STATUS_SUCCESS


class _DetachedServer(_NoDelayServer):
    """An association server without a socket of its own (receiver processes).

    The listener process accepts connections and hands each one to a receiver process,
    which serves it with :meth:`process_request` like an accepted connection.
    """

    def server_bind(self) -> None:
        pass

    def server_activate(self) -> None:
        pass


def _finish_associations(server: _NoDelayServer, grace_s: float) -> None:
    """Let open associations finish for `grace_s`, then abort and join them."""
    deadline = time.monotonic() + grace_s
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    remaining = server.active_associations
    for assoc in remaining:
        assoc.abort()
    for assoc in remaining:  # a C-STORE handler may still be spooling
        assoc.join(timeout=10)


def _lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value (Linux schedules threads individually)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class _ParentReport:
    """What a receiver process tells the listener, sent in batches.

    One pipe message per spooled instance (and one per statistic) cost a receiver
    process about a sixth of its CPU; here they are collected and sent every
    ``REPORT_INTERVAL_S`` by a thread of their own. Nothing depends on the delay: the
    instance is already on disk, and the listener indexes whatever is left in the
    spool when it stops or starts again.
    """

    def __init__(self, events: Any) -> None:
        self._events = events
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stored: list[tuple[str, str]] = []
        self._stats: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-to-listener",
                                        daemon=True)
        self._thread.start()

    def add(self, name: str, n: int = 1) -> None:  # the ListenerStats interface
        with self._lock:
            self._stats[name] = self._stats.get(name, 0) + n

    def stored(self, path: Path, calling_ae: str) -> None:
        with self._lock:
            self._stored.append((path.name, calling_ae))

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self._events.send(msg)

    def flush(self) -> None:
        with self._lock:
            stored, self._stored = self._stored, []
            stats, self._stats = self._stats, {}
        if stored:
            self.send(("stored", stored))
        if stats:
            self.send(("stats", stats))

    def _run(self) -> None:
        while not self._stop.wait(REPORT_INTERVAL_S):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def _receiver_process(config: dict[str, Any], control: Any, events: Any) -> None:
    """Main of a receiver process: serve the connections the listener hands over.

    Messages to the listener (``events``): ``("ready",)``, ``("stored", [(file name,
    calling AE), ...])`` for spooled (acknowledged) instances, ``("stats", {name: n})``,
    and ``("bye",)`` at the end. From the listener (``control``): ``("assoc",
    address)`` followed by the connection's file descriptor, or ``("stop", grace_s)``.
    """
    # the listener process decides when to stop (SIGTERM may reach the whole group)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    report = _ParentReport(events)
    receiver = _Receiver(
        ae_title=config["ae_title"],
        spool_dir=Path(config["spool_dir"]),
        allowed=config["allowed"],
        max_associations=config["max_associations"],
        stats=report,
        on_spooled=report.stored,
        name_tag=f"-r{config['index']}",
        event_driven=config["event_driven"],
        max_associations_per_source=config["max_associations_per_source"],
        check_called_ae=config["check_called_ae"],
    )
    server = receiver.make_server((config["host"], config["port"]), _DetachedServer)
    report.send(("ready",))
    grace_s = 0.0
    try:
        while True:
            msg = control.recv()
            if msg[0] == "assoc":
                conn = socket.socket(fileno=reduction.recv_handle(control))
                server.process_request(conn, tuple(msg[1]))
            elif msg[0] == "stop":
                grace_s = float(msg[1])
                break
    except (EOFError, OSError):
        pass  # the listener process is gone: what was spooled is recovered at its next start
    _finish_associations(server, grace_s)
    server.server_close()
    report.close()
    report.send(("bye",))


@dataclass
class _ReceiverProcess:
    process: Any
    control: Any
    events: Any
    ready: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None


def _env_int(name: str) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else 0
    except ValueError:
        raise PacsError(f"environment variable {name}={value!r}: expected a number") from None


def default_receive_processes() -> int:
    """``oncohybrid listen``'s receiver processes: $ONCOHYBRID_LISTEN_PROCESSES, else 2
    where there are 2 or more CPUs (reception is CPU-bound and a Python process gets one
    core), else 0 (receive in the listener process)."""
    if os.environ.get("ONCOHYBRID_LISTEN_PROCESSES", "").strip():
        return _env_int("ONCOHYBRID_LISTEN_PROCESSES")
    return 2 if (os.cpu_count() or 1) >= 2 else 0


class StorageListener:
    """A running Storage SCP that spools, indexes and tracks study completion.

    >>> listener = StorageListener(ingestor, spool_dir=tmp / "spool", port=0)  # doctest: +SKIP
    >>> listener.start(); listener.port                                         # doctest: +SKIP
    """

    def __init__(
        self,
        ingestor: DatasetIngestor,
        *,
        spool_dir: Path,
        ae_title: str = "ONCOHYBRID",
        host: str = "127.0.0.1",
        port: int = 11112,
        allowed_callers: Sequence[AllowedCaller] = (),
        quiet_period_s: float = 30.0,
        hooks: Iterable[StudyHook] = (),
        index_workers: int = 2,
        max_associations: int = 32,
        close_ingestor: bool = True,
        receive_processes: int | None = None,
        association_request_timeout_s: float = 5.0,
        max_pending_per_source: int = 32,
        max_associations_per_source: int = 16,
        check_called_ae: bool = True,
    ) -> None:
        self.ingestor = ingestor
        self.ae_title = validate_ae_title(ae_title, "listener AE title")
        self.host = host
        self.requested_port = validate_port(port) if port else 0
        self.allowed_callers = list(allowed_callers)
        self.spool_dir = Path(spool_dir)
        self.failed_dir = self.spool_dir / "failed"
        # two indexers overlap one batch's file copies and fsyncs (which release the
        # GIL) with another's transaction; the Ingestor serialises its transactions
        self.index_workers = max(1, index_workers)
        self.max_associations = max_associations
        if association_request_timeout_s <= 0 or max_pending_per_source < 1:
            raise PacsError("listener: the association request timeout and the pending "
                            "connections per address must be positive")
        # a connection waits this long for its A-ASSOCIATE-RQ, outside the association
        # slots (pacs.gate); one address gets this many waiting connections/associations
        self.association_request_timeout_s = association_request_timeout_s
        self.max_pending_per_source = max_pending_per_source
        self.max_associations_per_source = max(0, max_associations_per_source)
        self.check_called_ae = check_called_ae
        self._gate: ConnectionGate | None = None
        self.close_ingestor = close_ingestor
        # the pynetdicom hooks copy internals of the versions they were checked against
        self.event_driven = (
            os.environ.get("ONCOHYBRID_SCP_POLL", "") != "1"
            and pynetdicom.__version__.startswith(_HOOKED_PYNETDICOM)
        )
        self.stats = ListenerStats()
        self.tracker = StudyCompletionTracker(quiet_period_s, hooks)
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._allowed: dict[str, set[str]] = {}
        self._server: _NoDelayServer | None = None
        self._server_thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._stopped = threading.Event()
        # 0: associations are served in this process; N: by N receiver processes, so
        # that receiving is not limited to the one core the GIL allows this process
        if receive_processes is None:
            receive_processes = _env_int("ONCOHYBRID_LISTEN_PROCESSES")
        self.receive_processes = max(0, receive_processes)
        self._listen_sock: socket.socket | None = None
        self._procs: list[_ReceiverProcess] = []
        self._acceptor: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------

    @property
    def pending_connections(self) -> int:
        """Accepted connections still waiting for their A-ASSOCIATE-RQ."""
        return self._gate.pending if self._gate is not None else 0

    def _make_gate(self, hand_over: Callable[[socket.socket, Any], None]) -> ConnectionGate:
        gate = ConnectionGate(
            hand_over,
            timeout_s=self.association_request_timeout_s,
            max_pending_per_source=self.max_pending_per_source,
            on_closed=lambda _reason: self.stats.add("idle_connections_closed"),
        )
        self._gate = gate
        gate.start()
        return gate

    @property
    def port(self) -> int:
        if self._listen_sock is not None:
            return int(self._listen_sock.getsockname()[1])
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind the SCP (PacsError if the port is taken), recover the spool, start serving."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._allowed = {}
        for caller in self.allowed_callers:
            self._allowed.setdefault(caller.ae_title, set()).update(caller.addresses())

        if self.receive_processes:
            self._start_processes()
            return
        receiver = _Receiver(
            ae_title=self.ae_title,
            spool_dir=self.spool_dir,
            allowed=self._allowed,
            max_associations=self.max_associations,
            stats=self.stats,
            on_spooled=lambda path, calling_ae: self._queue.put((path, calling_ae)),
            event_driven=self.event_driven,
            max_associations_per_source=self.max_associations_per_source,
            check_called_ae=self.check_called_ae,
        )
        try:
            # binding first: the spool belongs to whoever holds the port
            server = receiver.make_server((self.host, self.requested_port))
        except OSError as exc:
            raise PacsError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc} "
                "(is another listener running on this port?)"
            ) from exc
        self._server = server
        server.gate = self._make_gate(server.start_association)
        self._start_indexing()
        self._server_thread = threading.Thread(
            target=server.serve_forever, name="pacs-scp", daemon=True
        )
        self._server_thread.start()
        log.info("listening as %s on %s:%d", self.ae_title, self.host, self.port)

    def _start_indexing(self) -> None:
        leftovers = self._recover_spool()
        self._workers = [
            threading.Thread(target=self._index_loop, name=f"pacs-index-{i}", daemon=True)
            for i in range(self.index_workers)
        ]
        for worker in self._workers:
            worker.start()
        for path in leftovers:
            self._queue.put((path, ""))
        self.tracker.start()

    def _start_processes(self) -> None:
        try:
            # binding first: the spool belongs to whoever holds the port
            sock = socket.create_server((self.host, self.requested_port), backlog=128)
        except OSError as exc:
            raise PacsError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc} "
                "(is another listener running on this port?)"
            ) from exc
        self._listen_sock = sock
        self._start_indexing()
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        for k in range(self.receive_processes):
            control, child_control = ctx.Pipe(duplex=True)  # a socket pair: can pass fds
            events, child_events = ctx.Pipe(duplex=False)
            config = {
                "ae_title": self.ae_title, "spool_dir": str(self.spool_dir),
                "allowed": self._allowed, "max_associations": self.max_associations,
                "index": k, "event_driven": self.event_driven,
                "host": self.host, "port": self.port,
                "max_associations_per_source": self.max_associations_per_source,
                "check_called_ae": self.check_called_ae,
            }
            process = ctx.Process(
                target=_receiver_process, args=(config, child_control, child_events),
                name=f"pacs-receiver-{k}", daemon=True,
            )
            process.start()
            child_control.close()
            child_events.close()
            proc = _ReceiverProcess(process, control, events)
            proc.reader = threading.Thread(
                target=self._read_events, args=(proc,), name=f"pacs-receiver-{k}-events",
                daemon=True,
            )
            proc.reader.start()
            self._procs.append(proc)
        deadline = time.monotonic() + 120
        for proc in self._procs:
            if not proc.ready.wait(max(0.0, deadline - time.monotonic())):
                self.stop(grace_s=0)
                raise PacsError("listener: a receiver process did not start within 120 s")
        turn = itertools.count()

        def hand_over(conn: socket.socket, address: Any) -> None:
            with conn:  # the receiver process holds its own descriptor
                self._hand_over(conn, address, next(turn))

        gate = self._make_gate(hand_over)
        self._acceptor = threading.Thread(target=self._accept_loop, args=(gate,),
                                          name="pacs-accept", daemon=True)
        self._acceptor.start()
        log.info("listening as %s on %s:%d with %d receiver processes", self.ae_title,
                 self.host, self.port, len(self._procs))

    def _read_events(self, proc: _ReceiverProcess) -> None:
        """Turn a receiver process's messages into queued spool files and statistics."""
        while True:
            try:
                msg = proc.events.recv()
            except (EOFError, OSError):
                if not self._stopped.is_set():
                    log.error("receiver process %s ended unexpectedly", proc.process.name)
                return
            kind = msg[0]
            if kind == "stored":
                for name, calling_ae in msg[1]:
                    self._queue.put((self.spool_dir / name, calling_ae))
            elif kind == "stats":
                for name, n in msg[1].items():
                    self.stats.add(name, n)
            elif kind == "ready":
                proc.ready.set()
            elif kind == "bye":
                return

    def _accept_loop(self, gate: ConnectionGate) -> None:
        """Accept connections; the gate hands them to the receiver processes in turn."""
        sock = self._listen_sock
        assert sock is not None
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            while not self._stopped.is_set():
                if not sel.select(0.2):
                    continue
                try:
                    conn, address = sock.accept()
                except OSError:
                    continue
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                gate.add(conn, address)

    def _hand_over(self, conn: socket.socket, address: Any, turn: int) -> None:
        n = len(self._procs)
        for i in range(n):
            proc = self._procs[(turn + i) % n]
            if not proc.process.is_alive():
                continue
            try:
                with proc.lock:
                    proc.control.send(("assoc", tuple(address[:2])))
                    reduction.send_handle(proc.control, conn.fileno(), proc.process.pid)
                return
            except OSError:
                continue
        log.error("no receiver process is running: connection from %s closed", address[0])

    def _stop_processes(self, grace_s: float) -> None:
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._gate is not None:
            self._gate.stop()
        if self._listen_sock is not None:
            self._listen_sock.close()
        for proc in self._procs:
            with proc.lock, contextlib.suppress(OSError):
                proc.control.send(("stop", grace_s))
        for proc in self._procs:
            if proc.reader is not None:
                proc.reader.join(timeout=grace_s + 30)
            proc.process.join(timeout=10)
            if proc.process.is_alive():
                log.error("receiver process %s did not stop; killing it", proc.process.name)
                proc.process.kill()
                proc.process.join(timeout=10)
            proc.control.close()
            proc.events.close()

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until every spooled instance has been indexed; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let open associations finish (then abort them), drain the spool."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        server = self._server
        if server is not None:
            server.shutdown()
            if self._gate is not None:
                self._gate.stop()
            _finish_associations(server, grace_s)
            if self._server_thread is not None:
                self._server_thread.join(timeout=5)
        if self._procs or self._listen_sock is not None:
            self._stop_processes(grace_s)
        for _worker in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()
        left: list[tuple[Path, str]] = []
        while True:  # a handler that finished after the sentinels (aborted association)
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None:
                left.append(entry)
            self._queue.task_done()
        if self._procs:
            # a receiver process that died may have spooled files it could not report;
            # nothing receives any more, so whatever is still in the spool is unindexed
            queued = {path for path, _ae in left}
            left += [(p, "") for p in sorted(self.spool_dir.glob("*.dcm")) if p not in queued]
        if left and hasattr(self.ingestor, "ingest_files_batch"):
            self._index_batch(left)
        else:
            for entry in left:
                self._index_one(*entry)
        self.tracker.stop()
        if self.close_ingestor:
            self.ingestor.close()
        log.info("listener stopped: %s", self.stats.as_dict())

    def __enter__(self) -> StorageListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- indexing -------------------------------------------------------------------

    def _recover_spool(self) -> list[Path]:
        for partial in self.spool_dir.glob("*.part"):
            partial.unlink(missing_ok=True)  # never acknowledged
        leftovers = sorted(self.spool_dir.glob("*.dcm"))
        if leftovers:
            log.info("indexing %d instances spooled by an earlier run", len(leftovers))
            self.stats.add("recovered", len(leftovers))
        return leftovers

    def _index_loop(self) -> None:
        """Index spooled files in batches until a ``None`` sentinel (one per worker) arrives.

        A batch is what the queue holds, up to ``INDEX_BATCH`` files, collected for at most
        ``INDEX_LINGER_S`` after the first: one transaction and one folder sync per batch
        instead of per instance leaves the receiving threads most of the CPU.
        """
        batched = hasattr(self.ingestor, "ingest_files_batch")
        if self.receive_processes and INDEX_NICENESS:
            _lower_thread_priority(INDEX_NICENESS)
        while True:
            entry = self._queue.get()
            if entry is None:
                self._queue.task_done()
                return
            batch = [entry]
            stop = False
            deadline = time.monotonic() + INDEX_LINGER_S
            while batched and len(batch) < INDEX_BATCH:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                if batched:
                    self._index_batch(batch)
                else:
                    for item in batch:
                        self._index_one(*item)
            finally:
                for _ in range(len(batch) + stop):
                    self._queue.task_done()
            if stop:
                return

    def _index_batch(self, batch: list[tuple[Path, str]]) -> None:
        ingestor = self.ingestor
        assert hasattr(ingestor, "ingest_files_batch")
        try:
            outcomes = ingestor.ingest_files_batch(
                [p for p, _ae in batch], source="network", link=True
            )
        except Exception:  # database or disk trouble: keep the files, indexed at next start
            self.stats.add("index_failed", len(batch))
            log.exception("indexing a batch of %d spooled instances failed; they stay in "
                          "the spool for the next start", len(batch))
            return
        for (path, calling_ae), outcome in zip(batch, outcomes, strict=True):
            status = str(outcome.status)
            if status not in ("new", "duplicate"):
                self.stats.add("indexed_skipped")
                self._keep_for_review(path, outcome.reason)
                continue
            self.stats.add("indexed_new" if status == "new" else "indexed_duplicate")
            if outcome.study_instance_uid:
                self.tracker.touch(outcome.study_instance_uid, calling_ae=calling_ae,
                                   new=status == "new")
            path.unlink(missing_ok=True)

    def _keep_for_review(self, path: Path, reason: object) -> None:
        # acknowledged but not indexable (e.g. no SOP Instance UID): keep it for review
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(path, self.failed_dir / path.name)
        log.warning("spooled instance %s was skipped by ingest: %s", path.name, reason)

    def _index_one(self, path: Path, calling_ae: str) -> None:
        try:
            ds = dcmread(path)
            outcome = self.ingestor.ingest_dataset(ds, source="network")
        except (OncohybridError, OSError, ValueError, KeyError, AttributeError) as exc:
            self.stats.add("index_failed")
            self.failed_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.replace(path, self.failed_dir / path.name)
            log.error("could not index spooled instance %s: %s", path.name, exc)
            return
        except Exception:  # database or disk trouble: keep the file, indexed at next start
            self.stats.add("index_failed")
            log.exception("indexing %s failed; it stays in the spool for the next start",
                          path.name)
            return
        status = str(getattr(outcome, "status", "new"))
        self.stats.add({"new": "indexed_new", "duplicate": "indexed_duplicate"}.get(
            status, "indexed_skipped"))
        if status not in ("new", "duplicate"):
            self._keep_for_review(path, getattr(outcome, "reason", "?"))
            return
        study_uid = ds.get("StudyInstanceUID")
        if study_uid:
            self.tracker.touch(str(study_uid), calling_ae=calling_ae, new=status == "new")
        path.unlink(missing_ok=True)
