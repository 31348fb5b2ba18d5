"""Typed views of the optional parameters (TLVs) the gateway reads and writes.

The codec keeps TLVs as raw bytes; these helpers give them meaning. Reading a TLV whose
value has the wrong size raises ``TlvValueError``, which a receiver answers with
``ESME_RINVOPTPARAMVAL`` instead of dropping the connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.smpp.constants import Tag
from gateway.smpp.pdu import Pdu


class TlvValueError(ValueError):
    def __init__(self, tag: int, reason: str) -> None:
        super().__init__(f"TLV 0x{tag:04X}: {reason}")
        self.tag = tag


@dataclass(frozen=True, slots=True)
class ItsSessionInfo:
    """``its_session_info`` (SMPP v3.4 section 5.3.2.43).

    Octet 1 is the session number; octet 2 carries the dialogue-unit sequence number in
    bits 7..1 and the end-of-session indicator in bit 0.
    """

    session_number: int
    sequence: int = 0
    end: bool = False

    def to_bytes(self) -> bytes:
        return bytes((self.session_number & 0xFF, ((self.sequence & 0x7F) << 1) | self.end))

    @classmethod
    def from_bytes(cls, value: bytes) -> ItsSessionInfo:
        if len(value) != 2:
            raise TlvValueError(Tag.ITS_SESSION_INFO, f"{len(value)} octets, expected 2")
        return cls(value[0], value[1] >> 1, bool(value[1] & 1))


def read_int(pdu: Pdu, tag: int, size: int) -> int | None:
    """The unsigned integer TLV ``tag`` of ``size`` octets, or None when absent."""
    value = pdu.tlv(tag)
    if value is None:
        return None
    if len(value) != size:
        raise TlvValueError(tag, f"{len(value)} octets, expected {size}")
    return int.from_bytes(value, "big")


def write_int(pdu: Pdu, tag: int, size: int, value: int) -> None:
    pdu.set_tlv(tag, value.to_bytes(size, "big"))


def read_cstring(pdu: Pdu, tag: int) -> str | None:
    """A NUL-terminated string TLV (a missing terminator is tolerated)."""
    value = pdu.tlv(tag)
    if value is None:
        return None
    return value.split(b"\0", 1)[0].decode("latin-1")


def write_cstring(pdu: Pdu, tag: int, value: str) -> None:
    pdu.set_tlv(tag, value.encode("latin-1") + b"\0")


def ussd_service_op(pdu: Pdu) -> int | None:
    return read_int(pdu, Tag.USSD_SERVICE_OP, 1)


def its_session_info(pdu: Pdu) -> ItsSessionInfo | None:
    value = pdu.tlv(Tag.ITS_SESSION_INFO)
    return None if value is None else ItsSessionInfo.from_bytes(value)


def user_message_reference(pdu: Pdu) -> int | None:
    return read_int(pdu, Tag.USER_MESSAGE_REFERENCE, 2)


def message_state(pdu: Pdu) -> int | None:
    return read_int(pdu, Tag.MESSAGE_STATE, 1)


def receipted_message_id(pdu: Pdu) -> str | None:
    return read_cstring(pdu, Tag.RECEIPTED_MESSAGE_ID)


def message_payload(pdu: Pdu) -> bytes | None:
    return pdu.tlv(Tag.MESSAGE_PAYLOAD)


def message_text_bytes(pdu: Pdu) -> bytes:
    """The message octets, from ``message_payload`` when present, else ``short_message``."""
    payload = pdu.tlv(Tag.MESSAGE_PAYLOAD)
    if payload is not None:
        return payload
    return pdu.params.get("short_message", b"")  # type: ignore[return-value]
