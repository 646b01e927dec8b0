"""The receiving side of the Storage SCP: AE, allow-list, C-STORE → spool, receiver processes.

One :class:`_Receiver` serves associations in the listener's process, or one in each
receiver process (:func:`_receiver_process`), which reports spooled files back to the
listener in batches (:class:`_ParentReport`). Negotiation (PS3.8 §9.3.4) and receipt
checks (:mod:`oncohybrid.pacs.receipt`) happen here; indexing is the listener's
(:mod:`oncohybrid.pacs.scp`).
"""


import contextlib
import functools
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import reduction
from pathlib import Path
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    evt,
)
from pynetdicom.sop_class import Verification

from oncohybrid.pacs.association import (
    MAX_PDU_BYTES,
    _CheapCopyContexts,
    _close_wake,
    _DetachedServer,
    _fast_store_responses,
    _finish_associations,
    _make_event_driven,
    _NoDelayServer,
    storage_contexts,
    tune_association,
)
from oncohybrid.pacs.fastpath import DirectStorePath, StoreStatus
from oncohybrid.pacs.header_values import record_or_none
from oncohybrid.pacs.integrity import IncompleteDataset, read_header
from oncohybrid.pacs.receipt import check_received
from oncohybrid.pacs.spool import SpoolBound, _write_all, file_meta_header

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1
STATUS_CANNOT_UNDERSTAND = 0xC210  # PS3.4 Table B.2-1 (Cxxx: error, cannot understand)
# receiver processes report spooled files this often (the variable is read in each
# receiver process: tests stretch it to show that flush() does not depend on it)
REPORT_INTERVAL_S = float(os.environ.get("ONCOHYBRID_PACS_REPORT_INTERVAL_S", "0.005"))
# how long a rejected caller may take to close the connection after the A-ASSOCIATE-RJ
REJECT_LINGER_S = 2.0


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
        on_spooled: Callable[[Path, str, Any], None],
        name_tag: str = "",
        event_driven: bool = True,
        max_associations_per_source: int = 0,
        check_called_ae: bool = True,
        spool_bound: SpoolBound | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.spool_bound = spool_bound
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
        # ONCOHYBRID_PACS_RECORDS=0: indexing reads every spooled file (as before #11)
        self.build_records = os.environ.get("ONCOHYBRID_PACS_RECORDS", "1") != "0"
        # receiver processes build the record after the acknowledgement, in the thread
        # that reports to the listener (on_spooled then gets a callable)
        self.defer_records = False

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
        found: dict[int, Any] = {}
        try:
            header = read_header(body, transfer_syntax_uid, found)
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
        bound = self.spool_bound
        if bound is not None:
            room = bound.wait_for_room()
            if room == "full":  # indexing is behind: PS3.4 B.2.3 Out of Resources
                self.stats.add("spool_full_refusals")
                log.warning("refused a C-STORE from %s with status A700: the spool holds "
                            "%d instances not yet indexed", calling_ae, bound.backlog)
                return StoreStatus(STATUS_OUT_OF_RESOURCES,
                                   "spool full: indexing is behind; retry later")
            if room == "delayed":
                self.stats.add("delayed_acknowledgements")
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
        if bound is not None:
            bound.add(1)  # before on_spooled: the indexer takes it off
        self.stats.add("received")
        # the index record from the walk just made, so that indexing need not parse the
        # file again (#11); None where it could differ from ingest's reading of the file
        record: Any = None
        if self.build_records:
            record = functools.partial(record_or_none, body, found, transfer_syntax_uid,
                                       len(head), len(head) + len(body))
            if not self.defer_records:
                record = record()
        self.on_spooled(Path(final), calling_ae, record)
        return STATUS_SUCCESS



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
        self._stored: list[tuple[str, str, Any]] = []
        self._stats: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-to-listener",
                                        daemon=True)
        self._thread.start()

    def add(self, name: str, n: int = 1) -> None:  # the ListenerStats interface
        with self._lock:
            self._stats[name] = self._stats.get(name, 0) + n

    def stored(self, path: Path, calling_ae: str, record: Any = None) -> None:
        with self._lock:
            self._stored.append((path.name, calling_ae, record))

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self._events.send(msg)

    def flush(self) -> None:
        with self._lock:
            stored, self._stored = self._stored, []
            stats, self._stats = self._stats, {}
        if stored:
            # the index records, built here, off the C-STORE's path to its acknowledgement
            stored = [(n, ae, r() if callable(r) else r) for n, ae, r in stored]
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
    calling AE, index record or None), ...])`` for spooled (acknowledged) instances,
    ``("stats", {name: n})``, ``("flushed", token)`` in answer to ``("flush", token)``,
    and ``("bye",)`` at the end.
    From the listener (``control``): ``("assoc", address)`` followed by the connection's
    file descriptor, ``("flush", token)``, or ``("stop", grace_s)``.
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
        spool_bound=SpoolBound(config["max_spooled"], config["spool_wait_s"],
                               config["spool_counter"]),
    )
    receiver.defer_records = True
    server = receiver.make_server((config["host"], config["port"]), _DetachedServer)
    report.send(("ready",))
    grace_s = 0.0
    try:
        while True:
            msg = control.recv()
            if msg[0] == "assoc":
                conn = socket.socket(fileno=reduction.recv_handle(control))
                server.process_request(conn, tuple(msg[1]))
            elif msg[0] == "flush":
                # everything acknowledged so far goes out before the answer (one ordered pipe)
                report.flush()
                report.send(("flushed", msg[1]))
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
    flush_token: int = 0  # the last ("flush", token) asked, and the last answered
    flushed: int = 0
    flushed_event: threading.Event = field(default_factory=threading.Event)

