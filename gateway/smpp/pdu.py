"""Sans-I/O SMPP v3.4 PDU codec: bytes in, ``Pdu`` out, and back.

Every PDU the gateway and the simulator speak is described once, as a table of its
mandatory fields (SMPP v3.4 section 4); one encoder and one decoder walk the table.
Optional parameters (TLVs) are kept as raw ``(tag, value)`` pairs in wire order, so
unknown and vendor TLVs survive a decode/encode unchanged; typed views live in
``gateway.smpp.tlv``.

Decoding never raises anything but ``PduError``, which carries the ``command_status``
to answer with (SMPP v3.4 section 5.1.3) and what was readable of the header, so the
connection can reply and carry on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway.smpp.constants import CommandId, CommandStatus

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = HEADER.size
MAX_PDU_LENGTH = 64 * 1024  # a USSD PDU is a few hundred bytes; this bounds a hostile peer
MAX_SHORT_MESSAGE = 254

ParamValue = int | str | bytes


class Kind(Enum):
    INT1 = 1
    INT4 = 4
    COCTET = "C"  # NUL-terminated ASCII, max length includes the NUL
    SM_LENGTH = "L"  # the octet count of the following short_message
    SHORT_MESSAGE = "S"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    max_length: int = 0  # for COCTET, including the terminating NUL
    bad_status: CommandStatus = CommandStatus.ESME_RINVMSGLEN  # when over max_length
    default: ParamValue = 0


def _c(name: str, max_length: int, bad: CommandStatus = CommandStatus.ESME_RINVPARLEN) -> Param:
    return Param(name, Kind.COCTET, max_length, bad, "")


def _i1(name: str) -> Param:
    return Param(name, Kind.INT1)


S = CommandStatus
_BIND = (
    _c("system_id", 16, S.ESME_RINVSYSID),
    _c("password", 9, S.ESME_RINVPASWD),
    _c("system_type", 13, S.ESME_RINVSYSTYP),
    _i1("interface_version"),
    _i1("addr_ton"),
    _i1("addr_npi"),
    _c("address_range", 41),
)
_SM = (
    _c("service_type", 6, S.ESME_RINVSERTYP),
    _i1("source_addr_ton"),
    _i1("source_addr_npi"),
    _c("source_addr", 21, S.ESME_RINVSRCADR),
    _i1("dest_addr_ton"),
    _i1("dest_addr_npi"),
    _c("destination_addr", 21, S.ESME_RINVDSTADR),
    _i1("esm_class"),
    _i1("protocol_id"),
    _i1("priority_flag"),
    _c("schedule_delivery_time", 17, S.ESME_RINVSCHED),
    _c("validity_period", 17, S.ESME_RINVEXPIRY),
    _i1("registered_delivery"),
    _i1("replace_if_present_flag"),
    _i1("data_coding"),
    _i1("sm_default_msg_id"),
    Param("sm_length", Kind.SM_LENGTH),
    Param("short_message", Kind.SHORT_MESSAGE, default=b""),
)
_DATA_SM = (
    _c("service_type", 6, S.ESME_RINVSERTYP),
    _i1("source_addr_ton"),
    _i1("source_addr_npi"),
    _c("source_addr", 65, S.ESME_RINVSRCADR),
    _i1("dest_addr_ton"),
    _i1("dest_addr_npi"),
    _c("destination_addr", 65, S.ESME_RINVDSTADR),
    _i1("esm_class"),
    _i1("registered_delivery"),
    _i1("data_coding"),
)
_MESSAGE_ID = (_c("message_id", 65, S.ESME_RINVMSGID),)


@dataclass(frozen=True, slots=True)
class Schema:
    params: tuple[Param, ...]
    tlvs_allowed: bool
    names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(p.name for p in self.params))


C = CommandId
SCHEMAS: dict[CommandId, Schema] = {
    C.GENERIC_NACK: Schema((), False),
    C.BIND_RECEIVER: Schema(_BIND, False),
    C.BIND_TRANSMITTER: Schema(_BIND, False),
    C.BIND_TRANSCEIVER: Schema(_BIND, False),
    C.BIND_RECEIVER_RESP: Schema((_c("system_id", 16, S.ESME_RINVSYSID),), True),
    C.BIND_TRANSMITTER_RESP: Schema((_c("system_id", 16, S.ESME_RINVSYSID),), True),
    C.BIND_TRANSCEIVER_RESP: Schema((_c("system_id", 16, S.ESME_RINVSYSID),), True),
    C.OUTBIND: Schema((_c("system_id", 16, S.ESME_RINVSYSID), _c("password", 9)), False),
    C.UNBIND: Schema((), False),
    C.UNBIND_RESP: Schema((), False),
    C.ENQUIRE_LINK: Schema((), False),
    C.ENQUIRE_LINK_RESP: Schema((), False),
    C.SUBMIT_SM: Schema(_SM, True),
    C.SUBMIT_SM_RESP: Schema(_MESSAGE_ID, False),
    C.DELIVER_SM: Schema(_SM, True),
    C.DELIVER_SM_RESP: Schema(_MESSAGE_ID, False),
    C.DATA_SM: Schema(_DATA_SM, True),
    C.DATA_SM_RESP: Schema(_MESSAGE_ID, True),
    C.QUERY_SM: Schema(
        (
            _c("message_id", 65, S.ESME_RINVMSGID),
            _i1("source_addr_ton"),
            _i1("source_addr_npi"),
            _c("source_addr", 21, S.ESME_RINVSRCADR),
        ),
        False,
    ),
    C.QUERY_SM_RESP: Schema(
        (
            _c("message_id", 65, S.ESME_RINVMSGID),
            _c("final_date", 17),
            _i1("message_state"),
            _i1("error_code"),
        ),
        False,
    ),
    C.ALERT_NOTIFICATION: Schema(
        (
            _i1("source_addr_ton"),
            _i1("source_addr_npi"),
            _c("source_addr", 65, S.ESME_RINVSRCADR),
            _i1("esme_addr_ton"),
            _i1("esme_addr_npi"),
            _c("esme_addr", 65),
        ),
        True,
    ),
}


class PduError(Exception):
    """A PDU that cannot be accepted; ``status`` is what to answer with.

    ``command_id`` and ``sequence_number`` are those of the offending PDU when the header
    was readable (0 otherwise), so the receiver can send the matching response or a
    ``generic_nack``. ``fatal`` means the byte stream cannot be re-synchronised.
    """

    def __init__(
        self,
        status: CommandStatus,
        reason: str,
        *,
        command_id: int = 0,
        sequence_number: int = 0,
        fatal: bool = False,
    ) -> None:
        super().__init__(f"{status.name}: {reason}")
        self.status = status
        self.reason = reason
        self.command_id = command_id
        self.sequence_number = sequence_number
        self.fatal = fatal


@dataclass(slots=True)
class Pdu:
    """One SMPP PDU: header, mandatory parameters by their SMPP names, TLVs in wire order.

    For responses an empty ``params`` means "no body", as SMPP sends error responses.
    """

    command_id: CommandId
    sequence_number: int
    command_status: int = 0
    params: dict[str, ParamValue] = field(default_factory=dict)
    tlvs: list[tuple[int, bytes]] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def tlv(self, tag: int) -> bytes | None:
        """The raw value of the first TLV with this tag."""
        for t, value in self.tlvs:
            if t == tag:
                return value
        return None

    def set_tlv(self, tag: int, value: bytes) -> None:
        """Replace (or append) the TLV with this tag."""
        self.tlvs = [(t, v) for t, v in self.tlvs if t != tag]
        self.tlvs.append((tag, value))

    @property
    def status_ok(self) -> bool:
        return self.command_status == CommandStatus.ESME_ROK

    def response(self, status: int = 0, **params: ParamValue) -> Pdu:
        """The response to this request, with default fields when it succeeds."""
        command = self.command_id.response
        if command is CommandId.GENERIC_NACK:
            return Pdu(command, self.sequence_number, status)
        if status == 0 or params:
            return Pdu(command, self.sequence_number, status, with_defaults(command, params))
        return Pdu(command, self.sequence_number, status)


def request(
    command_id: CommandId,
    sequence_number: int,
    *,
    command_status: int = 0,
    tlvs: list[tuple[int, bytes]] | None = None,
    **params: ParamValue,
) -> Pdu:
    """Build a PDU with every mandatory field present (unnamed ones take their defaults)."""
    full = with_defaults(command_id, params)
    return Pdu(command_id, sequence_number, command_status, full, list(tlvs or []))


def with_defaults(command_id: CommandId, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    schema = SCHEMAS[command_id]
    if not schema.names.issuperset(params):
        unknown = sorted(set(params) - schema.names)
        raise TypeError(f"{command_id.name} has no parameter {unknown}")
    full = {p.name: params.get(p.name, p.default) for p in schema.params}
    message = full.get("short_message")
    if isinstance(message, bytes):
        full["sm_length"] = len(message)
    return full


def generic_nack(sequence_number: int, status: CommandStatus) -> Pdu:
    return Pdu(CommandId.GENERIC_NACK, sequence_number, status)


# --- encoding -------------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The wire form of ``pdu``; raises ``ValueError`` for a PDU we must not send."""
    schema = SCHEMAS[pdu.command_id]
    body = bytearray()
    if pdu.params or not pdu.command_id.is_response:
        _encode_params(schema, pdu, body)
    for tag, value in pdu.tlvs:
        if len(value) > 0xFFFF:
            raise ValueError(f"TLV 0x{tag:04X} value longer than 65535 octets")
        body += struct.pack(">HH", tag, len(value))
        body += value
    length = HEADER_LENGTH + len(body)
    return HEADER.pack(length, pdu.command_id, pdu.command_status, pdu.sequence_number) + body


def _encode_params(schema: Schema, pdu: Pdu, body: bytearray) -> None:
    params = pdu.params
    for p in schema.params:
        value = params.get(p.name, p.default)
        if p.kind is Kind.COCTET:
            raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
            if len(raw) + 1 > p.max_length or b"\0" in raw:
                raise ValueError(f"{p.name} must be under {p.max_length} octets, without NUL")
            body += raw
            body.append(0)
        elif p.kind is Kind.SM_LENGTH:
            body.append(len(_short_message(params)))
        elif p.kind is Kind.SHORT_MESSAGE:
            body += _short_message(params)
        else:
            body.append(int(value) & 0xFF)


def _short_message(params: dict[str, ParamValue]) -> bytes:
    message = params.get("short_message", b"")
    if not isinstance(message, bytes):
        raise ValueError("short_message must be bytes (encode the text first)")
    if len(message) > MAX_SHORT_MESSAGE:
        raise ValueError("short_message longer than 254 octets: use message_payload")
    return message


# --- decoding -------------------------------------------------------------------------


def decode(frame: bytes) -> Pdu:
    """Decode exactly one PDU; ``frame`` must be the whole PDU and nothing more."""
    if len(frame) < HEADER_LENGTH:
        raise PduError(S.ESME_RINVCMDLEN, "shorter than a PDU header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    if length < HEADER_LENGTH:
        raise PduError(S.ESME_RINVCMDLEN, f"command_length {length} < 16", sequence_number=sequence)
    if length > len(frame):
        raise PduError(
            S.ESME_RINVMSGLEN,
            f"command_length {length} but {len(frame)} octets",
            command_id=command_id,
            sequence_number=sequence,
        )
    if length < len(frame):
        raise PduError(
            S.ESME_RINVCMDLEN,
            f"command_length {length} but {len(frame)} octets",
            command_id=command_id,
            sequence_number=sequence,
        )
    try:
        command = CommandId(command_id)
    except ValueError:
        raise PduError(
            S.ESME_RINVCMDID,
            f"unknown command_id 0x{command_id:08X}",
            command_id=command_id,
            sequence_number=sequence,
        ) from None
    try:
        params, tlvs = _decode_body(SCHEMAS[command], command, status, frame)
    except PduError as error:
        error.command_id, error.sequence_number = command, sequence
        raise
    return Pdu(command, sequence, status, params, tlvs)


def _decode_body(
    schema: Schema, command: CommandId, status: int, frame: bytes
) -> tuple[dict[str, ParamValue], list[tuple[int, bytes]]]:
    end = len(frame)
    pos = HEADER_LENGTH
    params: dict[str, ParamValue] = {}
    if pos == end and command.is_response and schema.params:
        return params, []  # a response without body (error responses carry none)
    sm_length = 0
    for p in schema.params:
        if p.kind is Kind.COCTET:
            nul = frame.find(b"\0", pos, min(end, pos + p.max_length))
            if nul < 0:
                if end - pos < p.max_length:
                    raise PduError(S.ESME_RINVMSGLEN, f"{p.name} runs past the end")
                raise PduError(p.bad_status, f"{p.name} longer than {p.max_length - 1}")
            params[p.name] = frame[pos:nul].decode("latin-1")
            pos = nul + 1
        elif p.kind is Kind.SHORT_MESSAGE:
            if pos + sm_length > end:
                raise PduError(S.ESME_RINVMSGLEN, "short_message runs past the end")
            params[p.name] = frame[pos : pos + sm_length]
            pos += sm_length
        else:
            if pos >= end:
                raise PduError(S.ESME_RINVMSGLEN, f"{p.name} missing")
            value = frame[pos]
            pos += 1
            params[p.name] = value
            if p.kind is Kind.SM_LENGTH:
                sm_length = value
    if pos == end:
        return params, []
    if not schema.tlvs_allowed:
        raise PduError(S.ESME_RINVCMDLEN, f"{end - pos} octets after the body")
    return params, _decode_tlvs(frame, pos, end)


def _decode_tlvs(frame: bytes, pos: int, end: int) -> list[tuple[int, bytes]]:
    tlvs: list[tuple[int, bytes]] = []
    while pos < end:
        if pos + 4 > end:
            raise PduError(S.ESME_RINVMSGLEN, "the PDU ends inside a TLV header")
        tag, length = struct.unpack_from(">HH", frame, pos)
        pos += 4
        if pos + length > end:
            raise PduError(S.ESME_RINVMSGLEN, f"TLV 0x{tag:04X} runs past the end")
        tlvs.append((tag, frame[pos : pos + length]))
        pos += length
    return tlvs


# --- framing --------------------------------------------------------------------------


class PduStream:
    """Splits a TCP byte stream into PDUs.

    ``feed`` returns, in order, every complete PDU decoded, or the ``PduError`` it raised.
    A bad command_length cannot be skipped over: that error is ``fatal`` and the stream
    stops accepting bytes (the connection answers with generic_nack and closes).
    """

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_length = max_length
        self.broken = False

    def feed(self, data: bytes) -> list[Pdu | PduError]:
        if self.broken:
            return []
        self._buffer += data
        out: list[Pdu | PduError] = []
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= HEADER_LENGTH:
            (length,) = struct.unpack_from(">I", buffer, start)
            if length < HEADER_LENGTH or length > self._max_length:
                _, _, _, sequence = HEADER.unpack_from(buffer, start)
                out.append(
                    PduError(
                        S.ESME_RINVCMDLEN,
                        f"command_length {length} outside 16..{self._max_length}",
                        sequence_number=sequence,
                        fatal=True,
                    )
                )
                self.broken = True
                self._buffer.clear()
                return out
            if len(buffer) - start < length:
                break
            frame = bytes(buffer[start : start + length])
            start += length
            try:
                out.append(decode(frame))
            except PduError as error:
                out.append(error)
        del buffer[:start]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buffer)
