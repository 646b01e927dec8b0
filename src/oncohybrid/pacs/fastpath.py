"""Direct receive path for C-STORE requests on an established pynetdicom association.

pynetdicom handles everything of the DICOM Upper Layer and DIMSE: association
negotiation, release, abort, the state machine, and every message other than a plain
C-STORE request. Per received instance its general path costs about 0.6 ms of Python
(a P-DATA-TF PDU read 4 KiB at a time and decoded into objects, a state-machine event,
DIMSE fragment assembly into a pydicom command dataset, two thread hand-overs, the
response encoded through pydicom), which caps a Python Storage SCP at about a third
of DCMTK's ``storescp``. No library offers a faster path, so this module adds one for
the single hot message only:

* In state Sta6 (association established, PS3.8 §9.2) the DUL thread reads each PDU
  itself. A P-DATA-TF PDU (PS3.8 §9.3.5) is split into its presentation data value
  items; a message whose complete command set (one PDV, message control header 0x03,
  PS3.8 Annex E.2) is a C-STORE-RQ (PS3.7 §9.3.1.1) with a data set, on an accepted
  presentation context of the same SOP class, is received here: data-set fragments
  are joined, handed to the store callback, and the C-STORE-RSP (PS3.7 §9.3.1.2) is
  written to the socket directly.
* Every other PDU, and every other message, is handed to pynetdicom exactly as it
  was received (a PDU holding PDVs of both kinds is split into two valid P-DATA-TF
  PDUs at the message boundary), so C-ECHO, release, abort, invalid PDUs and
  protocol errors keep pynetdicom's behaviour.

Messages never interleave on an association without asynchronous operations (PS3.7
§10.3.3, not negotiated by the listener), so the two paths never share a message.
The fast path triggers none of pynetdicom's notification events (EVT_DATA_RECV,
EVT_PDU_RECV, EVT_C_STORE, EVT_DIMSE_*), which the listener does not use.
"""

from __future__ import annotations

import logging
import select
import ssl
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

C_STORE_RQ = 0x0001
NO_DATA_SET = 0x0101  # Command Data Set Type "no data set" (PS3.7 §E.2)
_UL = struct.Struct(">L")
_HEADER = struct.Struct(">BBL")
_ELEMENT = struct.Struct("<HHL")
_P_DATA_TF = 0x04
FOLLOW_WAIT_S = 0.002  # how long read_pdu waits for a following PDU before returning
MAX_PDUS_PER_TURN = 64  # then pynetdicom's reactor gets a turn (timers, kill flag)



class StoreStatus(NamedTuple):
    """A C-STORE status with the details PS3.7 C.4.2 lets a failure carry.

    `comment` is sent as (0000,0902) *Error Comment* (VR LO, at most 64 characters),
    `offending` as (0000,0901) *Offending Element*; `detail` is only logged.
    """

    status: int
    comment: str = ""
    offending: tuple[int, ...] = ()
    detail: str = ""


# (sop_class_uid, sop_instance_uid, transfer_syntax_uid, data_set, calling_ae) -> status
StoreCallback = Callable[[str, str, str, bytes, str], "int | StoreStatus"]


def _command_element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, elem, len(value)) + value


def _uid_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _lo_value(text: str) -> bytes:
    raw = text[:64].encode("ascii", "replace")
    return raw + b" " if len(raw) % 2 else raw


def encode_store_response(
    sop_class_uid: str, message_id: int, status: int, sop_instance_uid: str,
    *, error_comment: str = "", offending: tuple[int, ...] = (),
) -> bytes:
    """The command set of a C-STORE-RSP (PS3.7 §9.3.1.2, Annex E).

    With `error_comment`/`offending`, the failure details of PS3.7 C.4.2: (0000,0901)
    *Offending Element* (AT, one tag per 4 bytes) and (0000,0902) *Error Comment* (LO,
    truncated to 64 characters, space-padded to even length).

    Implicit VR little endian (PS3.7 §6.3.1), elements in tag order: the bytes
    pynetdicom's DIMSE layer produces for the same response. Its generic encoder (a
    pydicom dataset, encoded twice for the group length) was half of the CPU a received
    instance cost, hence this direct encoding of the one message the SCP sends per
    instance.
    """
    body = b"".join((
        _command_element(0x0002, _uid_value(sop_class_uid)),
        _command_element(0x0100, struct.pack("<H", 0x8001)),  # C-STORE-RSP
        _command_element(0x0120, struct.pack("<H", message_id)),
        _command_element(0x0800, struct.pack("<H", NO_DATA_SET)),
        _command_element(0x0900, struct.pack("<H", status)),
        _command_element(0x0901, b"".join(
            struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in offending
        )) if offending else b"",
        _command_element(0x0902, _lo_value(error_comment)) if error_comment else b"",
        _command_element(0x1000, _uid_value(sop_instance_uid)),
    ))
    return _command_element(0x0000, struct.pack("<I", len(body))) + body


def parse_command(data: bytes | memoryview) -> dict[int, bytes] | None:
    """The elements of a command set (implicit VR little endian, group 0000), or None.

    PS3.7 §6.3.1 and Annex E: a command set holds only group 0000 elements with 4-byte
    lengths. Anything else (another group, a length past the end) is not a command this
    path handles, and None sends the message to pynetdicom.
    """
    out: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if pos + 8 > end:
            return None
        group, elem, length = _ELEMENT.unpack_from(data, pos)
        pos += 8
        if group != 0x0000 or pos + length > end:
            return None
        out[elem] = bytes(data[pos : pos + length])
        pos += length
    return out


def _uid(raw: bytes | None) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii") if raw else ""


def _us(raw: bytes | None) -> int | None:
    return int.from_bytes(raw[:2], "little") if raw is not None and len(raw) >= 2 else None


def _data_set_follows(command: dict[int, bytes] | None) -> bool:
    return command is None or _us(command.get(0x0800)) != NO_DATA_SET


def _recv_exact(sock: Any, n: int) -> bytearray | None:
    """Exactly `n` bytes from `sock`, or None if the connection closed first."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            return None
        got += k
    return buf


class _Store:
    """A C-STORE-RQ being received on the fast path."""

    __slots__ = ("context_id", "message_id", "sop_class", "sop_instance", "fragments")

    def __init__(self, context_id: int, message_id: int, sop_class: str, sop_instance: str):
        self.context_id = context_id
        self.message_id = message_id
        self.sop_class = sop_class
        self.sop_instance = sop_instance
        self.fragments: list[bytes] = []


class DirectStorePath:
    """Receive C-STORE requests of one pynetdicom 3.0 acceptor association directly.

    Installed from EVT_CONN_OPEN (before the DUL thread starts) by :meth:`install`; it
    replaces the DUL's ``_read_pdu_data`` for this association only.
    """

    def __init__(self, assoc: Any, store: StoreCallback) -> None:
        self.assoc = assoc
        self.dul = assoc.dul
        self.store = store
        self._original_read = self.dul._read_pdu_data
        self._fast: _Store | None = None  # a fast-path C-STORE awaiting data-set fragments
        self._slow = False  # a message pynetdicom is receiving
        self._slow_command = bytearray()
        self._storage_contexts: dict[int, tuple[str, str]] | None = None
        self._no_common_extended: bool | None = None

    @classmethod
    def install(cls, assoc: Any, store: StoreCallback) -> DirectStorePath | None:
        dul = assoc.dul
        needed = ("_read_pdu_data", "_decode_pdu", "_recv_pdu", "event_queue", "state_machine")
        if not all(hasattr(dul, name) for name in needed):
            return None  # not the pynetdicom internals this was written for
        path = cls(assoc, store)
        dul._read_pdu_data = path.read_pdu
        return path

    # -- reading --------------------------------------------------------------------

    def read_pdu(self) -> None:
        """Replacement of ``DULServiceProvider._read_pdu_data`` (same events on errors).

        After a P-DATA-TF PDU that this path took in full, the next one usually follows
        within a round trip (the data set after its command, the next request after
        our response); it is read here, waiting at most ``FOLLOW_WAIT_S``, rather than
        after another turn of pynetdicom's reactor loop (several system calls and
        queue checks per PDU). The loop hands control back as soon as anything is
        queued for pynetdicom.
        """
        dul = self.dul
        if dul.state_machine.current_state != "Sta6":
            self._original_read()
            return
        sock = getattr(dul.socket, "socket", None)
        if sock is None:
            self._original_read()
            return
        # data buffered inside a TLS socket is invisible to select(): one PDU per turn
        follow = not isinstance(sock, ssl.SSLSocket)
        for _ in range(MAX_PDUS_PER_TURN):
            self._read_one(sock)
            if (
                not follow
                or dul._kill_thread
                or dul.event_queue.qsize()
                or dul.to_provider_queue.qsize()
                or dul.state_machine.current_state != "Sta6"
            ):
                return
            try:
                readable, _, _ = select.select([sock], [], [], FOLLOW_WAIT_S)
            except (OSError, ValueError):
                return
            if not readable:
                return

    def _read_one(self, sock: Any) -> None:
        dul = self.dul
        try:
            header = _recv_exact(sock, 6)
            if header is None:
                dul.event_queue.put("Evt17")  # transport connection closed
                return
            pdu_type, _, length = _HEADER.unpack(header)
            if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
                log.error("unknown PDU type 0x%02X received", pdu_type)
                dul.event_queue.put("Evt19")  # unrecognised PDU
                return
            body = _recv_exact(sock, length)
        except OSError:
            dul.event_queue.put("Evt17")
            return
        if body is None:
            dul.event_queue.put("Evt17")
            return
        if pdu_type != _P_DATA_TF:
            self._deliver(bytes(header) + body)
            return
        self._p_data(body)

    def _deliver(self, pdu: bytes) -> None:
        """Hand a PDU to pynetdicom (the end of its ``_read_pdu_data``, PS3.8 §9.2)."""
        dul = self.dul
        try:
            decoded, event = dul._decode_pdu(pdu)
        except Exception:
            log.exception("unable to decode a received PDU")
            dul.event_queue.put("Evt19")
            return
        dul.event_queue.put(event)
        dul._recv_pdu.put(decoded)

    def _deliver_items(self, items: list[bytes]) -> None:
        if items:
            body = b"".join(items)
            self._deliver(_HEADER.pack(_P_DATA_TF, 0, len(body)) + body)

    # -- P-DATA-TF --------------------------------------------------------------------

    def _p_data(self, body: bytearray) -> None:
        view = memoryview(body)
        pdvs: list[tuple[int, int, int, int]] = []  # (context id, control, start, end)
        pos, end = 0, len(body)
        while pos < end:
            if pos + 6 > end:
                self._to_pynetdicom(body)
                return
            (item_length,) = _UL.unpack_from(body, pos)
            if item_length < 2 or pos + 4 + item_length > end:
                self._to_pynetdicom(body)  # malformed: pynetdicom's decoder reports it
                return
            pdvs.append((body[pos + 4], body[pos + 5], pos + 6, pos + 4 + item_length))
            pos += 4 + item_length
        slow: list[bytes] = []
        for context_id, control, start, stop in pdvs:
            is_command, is_last = bool(control & 0x01), bool(control & 0x02)
            fragment = view[start:stop]
            if self._fast is not None:
                if is_command or context_id != self._fast.context_id:
                    # PS3.8 Annex E: fragments of one message, data set after command
                    log.error("C-STORE data set interrupted by another message: "
                              "the request is dropped")
                    self._fast = None
                else:
                    self._fast.fragments.append(bytes(fragment))
                    if is_last:
                        self._deliver_items(slow)
                        slow = []
                        self._complete(self._fast)
                        self._fast = None
                    continue
            if not self._slow and is_command and is_last:
                store = self._start(context_id, fragment)
                if store is not None:
                    self._deliver_items(slow)
                    slow = []
                    self._fast = store
                    continue
            # pynetdicom receives this message; note where it ends
            self._slow = True
            if is_command:
                self._slow_command += fragment
                if is_last:
                    if not _data_set_follows(parse_command(self._slow_command)):
                        self._slow = False
                    self._slow_command = bytearray()
            elif is_last:
                self._slow = False
            slow.append(body[start - 6 : stop])
        self._deliver_items(slow)

    def _to_pynetdicom(self, body: bytearray) -> None:
        self._deliver(_HEADER.pack(_P_DATA_TF, 0, len(body)) + bytes(body))

    def _plain_storage(self) -> bool:
        """No SOP Class Common Extended Negotiation (PS3.7 Annex D.3.3.6) was accepted.

        That negotiation can map a SOP class to another service class, which only
        pynetdicom's dispatch honours. Fixed once the association is established.
        """
        if self._no_common_extended is None:
            try:
                self._no_common_extended = not self.assoc.acceptor.accepted_common_extended
            except Exception:  # not the attribute this was written for: stay on pynetdicom
                self._no_common_extended = False
        return self._no_common_extended

    def _accepted_storage(self) -> dict[int, tuple[str, str]]:
        """Accepted presentation contexts: id -> (abstract syntax, transfer syntax)."""
        if self._storage_contexts is None:
            contexts: dict[int, tuple[str, str]] = {}
            for cx in getattr(self.assoc, "_accepted_cx", {}).values():
                if cx.context_id is not None and cx.transfer_syntax:
                    contexts[int(cx.context_id)] = (
                        str(cx.abstract_syntax), str(cx.transfer_syntax[0])
                    )
            self._storage_contexts = contexts
        return self._storage_contexts

    def _start(self, context_id: int, command_bytes: memoryview) -> _Store | None:
        """A fast-path C-STORE if this complete command is one we take, else None."""
        assoc = self.assoc
        if getattr(assoc, "_sent_release", True) or not self._plain_storage():
            return None
        command = parse_command(command_bytes)
        if command is None or _us(command.get(0x0100)) != C_STORE_RQ:
            return None
        message_id = _us(command.get(0x0110))
        sop_class = _uid(command.get(0x0002))
        sop_instance = _uid(command.get(0x1000))
        if (
            message_id is None
            or not sop_class
            or not sop_instance
            or _us(command.get(0x0700)) is None  # Priority is required (PS3.7 Table 9.3-1)
            or not _data_set_follows(command)
        ):
            return None  # pynetdicom answers invalid requests its way
        context = self._accepted_storage().get(context_id)
        if context is None or context[0] != sop_class or sop_class == "1.2.840.10008.1.1":
            return None
        return _Store(context_id, message_id, sop_class, sop_instance)

    def _complete(self, store: _Store) -> None:
        _abstract, transfer_syntax = self._accepted_storage()[store.context_id]
        calling_ae = str(getattr(self.assoc.requestor, "ae_title", "") or "")
        data = store.fragments[0] if len(store.fragments) == 1 else b"".join(store.fragments)
        try:
            reply = self.store(store.sop_class, store.sop_instance, transfer_syntax, data,
                               calling_ae)
        except Exception:  # PS3.4 Table B.2-1: Cxxx "cannot understand"
            log.exception("the C-STORE handler failed")
            reply = 0xC211
        if isinstance(reply, StoreStatus):
            command = encode_store_response(
                store.sop_class, store.message_id, reply.status, store.sop_instance,
                error_comment=reply.comment, offending=reply.offending,
            )
        else:
            command = encode_store_response(store.sop_class, store.message_id, reply,
                                            store.sop_instance)
        # one PDV: presentation context, message control header 0x03 (command, last)
        pdv = _UL.pack(len(command) + 2) + bytes((store.context_id, 0x03)) + command
        try:
            self.dul.socket.socket.sendall(_HEADER.pack(_P_DATA_TF, 0, len(pdv)) + pdv)
        except (OSError, AttributeError):
            self.dul.event_queue.put("Evt17")  # transport connection closed
