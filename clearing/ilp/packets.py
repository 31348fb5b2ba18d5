"""ILPv4 packets (IL-RFC 27): Prepare, Fulfill and Reject, encoded with OER.

Every packet is ``type (uint8) || var-octet-string(fields)``; the type octets are
12 (Prepare), 13 (Fulfill) and 14 (Reject). Decoding is strict: the fields must fill
the envelope exactly and nothing may follow it, so decoding and re-encoding a packet
reproduces its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final

from clearing.ilp.addresses import IlpAddress
from clearing.ilp.oer import UINT64_MAX, IlpCodecError, Reader, Writer

CONDITION_LENGTH: Final = 32
FULFILLMENT_LENGTH: Final = 32
MAX_DATA_LENGTH: Final = 32767
MAX_MESSAGE_LENGTH: Final = 8191
TIMESTAMP_LENGTH: Final = 17  # YYYYMMDDHHMMSSmmm, always UTC
_TIMESTAMP: Final = re.compile(rb"[0-9]{17}")
_ERROR_CODE: Final = re.compile(r"[FTR][0-9A-Z]{2}")


class IlpPacketError(IlpCodecError):
    """A packet whose fields break the ILPv4 rules (sizes, ranges, dates, codes)."""


class PacketType(IntEnum):
    PREPARE = 12
    FULFILL = 13
    REJECT = 14


def _check_size(name: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise IlpPacketError(f"{name} must be {length} octets, got {len(value)}")


def _check_data(data: bytes) -> None:
    if len(data) > MAX_DATA_LENGTH:
        raise IlpPacketError(f"data of {len(data)} octets exceeds {MAX_DATA_LENGTH}")


@dataclass(frozen=True, slots=True)
class Prepare:
    amount: int
    expires_at: datetime
    execution_condition: bytes
    destination: IlpAddress
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.amount <= UINT64_MAX:
            raise IlpPacketError(f"amount {self.amount} is outside 0..2**64-1")
        if self.expires_at.utcoffset() is None:
            raise IlpPacketError("expires_at must be timezone-aware")
        if self.expires_at.microsecond % 1000:
            raise IlpPacketError("expires_at must be a whole number of milliseconds")
        try:
            self.expires_at.astimezone(UTC)
        except OverflowError:
            raise IlpPacketError("expires_at is outside the years 0001-9999 in UTC") from None
        _check_size("execution_condition", self.execution_condition, CONDITION_LENGTH)
        if not isinstance(self.destination, IlpAddress):
            raise IlpPacketError("destination must be an IlpAddress")
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class Fulfill:
    fulfillment: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_size("fulfillment", self.fulfillment, FULFILLMENT_LENGTH)
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    triggered_by: IlpAddress | None
    message: str = ""
    data: bytes = b""

    def __post_init__(self) -> None:
        if not _ERROR_CODE.fullmatch(self.code):
            raise IlpPacketError(f"error code {self.code!r} is not F/T/R and two characters")
        if self.triggered_by is not None and not isinstance(self.triggered_by, IlpAddress):
            raise IlpPacketError("triggered_by must be an IlpAddress or None")
        if len(_utf8(self.message)) > MAX_MESSAGE_LENGTH:
            raise IlpPacketError(f"message exceeds {MAX_MESSAGE_LENGTH} octets")
        _check_data(self.data)


Packet = Prepare | Fulfill | Reject


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise IlpPacketError(f"text is not encodable as UTF-8: {error}") from None


def encode_timestamp(moment: datetime) -> bytes:
    """The 17-character UTC form ``YYYYMMDDHHMMSSmmm``."""
    utc = moment.astimezone(UTC)
    text = f"{utc.year:04d}{utc:%m%d%H%M%S}{utc.microsecond // 1000:03d}"  # %Y is unpadded
    return text.encode("ascii")


def decode_timestamp(raw: bytes) -> datetime:
    if not _TIMESTAMP.fullmatch(raw):
        raise IlpPacketError(f"timestamp {raw!r} is not 17 digits YYYYMMDDHHMMSSmmm")
    text = raw.decode("ascii")
    try:
        moment = parse_civil_time(text)
    except ValueError:
        raise IlpPacketError(f"timestamp {text} is not a valid date and time") from None
    return moment.replace(microsecond=int(text[14:]) * 1000, tzinfo=UTC)


def parse_civil_time(text: str) -> datetime:
    """``YYYYMMDDHHMMSS`` from fixed-width digit slices (strptime would accept 1-digit fields)."""
    year, month, day, hour, minute, second = (
        int(text[start:end]) for start, end in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))
    )
    return datetime(year, month, day, hour, minute, second)


def _decode_address(raw: bytes, what: str) -> IlpAddress:
    try:
        return IlpAddress(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise IlpPacketError(f"{what} is not ASCII") from None


def encode_packet(packet: Packet) -> bytes:
    fields = Writer()
    if isinstance(packet, Prepare):
        packet_type = PacketType.PREPARE
        fields.write_uint(packet.amount, 8)
        fields.write_octets(encode_timestamp(packet.expires_at))
        fields.write_octets(packet.execution_condition)
        fields.write_var_octet_string(packet.destination.encode("ascii"))
    elif isinstance(packet, Fulfill):
        packet_type = PacketType.FULFILL
        fields.write_octets(packet.fulfillment)
    else:
        packet_type = PacketType.REJECT
        fields.write_octets(packet.code.encode("ascii"))
        fields.write_var_octet_string((packet.triggered_by or "").encode("ascii"))
        fields.write_var_octet_string(_utf8(packet.message))
    fields.write_var_octet_string(packet.data)
    envelope = Writer()
    envelope.write_uint(packet_type, 1)
    envelope.write_var_octet_string(bytes(fields))
    return bytes(envelope)


def _decode_prepare(fields: Reader) -> Prepare:
    amount = fields.read_uint(8)
    expires_at = decode_timestamp(fields.read_octets(TIMESTAMP_LENGTH))
    condition = fields.read_octets(CONDITION_LENGTH)
    destination = _decode_address(fields.read_var_octet_string(), "destination")
    return Prepare(amount, expires_at, condition, destination, fields.read_var_octet_string())


def _decode_fulfill(fields: Reader) -> Fulfill:
    fulfillment = fields.read_octets(FULFILLMENT_LENGTH)
    return Fulfill(fulfillment, fields.read_var_octet_string())


def _decode_reject(fields: Reader) -> Reject:
    try:
        code = fields.read_octets(3).decode("ascii")
    except UnicodeDecodeError:
        raise IlpPacketError("error code is not ASCII") from None
    raw_triggered_by = fields.read_var_octet_string()
    triggered_by = _decode_address(raw_triggered_by, "triggered_by") if raw_triggered_by else None
    try:
        message = fields.read_var_octet_string().decode("utf-8")
    except UnicodeDecodeError:
        raise IlpPacketError("message is not UTF-8") from None
    return Reject(code, triggered_by, message, fields.read_var_octet_string())


_DECODERS: Final[dict[PacketType, Callable[[Reader], Packet]]] = {
    PacketType.PREPARE: _decode_prepare,
    PacketType.FULFILL: _decode_fulfill,
    PacketType.REJECT: _decode_reject,
}


def decode_packet(data: bytes) -> Packet:
    """Decode one ILPv4 packet; raises an ``IlpCodecError`` subclass for any bad input."""
    envelope = Reader(data)
    type_octet = envelope.read_uint(1)
    if type_octet not in _DECODERS:
        raise IlpPacketError(f"unknown ILPv4 packet type {type_octet}")
    fields = Reader(envelope.read_var_octet_string())
    envelope.expect_end()
    packet = _DECODERS[PacketType(type_octet)](fields)
    fields.expect_end()
    return packet
