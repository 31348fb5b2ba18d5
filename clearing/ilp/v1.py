"""The 2017 ILPv1 packets (interledgerjs/ilp-packet v2): payment, error, fulfillment,
forwarded payment and rejection.

Each is ``type (uint8) || var-octet-string(fields)``, and each field list ends with an
empty extensions sequence (one ``00`` octet). Addresses here are 2017 addresses: ASCII,
at most 1023 characters, without the later allocation-scheme rule (the deployed
network used ``levelone.<dfsp>.``), so they are plain ``str``. ILQP quote packets
(types 2-7) are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final

from clearing.ilp.addresses import MAX_ADDRESS_LENGTH
from clearing.ilp.oer import UINT64_MAX, IlpCodecError, Reader, Writer
from clearing.ilp.packets import parse_civil_time

MAX_DATA_LENGTH: Final = 32767
MAX_FORWARDED_BY: Final = 64
_GENERALIZED_TIME: Final = re.compile(r"[0-9]{14}\.[0-9]{3}Z")
_ERROR_CODE: Final = re.compile(r"[A-Z][0-9A-Z]{2}")


class IlpV1PacketError(IlpCodecError):
    """An ILPv1 packet whose fields break the 2017 packet rules."""


class V1PacketType(IntEnum):
    PAYMENT = 1
    ERROR = 8
    FULFILLMENT = 9
    FORWARDED_PAYMENT = 10
    REJECTION = 11


def _check_address(address: str, what: str, *, may_be_empty: bool = False) -> None:
    if not address and not may_be_empty:
        raise IlpV1PacketError(f"{what} is empty")
    if len(address) > MAX_ADDRESS_LENGTH or not address.isascii():
        raise IlpV1PacketError(f"{what} is not ASCII of at most {MAX_ADDRESS_LENGTH} chars")


def _check_code(code: str) -> None:
    if not _ERROR_CODE.fullmatch(code):
        raise IlpV1PacketError(f"error code {code!r} is not a letter and two characters")


def _check_data(data: bytes) -> None:
    if len(data) > MAX_DATA_LENGTH:
        raise IlpV1PacketError(f"data of {len(data)} octets exceeds {MAX_DATA_LENGTH}")


@dataclass(frozen=True, slots=True)
class Payment:
    amount: int
    account: str
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.amount <= UINT64_MAX:
            raise IlpV1PacketError(f"amount {self.amount} is outside 0..2**64-1")
        _check_address(self.account, "account")
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class ForwardedPayment:
    account: str
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_address(self.account, "account")
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class Fulfillment:
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    triggered_by: str
    message: str = ""
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_code(self.code)
        _check_address(self.triggered_by, "triggered_by", may_be_empty=True)
        _check_data(self.data)


@dataclass(frozen=True, slots=True)
class ErrorPacket:
    code: str
    name: str
    triggered_by: str
    forwarded_by: tuple[str, ...]
    triggered_at: datetime
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_code(self.code)
        if not self.name.isascii():
            raise IlpV1PacketError("error name must be ASCII")
        _check_address(self.triggered_by, "triggered_by", may_be_empty=True)
        if len(self.forwarded_by) > MAX_FORWARDED_BY:
            raise IlpV1PacketError(f"more than {MAX_FORWARDED_BY} forwarded_by addresses")
        for address in self.forwarded_by:
            _check_address(address, "forwarded_by address")
        if self.triggered_at.utcoffset() is None or self.triggered_at.microsecond % 1000:
            raise IlpV1PacketError("triggered_at must be timezone-aware, whole milliseconds")
        try:
            self.triggered_at.astimezone(UTC)
        except OverflowError:
            raise IlpV1PacketError("triggered_at is outside the years 0001-9999 in UTC") from None
        _check_data(self.data)


V1Packet = Payment | ErrorPacket | Fulfillment | ForwardedPayment | Rejection


def _encode_generalized_time(moment: datetime) -> bytes:
    utc = moment.astimezone(UTC)
    text = f"{utc.year:04d}{utc:%m%d%H%M%S}.{utc.microsecond // 1000:03d}Z"  # %Y is unpadded
    return text.encode("ascii")


def _decode_generalized_time(raw: bytes) -> datetime:
    text = raw.decode("ascii", errors="replace")
    if not _GENERALIZED_TIME.fullmatch(text):
        raise IlpV1PacketError(f"triggered_at {text!r} is not YYYYMMDDHHMMSS.fffZ")
    try:
        moment = parse_civil_time(text)
    except ValueError:
        raise IlpV1PacketError(f"triggered_at {text} is not a valid date and time") from None
    return moment.replace(microsecond=int(text[15:18]) * 1000, tzinfo=UTC)


def _text(raw: bytes, what: str, encoding: str = "ascii") -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise IlpV1PacketError(f"{what} is not {encoding}") from None


def _encode_fields(packet: V1Packet, fields: Writer) -> V1PacketType:
    if isinstance(packet, Payment):
        fields.write_uint(packet.amount, 8)
        fields.write_var_octet_string(packet.account.encode("ascii"))
        return V1PacketType.PAYMENT
    if isinstance(packet, ForwardedPayment):
        fields.write_var_octet_string(packet.account.encode("ascii"))
        return V1PacketType.FORWARDED_PAYMENT
    if isinstance(packet, Fulfillment):
        return V1PacketType.FULFILLMENT
    fields.write_octets(packet.code.encode("ascii"))
    if isinstance(packet, Rejection):
        fields.write_var_octet_string(packet.triggered_by.encode("ascii"))
        try:
            fields.write_var_octet_string(packet.message.encode("utf-8"))
        except UnicodeEncodeError:
            raise IlpV1PacketError("message is not encodable as UTF-8") from None
        return V1PacketType.REJECTION
    fields.write_var_octet_string(packet.name.encode("ascii"))
    fields.write_var_octet_string(packet.triggered_by.encode("ascii"))
    fields.write_var_uint(len(packet.forwarded_by))
    for address in packet.forwarded_by:
        fields.write_var_octet_string(address.encode("ascii"))
    fields.write_var_octet_string(_encode_generalized_time(packet.triggered_at))
    return V1PacketType.ERROR


def encode_v1_packet(packet: V1Packet) -> bytes:
    fields = Writer()
    packet_type = _encode_fields(packet, fields)
    fields.write_var_octet_string(packet.data)
    fields.write_uint(0, 1)  # empty extensions
    envelope = Writer()
    envelope.write_uint(packet_type, 1)
    envelope.write_var_octet_string(bytes(fields))
    return bytes(envelope)


def _decode_payment(fields: Reader) -> Payment:
    amount = fields.read_uint(8)
    account = _text(fields.read_var_octet_string(), "account")
    return Payment(amount, account, fields.read_var_octet_string())


def _decode_forwarded_payment(fields: Reader) -> ForwardedPayment:
    account = _text(fields.read_var_octet_string(), "account")
    return ForwardedPayment(account, fields.read_var_octet_string())


def _decode_fulfillment(fields: Reader) -> Fulfillment:
    return Fulfillment(fields.read_var_octet_string())


def _decode_rejection(fields: Reader) -> Rejection:
    code = _text(fields.read_octets(3), "code")
    triggered_by = _text(fields.read_var_octet_string(), "triggered_by")
    message = _text(fields.read_var_octet_string(), "message", "utf-8")
    return Rejection(code, triggered_by, message, fields.read_var_octet_string())


def _decode_error(fields: Reader) -> ErrorPacket:
    code = _text(fields.read_octets(3), "code")
    name = _text(fields.read_var_octet_string(), "name")
    triggered_by = _text(fields.read_var_octet_string(), "triggered_by")
    count = fields.read_var_uint()
    if count > MAX_FORWARDED_BY:
        raise IlpV1PacketError(f"{count} forwarded_by addresses exceed {MAX_FORWARDED_BY}")
    forwarded_by = tuple(
        _text(fields.read_var_octet_string(), "forwarded_by address") for _ in range(count)
    )
    triggered_at = _decode_generalized_time(fields.read_var_octet_string())
    data = fields.read_var_octet_string()
    return ErrorPacket(code, name, triggered_by, forwarded_by, triggered_at, data)


_DECODERS: Final[dict[V1PacketType, Callable[[Reader], V1Packet]]] = {
    V1PacketType.PAYMENT: _decode_payment,
    V1PacketType.ERROR: _decode_error,
    V1PacketType.FULFILLMENT: _decode_fulfillment,
    V1PacketType.FORWARDED_PAYMENT: _decode_forwarded_payment,
    V1PacketType.REJECTION: _decode_rejection,
}


def decode_v1_packet(data: bytes) -> V1Packet:
    """Decode one ILPv1 packet; raises an ``IlpCodecError`` subclass for any bad input."""
    envelope = Reader(data)
    type_octet = envelope.read_uint(1)
    if type_octet not in _DECODERS:
        raise IlpV1PacketError(f"unsupported ILPv1 packet type {type_octet}")
    fields = Reader(envelope.read_var_octet_string())
    envelope.expect_end()
    packet = _DECODERS[V1PacketType(type_octet)](fields)
    if fields.read_uint(1) != 0:
        raise IlpV1PacketError("non-empty extensions are not supported")
    fields.expect_end()
    return packet
