"""Storage SCP: receive instances over DICOM and ingest them like ``oncohybrid ingest``.

Implements the Storage Service Class (PS3.4 Annex B) for every storage SOP class
pynetdicom knows, in every transfer syntax (compressed ones are stored as received,
never decoded), plus Verification (PS3.4 Annex A).

Receive path, chosen for throughput and for never losing an acknowledged instance:

1. The C-STORE handler takes the encoded dataset exactly as the sender wrote it
   (``Event.encoded_dataset``), checks that it is structurally whole
   (:mod:`oncohybrid.pacs.integrity`), writes it with its file meta (PS3.10 §7.1)
   to a spool folder under a temporary name and renames it into place (atomic on
   POSIX), and only then answers *Success* (0000). Pixel data is never decoded.
2. Indexing threads take the spooled files and hand each dataset to
   ``Ingestor.ingest_dataset(ds, source="network")`` - the same code path as folder
   ingest, with the same duplicate rules - then deletes the spool file.
3. On start, spool files left by an earlier process (acknowledged but not yet
   indexed when it died) are indexed first. On stop (SIGTERM), the listener stops
   accepting associations, lets running ones finish for a grace period, then drains
   the spool before it returns.

An allow-list of calling AE titles with their hosts (from nodes configured with
``--accept-store``) rejects unknown callers at association negotiation (A-ASSOCIATE-RJ,
rejected-permanent, "calling AE title not recognized", PS3.8 §9.3.4); an empty
allow-list accepts any caller.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydicom import dcmread
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from oncohybrid.errors import OncohybridError, PacsError
from oncohybrid.pacs.hooks import StudyCompletionTracker, StudyHook
from oncohybrid.pacs.integrity import IncompleteDataset, check_complete
from oncohybrid.pacs.node import validate_ae_title, validate_port

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1
STATUS_CANNOT_UNDERSTAND = 0xC210  # PS3.4 Table B.2-1 (Cxxx: error, cannot understand)

# pynetdicom polls its sockets and sleeps 1 ms between idle loops; with one C-STORE
# in flight per association that sleep dominates small-instance latency.
_DUL_LOOP_DELAY_S = 0.0001
MAX_PDU_BYTES = 1_048_576


class DatasetIngestor(Protocol):
    """What the listener needs from ``oncohybrid.services.ingest.Ingestor``."""

    def ingest_dataset(self, ds: Any, *, source: str = ...) -> Any: ...

    def close(self) -> None: ...


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
    """

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


def storage_contexts() -> list[Any]:
    """Every storage SOP class in every transfer syntax, plus Verification."""
    return [*AllStoragePresentationContexts]


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
        index_workers: int = 3,
        max_associations: int = 32,
        close_ingestor: bool = True,
    ) -> None:
        self.ingestor = ingestor
        self.ae_title = validate_ae_title(ae_title, "listener AE title")
        self.host = host
        self.requested_port = validate_port(port) if port else 0
        self.allowed_callers = list(allowed_callers)
        self.spool_dir = Path(spool_dir)
        self.failed_dir = self.spool_dir / "failed"
        # several indexers overlap the file writes and fsyncs (which release the GIL);
        # the Ingestor serialises its own database transactions
        self.index_workers = max(1, index_workers)
        self.max_associations = max_associations
        self.close_ingestor = close_ingestor
        self.stats = ListenerStats()
        self.tracker = StudyCompletionTracker(quiet_period_s, hooks)
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._seq = itertools.count()
        self._allowed: dict[str, set[str]] = {}
        self._server: _NoDelayServer | None = None
        self._server_thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind the SCP (PacsError if the port is taken), recover the spool, start serving."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._allowed = {}
        for caller in self.allowed_callers:
            self._allowed.setdefault(caller.ae_title, set()).update(caller.addresses())

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
            (evt.EVT_CONN_OPEN, tune_association),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_STORE, self._on_store),
        ]
        try:
            # binding first: the spool belongs to whoever holds the port
            server = ae.make_server(
                (self.host, self.requested_port),
                evt_handlers=handlers,
                server_class=_NoDelayServer,
            )
        except OSError as exc:
            raise PacsError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc} "
                "(is another listener running on this port?)"
            ) from exc
        self._server = server
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
        self._server_thread = threading.Thread(
            target=server.serve_forever, name="pacs-scp", daemon=True
        )
        self._server_thread.start()
        log.info("listening as %s on %s:%d", self.ae_title, self.host, self.port)

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
            deadline = time.monotonic() + grace_s
            while server.active_associations and time.monotonic() < deadline:
                time.sleep(0.05)
            remaining = server.active_associations
            for assoc in remaining:
                assoc.abort()
            for assoc in remaining:  # a C-STORE handler may still be spooling
                assoc.join(timeout=10)
            if self._server_thread is not None:
                self._server_thread.join(timeout=5)
        for _worker in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()
        while True:  # a handler that finished after the sentinels (aborted association)
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None:
                self._index_one(*entry)
            self._queue.task_done()
        self.tracker.stop()
        if self.close_ingestor:
            self.ingestor.close()
        log.info("listener stopped: %s", self.stats.as_dict())

    def __enter__(self) -> StorageListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- association handlers -------------------------------------------------------

    def _on_requested(self, event: evt.Event) -> None:
        if not self._allowed:
            return
        requestor = event.assoc.requestor
        # the A-ASSOCIATE-RQ itself: requestor.ae_title is filled in only after negotiation
        primitive = requestor.primitive
        calling = str(getattr(primitive, "calling_ae_title", "") or requestor.ae_title).strip()
        address = str(requestor.address)
        if address not in self._allowed.get(calling, set()):
            self.stats.add("rejected_associations")
            log.warning("rejected association from AE %r at %s: not on the allow-list",
                        calling, address)
            # rejected-permanent, DICOM UL service-user, calling AE title not recognized
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)

    def _on_store(self, event: evt.Event) -> int:
        try:
            body = event.encoded_dataset(include_meta=False)
            check_complete(body, event.context.transfer_syntax)
        except IncompleteDataset as exc:
            self.stats.add("refused_instances")
            log.warning("refused an incomplete dataset from %s: %s",
                        event.assoc.requestor.ae_title, exc)
            return STATUS_CANNOT_UNDERSTAND
        name = f"{time.time_ns():020d}-{next(self._seq):08d}"
        final = self.spool_dir / f"{name}.dcm"
        partial = self.spool_dir / f"{name}.part"
        try:
            with open(partial, "wb") as fh:
                fh.write(event.encoded_dataset(include_meta=True))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            log.error("cannot spool a received instance: %s", exc)
            return STATUS_OUT_OF_RESOURCES
        self.stats.add("received")
        self._queue.put((final, event.assoc.requestor.ae_title or ""))
        return STATUS_SUCCESS

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
        """Index spooled files until a ``None`` sentinel (one per worker) arrives."""
        while True:
            entry = self._queue.get()
            try:
                if entry is None:
                    return
                self._index_one(*entry)
            finally:
                self._queue.task_done()

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
            # acknowledged but not indexable (e.g. no SOP Instance UID): keep it for review
            self.failed_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.replace(path, self.failed_dir / path.name)
            log.warning("spooled instance %s was skipped by ingest: %s", path.name,
                        getattr(outcome, "reason", "?"))
            return
        study_uid = ds.get("StudyInstanceUID")
        if study_uid:
            self.tracker.touch(str(study_uid), calling_ae=calling_ae, new=status == "new")
        path.unlink(missing_ok=True)
