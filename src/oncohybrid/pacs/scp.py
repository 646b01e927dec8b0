"""Storage SCP: receive instances over DICOM and ingest them like ``oncohybrid ingest``.

The listener (:class:`StorageListener`: life cycle, receiver processes, indexing) is
here; receiving is in :mod:`oncohybrid.pacs.receiver` (AE, negotiation, C-STORE →
spool, receiver processes' main), the spool files and their bound in
:mod:`oncohybrid.pacs.spool`, and pynetdicom's association machinery as the listener
tunes it in :mod:`oncohybrid.pacs.association`.

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
import inspect
import itertools
import logging
import multiprocessing
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import reduction
from pathlib import Path
from typing import Any, Protocol

import pynetdicom
from pydicom import dcmread

from oncohybrid.errors import OncohybridError, PacsError
from oncohybrid.pacs.association import (
    _HOOKED_PYNETDICOM,
    MAX_PDU_BYTES,
    _finish_associations,
    _NoDelayServer,
    tune_association,
)
from oncohybrid.pacs.fastpath import encode_store_response
from oncohybrid.pacs.gate import ConnectionGate
from oncohybrid.pacs.hooks import StudyCompletionTracker, StudyHook
from oncohybrid.pacs.node import validate_ae_title, validate_port
from oncohybrid.pacs.receiver import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
    _Receiver,
    _receiver_process,
    _ReceiverProcess,
)
from oncohybrid.pacs.spool import MAX_SPOOLED, SPOOL_WAIT_S, SpoolBound, file_meta_header

# the names this module has always offered (tests, services.pacs, pacs.dimse)
__all__ = [
    "MAX_PDU_BYTES", "STATUS_CANNOT_UNDERSTAND", "STATUS_OUT_OF_RESOURCES", "STATUS_SUCCESS",
    "AllowedCaller", "BatchIngestor", "DatasetIngestor", "ListenerStats", "StorageListener",
    "default_receive_processes", "encode_store_response", "file_meta_header",
    "tune_association",
]

log = logging.getLogger(__name__)

#: Spooled files indexed per database transaction, and how long an indexer waits for a
#: batch to fill once its first file is there.
INDEX_BATCH = 250
INDEX_LINGER_S = 0.05
# niceness of the indexing threads when receiver processes run (0: none). It was 10 so
# that indexing yielded to reception; on a shared machine that starved the index (it
# fell to ~0.3x DCMTK's rate in benchmarks/pacs.py, ~0.5x without), and with the spool
# bounded (pacs.spool.SpoolBound) reception cannot run ahead of the index anyway (#11)
INDEX_NICENESS = 0


class DatasetIngestor(Protocol):
    """What the listener needs from ``oncohybrid.services.ingest.Ingestor``."""

    def ingest_dataset(self, ds: Any, *, source: str = ...) -> Any: ...

    def close(self) -> None: ...


class BatchIngestor(DatasetIngestor, Protocol):
    """An ingestor that also indexes spooled files in batches (``Ingestor`` is one)."""

    def ingest_files_batch(
        self, paths: Sequence[Any], *, source: str = ..., link: bool = ...,
        records: Sequence[Any] | None = ...,
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
    indexed_conflict: int = 0  # same SOP Instance UID, other content: kept by ingest
    delayed_acknowledgements: int = 0  # waited for room in the spool
    spool_full_refusals: int = 0  # A700: no room within the wait
    index_failed: int = 0
    recovered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def _lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value (Linux schedules threads individually)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)



def _accepts_records(ingestor: Any) -> bool:
    method = getattr(ingestor, "ingest_files_batch", None)
    if method is None:
        return False
    try:
        return "records" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


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
        max_spooled: int = MAX_SPOOLED,
        spool_wait_s: float = SPOOL_WAIT_S,
    ) -> None:
        self.ingestor = ingestor
        # an ingestor whose ingest_files_batch takes the receivers' records (``Ingestor``)
        self._takes_records = _accepts_records(ingestor)
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
        # acknowledged but not yet indexed instances, shared with the receiver processes;
        # above max_spooled acknowledgements wait for the indexers (pacs.spool)
        self.spool_bound = SpoolBound(max_spooled, spool_wait_s)
        self.tracker = StudyCompletionTracker(quiet_period_s, hooks)
        # (spool file, calling AE, its index record built by the receiver or None)
        self._queue: queue.Queue[tuple[Path, str, Any] | None] = queue.Queue()
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
    def spool_backlog(self) -> int:
        """Instances acknowledged but not yet indexed (what the spool bound counts)."""
        return self.spool_bound.backlog

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
            on_spooled=lambda path, calling_ae, record: self._queue.put(
                (path, calling_ae, record)
            ),
            event_driven=self.event_driven,
            max_associations_per_source=self.max_associations_per_source,
            check_called_ae=self.check_called_ae,
            spool_bound=self.spool_bound,
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
            self._queue.put((path, "", None))
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
                "max_spooled": self.spool_bound.limit,
                "spool_wait_s": self.spool_bound.wait_s,
                "spool_counter": self.spool_bound.counter,
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
                for name, calling_ae, record in msg[1]:
                    self._queue.put((self.spool_dir / name, calling_ae, record))
            elif kind == "stats":
                for name, n in msg[1].items():
                    self.stats.add(name, n)
            elif kind == "ready":
                proc.ready.set()
            elif kind == "flushed":
                with proc.lock:
                    proc.flushed = max(proc.flushed, int(msg[1]))
                proc.flushed_event.set()
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

    def _pull_reports(self, deadline: float) -> bool:
        asked: list[tuple[_ReceiverProcess, int]] = []
        for proc in self._procs:
            if not proc.process.is_alive() or not proc.ready.is_set():
                continue
            with proc.lock:
                proc.flush_token += 1
                token = proc.flush_token
                proc.flushed_event.clear()
                try:
                    proc.control.send(("flush", token))
                except OSError:
                    continue
            asked.append((proc, token))
        for proc, token in asked:
            while True:
                with proc.lock:
                    if proc.flushed >= token:
                        break
                if not proc.process.is_alive():
                    break  # what it spooled is recovered from the spool at the next start
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                proc.flushed_event.wait(min(left, 0.1))
                proc.flushed_event.clear()
        return True

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until every spooled instance has been indexed; False on timeout.

        With receiver processes, each is first asked for the instances it acknowledged
        but has not reported yet (they report in batches), so that whatever a sender saw
        acknowledged before this call is indexed when it returns True.
        """
        deadline = time.monotonic() + timeout_s
        if not self._pull_reports(deadline):
            return False
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
        left: list[tuple[Path, str, Any]] = []
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
            queued = {entry[0] for entry in left}
            left += [
                (p, "", None) for p in sorted(self.spool_dir.glob("*.dcm")) if p not in queued
            ]
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
            self.spool_bound.add(len(leftovers))
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
                self.spool_bound.add(-len(batch))
                for _ in range(len(batch) + stop):
                    self._queue.task_done()
            if stop:
                return

    def _index_batch(self, batch: list[tuple[Path, str, Any]]) -> None:
        ingestor = self.ingestor
        assert hasattr(ingestor, "ingest_files_batch")
        paths = [entry[0] for entry in batch]
        records = [entry[2] for entry in batch]
        try:
            if self._takes_records and any(r is not None for r in records):
                # the receivers' records: the files are not parsed again (#11)
                outcomes = ingestor.ingest_files_batch(
                    paths, source="network", link=True, records=records
                )
            else:
                outcomes = ingestor.ingest_files_batch(paths, source="network", link=True)
        except Exception:  # database or disk trouble: keep the files, indexed at next start
            self.stats.add("index_failed", len(batch))
            log.exception("indexing a batch of %d spooled instances failed; they stay in "
                          "the spool for the next start", len(batch))
            return
        # counted once per batch (a locked update per instance cost ~1 us each, #11)
        new = duplicate = 0
        try:
            for (path, calling_ae, _record), outcome in zip(batch, outcomes, strict=True):
                status = str(outcome.status)
                if status == "conflict":
                    self._conflict(path, outcome.reason)
                    continue
                if status not in ("new", "duplicate"):
                    self.stats.add("indexed_skipped")
                    self._keep_for_review(path, outcome.reason)
                    continue
                if status == "new":
                    new += 1
                else:
                    duplicate += 1
                if outcome.study_instance_uid:
                    self.tracker.touch(outcome.study_instance_uid, calling_ae=calling_ae,
                                       new=status == "new")
                try:  # noqa: SIM105 - Path.unlink(missing_ok=True), no pathlib, no suppress()
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        finally:
            if new:
                self.stats.add("indexed_new", new)
            if duplicate:
                self.stats.add("indexed_duplicate", duplicate)

    def _conflict(self, path: Path, reason: object) -> None:
        # same SOP Instance UID, other content (#12): ingest kept its own copy under
        # conflicts/ and recorded it; the stored original stays, the spool file goes
        self.stats.add("indexed_conflict")
        log.warning("spooled instance %s conflicts with a stored one: %s", path.name, reason)
        path.unlink(missing_ok=True)

    def _keep_for_review(self, path: Path, reason: object) -> None:
        # acknowledged but not indexable (e.g. no SOP Instance UID): keep it for review
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(path, self.failed_dir / path.name)
        log.warning("spooled instance %s was skipped by ingest: %s", path.name, reason)

    def _index_one(self, path: Path, calling_ae: str, _record: Any = None) -> None:
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
        if status == "conflict":
            self._conflict(path, getattr(outcome, "reason", "?"))
            return
        self.stats.add({"new": "indexed_new", "duplicate": "indexed_duplicate"}.get(
            status, "indexed_skipped"))
        if status not in ("new", "duplicate"):
            self._keep_for_review(path, getattr(outcome, "reason", "?"))
            return
        study_uid = ds.get("StudyInstanceUID")
        if study_uid:
            self.tracker.touch(str(study_uid), calling_ae=calling_ae, new=status == "new")
        path.unlink(missing_ok=True)
