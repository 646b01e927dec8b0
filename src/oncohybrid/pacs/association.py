"""Association handling on top of pynetdicom: sockets, event-driven waits, fast responses.

The parts of the Storage SCP that change how pynetdicom serves an association, not what
is done with a received instance (that is :mod:`oncohybrid.pacs.receiver`): Nagle off
and a short poll delay on every association (:func:`tune_association`), acceptor
threads that wait for work instead of polling (:class:`_IdleWaitQueue`,
:func:`_waiting_reactor` - pynetdicom 3.0 offers no event-driven mode), plain C-STORE
responses encoded directly (PS3.7 §9.3.1.2, :func:`_fast_store_responses`), cheap
copies of the ~150 × 45 presentation contexts per association, and servers that take
connections from the connection gate or from the listener process.
"""


import contextlib
import copy
import logging
import queue
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from pynetdicom import (
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import ThreadedAssociationServer

from oncohybrid.pacs.fastpath import encode_store_response
from oncohybrid.pacs.gate import ConnectionGate

log = logging.getLogger(__name__)

# pynetdicom polls its sockets and sleeps 1 ms between idle loops; with one C-STORE
# in flight per association that sleep dominates small-instance latency.
_DUL_LOOP_DELAY_S = 0.0001
MAX_PDU_BYTES = 1_048_576
# pynetdicom versions whose reactor loops and C-STORE-RSP encoding the hooks reproduce
_HOOKED_PYNETDICOM = ("3.0.",)
# the longest an idle acceptor thread waits before it re-checks its timers and flags
_IDLE_WAIT_S = 0.02


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

