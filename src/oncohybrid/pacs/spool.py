"""The spool: received instances as PS3.10 files, written before they are acknowledged.

A received data set is written, exactly as the sender encoded it and behind a File Meta
Information header encoded here (PS3.10 §7.1), under a temporary name and renamed into
place (atomic on POSIX); only then is it acknowledged (PS3.4 §B.2.3). :class:`SpoolBound`
keeps the spool bounded: instances acknowledged but not yet indexed are counted across
the listener and its receiver processes, and above the bound a C-STORE waits for room
(its acknowledgement is delayed) and is finally refused with A700 Out of Resources
(PS3.4 Table B.2-1).
"""


import logging
import multiprocessing
import os
import struct
import time
from typing import Any

from pynetdicom import (
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
)

log = logging.getLogger(__name__)


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



#: Default bound of the spool: instances acknowledged but not yet indexed. At ~10-500 KiB
#: an instance that is 20 MiB - 1 GiB of disk, and a few seconds of indexing.
MAX_SPOOLED = 2000
#: How long a C-STORE waits for room in a full spool before it is refused with A700.
#: Below pynetdicom's default DIMSE timeout (30 s) so that its senders see the refusal.
SPOOL_WAIT_S = 20.0
_SPOOL_POLL_S = 0.005


class SpoolBound:
    """Instances acknowledged but not yet indexed, counted across processes, and their bound.

    The listener's receivers add one before each acknowledgement, its indexers take them
    off once indexed (or set aside). While the count is at ``limit`` a C-STORE waits
    (back-pressure: the sender's next instance waits for this acknowledgement), at most
    ``wait_s``, then the instance is refused with A700 *Out of Resources* (PS3.4 Table
    B.2-1: the sender may retry later). The counter is a shared
    :func:`multiprocessing.Value` so that receiver processes (spawned, the counter passed
    at start) see the listener's indexing. ``limit`` 0: unbounded.
    """

    def __init__(self, limit: int = MAX_SPOOLED, wait_s: float = SPOOL_WAIT_S,
                 counter: Any = None) -> None:
        self.limit = max(0, int(limit))
        self.wait_s = wait_s
        self.counter = (
            counter if counter is not None
            else multiprocessing.get_context("spawn").Value("q", 0)
        )

    @property
    def backlog(self) -> int:
        """Acknowledged instances not yet indexed."""
        return int(self.counter.value)

    def add(self, n: int = 1) -> None:
        with self.counter.get_lock():
            self.counter.value += n

    def wait_for_room(self) -> str:
        """``"free"``, ``"delayed"`` (waited for the indexers) or ``"full"`` (refuse)."""
        if not self.limit or self.counter.value < self.limit:
            return "free"
        deadline = time.monotonic() + self.wait_s
        while self.counter.value >= self.limit:
            if time.monotonic() > deadline:
                return "full"
            time.sleep(_SPOOL_POLL_S)
        return "delayed"
