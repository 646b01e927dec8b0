"""Hold new TCP connections until their first PDU has arrived, without a thread each.

PS3.8 §9.2 (state Sta2, "transport connection open, awaiting A-ASSOCIATE-RQ PDU")
bounds the wait for the request with the ARTIM timer. pynetdicom creates an
association - a thread that counts against the AE's maximum number of associations -
for every accepted connection and waits for the request there (30 s, its ARTIM/ACSE
timeout), so a few dozen idle connections made every real sender see "local limit
exceeded" (issue #12, item 1). This gate takes their place: accepted sockets wait in
one selector thread until a whole first PDU (PS3.8 §9.3.1: 6-byte header, then its
length) is buffered, and only then go on to become an association. The rest is bounded:

* ``timeout_s`` after the connection was accepted, a connection without a whole PDU is
  closed (the ARTIM timer of PS3.8, shortened: a sender writes its A-ASSOCIATE-RQ as
  soon as it connects);
* a connection the peer closes is dropped as soon as the selector sees it;
* at most ``max_pending_per_source`` connections from one address, ``max_pending`` in
  all, wait here; beyond that the oldest waiting one of that address (or of all) is
  closed, so a flood of idle connections from one host cannot push out others, and a
  real sender's new connection is never the one refused;
* a first byte that is no PDU type of PS3.8 Table 9-11 closes the connection at once.

The socket option ``SO_RCVLOWAT`` makes the selector report a connection only once the
bytes still missing have arrived, so a sender that trickles its request costs no CPU.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Bytes of a first PDU awaited before the connection is handed on anyway (an
#: A-ASSOCIATE-RQ with 128 presentation contexts is ~15 KiB); the association's own
#: ARTIM timer bounds the rest of a larger one.
PEEK_BYTES = 32_768
_HEADER_BYTES = 6
_PDU_TYPES = frozenset(range(0x01, 0x08))  # PS3.8 Table 9-11
_RCVLOWAT = getattr(socket, "SO_RCVLOWAT", None)

HandOver = Callable[[socket.socket, Any], None]


@dataclass
class _Waiting:
    sock: socket.socket
    address: Any
    source: str
    deadline: float
    seen: int = 0  # bytes of the first PDU buffered at the last look


class ConnectionGate:
    """Accepted connections wait here for their first PDU, then go to `hand_over`.

    `hand_over(sock, address)` runs on the gate's thread with the socket blocking again;
    `on_closed(reason)` is told of every connection the gate closed itself ("timeout",
    "limit", "not DICOM") - not of those the peer closed.
    """

    def __init__(
        self,
        hand_over: HandOver,
        *,
        timeout_s: float = 5.0,
        max_pending_per_source: int = 32,
        max_pending: int = 512,
        on_closed: Callable[[str], None] | None = None,
        name: str = "pacs-gate",
    ) -> None:
        if timeout_s <= 0 or max_pending_per_source < 1 or max_pending < 1:
            raise ValueError("connection gate: timeout and limits must be positive")
        self.hand_over = hand_over
        self.timeout_s = timeout_s
        self.max_pending_per_source = max_pending_per_source
        self.max_pending = max_pending
        self.on_closed = on_closed
        self._arrivals: collections.deque[tuple[socket.socket, Any]] = collections.deque()
        # fd -> waiting connection, oldest first (all share one timeout: also by deadline)
        self._waiting: collections.OrderedDict[int, _Waiting] = collections.OrderedDict()
        self._by_source: dict[str, collections.OrderedDict[int, None]] = {}
        self._wake_send, self._wake_recv = socket.socketpair()
        self._wake_send.setblocking(False)
        self._wake_recv.setblocking(False)
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_recv, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def pending(self) -> int:
        """Connections waiting for their first PDU (including ones not yet looked at)."""
        return len(self._arrivals) + len(self._waiting)

    def start(self) -> None:
        self._thread.start()

    def add(self, sock: socket.socket, address: Any) -> None:
        """Take an accepted connection (from any thread)."""
        if self._stop.is_set():
            _close(sock)
            return
        self._arrivals.append((sock, address))
        self._wake()

    def stop(self) -> None:
        """Close every waiting connection and end the gate's thread."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        while self._arrivals:
            _close(self._arrivals.popleft()[0])
        for fd in list(self._waiting):
            self._forget(fd)
        self._selector.close()
        _close(self._wake_send)
        _close(self._wake_recv)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
            self._wake_send.send(b"\x00")

    # -- the gate's thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._turn()
            except Exception:  # the gate must outlive any one connection's trouble
                log.exception("connection gate: unexpected error, continuing")
                time.sleep(0.01)

    def _turn(self) -> None:
        """Wait for a connection's bytes, a new connection or the oldest deadline."""
        timeout = None
        if self._waiting:
            oldest = next(iter(self._waiting.values()))
            timeout = max(0.0, oldest.deadline - time.monotonic())
        try:
            events = self._selector.select(timeout)
        except OSError:  # a socket closed under the selector: look again
            events = []
        for key, _mask in events:
            if key.data is None:
                with contextlib.suppress(OSError):
                    self._wake_recv.recv(4096)
            else:
                self._look(key.data)
        self._take_arrivals()
        self._expire()

    def _take_arrivals(self) -> None:
        while self._arrivals:
            sock, address = self._arrivals.popleft()
            source = str(address[0]) if isinstance(address, tuple) else str(address)
            mine = self._by_source.setdefault(source, collections.OrderedDict())
            while len(mine) >= self.max_pending_per_source:
                self._close_waiting(next(iter(mine)), "limit")
            while len(self._waiting) >= self.max_pending:
                self._close_waiting(next(iter(self._waiting)), "limit")
            try:
                sock.setblocking(False)
                fd = sock.fileno()
                self._set_lowat(sock, _HEADER_BYTES)
                self._selector.register(sock, selectors.EVENT_READ, fd)
            except (OSError, ValueError):
                _close(sock)
                if not mine:
                    self._by_source.pop(source, None)
                continue
            self._waiting[fd] = _Waiting(sock, address, source,
                                         time.monotonic() + self.timeout_s)
            self._by_source.setdefault(source, mine)[fd] = None

    def _look(self, fd: int) -> None:
        waiting = self._waiting.get(fd)
        if waiting is None:
            return
        try:
            data = waiting.sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._forget(fd)
            return
        if not data:  # the peer closed: free its place now, not at the timeout
            self._forget(fd)
            return
        if data[0] not in _PDU_TYPES:
            log.warning("connection from %s sent no DICOM PDU (first byte 0x%02X): closed",
                        waiting.source, data[0])
            self._close_waiting(fd, "not DICOM")
            return
        needed = _HEADER_BYTES
        if len(data) >= _HEADER_BYTES:
            needed = min(_HEADER_BYTES + int.from_bytes(data[2:6], "big"), PEEK_BYTES)
            if len(data) >= needed:
                self._release(fd)
                return
        if _RCVLOWAT is None:
            time.sleep(0.001)  # no low-water mark here: do not spin on the selector
        elif len(data) == waiting.seen:
            # readable below the low-water mark: only end-of-file does that - the peer
            # closed before its request was complete
            self._forget(fd)
            return
        waiting.seen = len(data)
        self._set_lowat(waiting.sock, needed)

    def _release(self, fd: int) -> None:
        waiting = self._unregister(fd)
        if waiting is None:
            return
        try:
            self._set_lowat(waiting.sock, 1)
            waiting.sock.setblocking(True)
        except OSError:
            _close(waiting.sock)
            return
        try:
            self.hand_over(waiting.sock, waiting.address)
        except Exception:
            log.exception("handing a connection from %s on failed", waiting.source)
            _close(waiting.sock)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting:
            fd, oldest = next(iter(self._waiting.items()))
            if oldest.deadline > now:
                return
            log.info("closed a connection from %s: no association request within %.1f s",
                     oldest.source, self.timeout_s)
            self._close_waiting(fd, "timeout")

    def _close_waiting(self, fd: int, reason: str) -> None:
        waiting = self._unregister(fd)
        if waiting is None:
            return
        if self.on_closed is not None:  # counted before the peer can see the close
            self.on_closed(reason)
        _close(waiting.sock)

    def _forget(self, fd: int) -> None:
        waiting = self._unregister(fd)
        if waiting is not None:
            _close(waiting.sock)

    def _unregister(self, fd: int) -> _Waiting | None:
        waiting = self._waiting.pop(fd, None)
        if waiting is None:
            return None
        mine = self._by_source.get(waiting.source)
        if mine is not None:
            mine.pop(fd, None)
            if not mine:
                del self._by_source[waiting.source]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(waiting.sock)
        return waiting

    @staticmethod
    def _set_lowat(sock: socket.socket, n: int) -> None:
        if _RCVLOWAT is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _RCVLOWAT, n)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
