"""How one carrier carries USSD dialogues in SMPP: a dialect, as configuration.

Carriers agree on SMPP but not on USSD over it: where the session id travels, which
``ussd_service_op`` values mean continue or end, how an abort looks, which
``data_coding`` they use for GSM 7-bit. A ``Dialect`` names those choices; the functions
here turn a USSD dialogue unit (``UssdMessage``) into a PDU and back, in both
directions, so the gateway (application side) and the simulator (network side) share
one definition. Sans-I/O.

Directions: *mobile-originated* units travel network -> application in ``deliver_sm``
(or ``data_sm``); *mobile-terminated* units travel application -> network in
``submit_sm`` (or ``data_sm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from gateway.smpp.constants import CommandId, CommandStatus, Tag, UssdServiceOp
from gateway.smpp.gsm0338 import DataCoding, ScreenLimits, decode_text, encode_text
from gateway.smpp.pdu import MAX_SHORT_MESSAGE, Pdu, with_defaults
from gateway.smpp.tlv import (
    ItsSessionInfo,
    TlvValueError,
    message_text_bytes,
    read_int,
    write_int,
)

Op = UssdServiceOp


class UssdAction(Enum):
    """What a dialogue unit does to the dialogue."""

    BEGIN = "begin"  # MO: the subscriber dialled a service code (PSSR indication)
    CONTINUE = "continue"  # MO: the subscriber's answer; MT: a screen that expects one
    END = "end"  # MT: the last screen, the dialogue is released
    ABORT = "abort"  # MO: the subscriber or the network ended the dialogue
    NOTIFY = "notify"  # MT: a notification screen (USSN), no answer expected
    NOTIFY_ACK = "notify_ack"  # MO: the handset acknowledged a notification


class SessionKey(Enum):
    """Where the carrier session id travels."""

    ITS_SESSION_INFO = "its_session_info"
    USER_MESSAGE_REFERENCE = "user_message_reference"
    MSISDN_ONLY = "msisdn"  # no session id: the MSISDN alone identifies the dialogue


class DialectError(ValueError):
    """A PDU that does not fit the dialect; ``status`` is the command_status to answer."""

    def __init__(self, status: CommandStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class UssdMessage:
    action: UssdAction
    msisdn: str
    service_code: str  # the short code the dialogue belongs to, e.g. "123"
    text: str = ""
    session_id: int | None = None


@dataclass(frozen=True)
class Dialect:
    name: str
    session_key: SessionKey = SessionKey.ITS_SESSION_INFO
    service_type: str = "USSD"
    command: CommandId = CommandId.SUBMIT_SM  # MT command; MO arrives as deliver_sm or data_sm
    gsm_data_coding: int = DataCoding.SMSC_DEFAULT
    # MO operations
    begin_ops: frozenset[int] = frozenset({Op.PSSR_INDICATION})
    continue_ops: frozenset[int] = frozenset({Op.USSR_CONFIRM})
    abort_ops: frozenset[int] = frozenset()
    notify_ack_ops: frozenset[int] = frozenset({Op.USSN_CONFIRM})
    end_bit_aborts: bool = True  # an MO unit with the end-of-session bit set is an abort
    # MT operations
    continue_op: int = Op.USSR_REQUEST
    end_op: int = Op.PSSR_RESPONSE
    notify_op: int = Op.USSN_REQUEST
    end_bit_on_end: bool = True
    limits: ScreenLimits = field(default_factory=ScreenLimits)
    # Timers, in seconds (operators commonly set 180 / 30 / 15).
    dialogue_timeout: float = 180.0
    screen_timeout: float = 30.0
    application_timeout: float = 15.0

    def __post_init__(self) -> None:
        end_bit = self.session_key is SessionKey.ITS_SESSION_INFO
        if not self.abort_ops and not (end_bit and self.end_bit_aborts):
            raise ValueError(
                f"dialect {self.name!r} has no way to signal an abort: give it abort_ops,"
                " or carry the session in its_session_info with end_bit_aborts"
            )

    def with_timers(self, dialogue: float, screen: float, application: float) -> Dialect:
        return replace(
            self, dialogue_timeout=dialogue, screen_timeout=screen, application_timeout=application
        )


STANDARD = Dialect(name="standard")
"""SMPP v3.4 as written: ``its_session_info`` with its end bit, PSSR/USSR operations."""

UMR_VARIANT = Dialect(
    name="umr",
    session_key=SessionKey.USER_MESSAGE_REFERENCE,
    gsm_data_coding=DataCoding.USSD_GSM7,
    abort_ops=frozenset({0x81}),
    end_bit_aborts=False,
    end_bit_on_end=False,
)
"""The variant of SPEC section 6: session id in ``user_message_reference``, BEGIN as PSSR
indication 0x01, CONTINUE as USSR request 0x02 / confirm 0x12, END as PSSR response 0x11
with no end bit, ABORT as a ``deliver_sm`` carrying operation 0x81; GSM text as DCS 0x0F."""

DIALECTS: dict[str, Dialect] = {d.name: d for d in (STANDARD, UMR_VARIANT)}

_MT_ACTIONS = frozenset({UssdAction.CONTINUE, UssdAction.END, UssdAction.NOTIFY})
_MO_ACTIONS = frozenset(
    {UssdAction.BEGIN, UssdAction.CONTINUE, UssdAction.ABORT, UssdAction.NOTIFY_ACK}
)


# --- application side ------------------------------------------------------------------


def parse_mobile_originated(dialect: Dialect, pdu: Pdu) -> UssdMessage:
    """The USSD unit in a ``deliver_sm``/``data_sm`` from the network."""
    op = _read_op(pdu)
    session_id, end_bit = _read_session(dialect, pdu)
    if op in dialect.abort_ops or (dialect.end_bit_aborts and end_bit):
        action = UssdAction.ABORT
    elif op in dialect.begin_ops:
        action = UssdAction.BEGIN
    elif op in dialect.continue_ops:
        action = UssdAction.CONTINUE
    elif op in dialect.notify_ack_ops:
        action = UssdAction.NOTIFY_ACK
    else:
        raise DialectError(
            CommandStatus.ESME_RINVOPTPARAMVAL, f"ussd_service_op {op} is not mobile-originated"
        )
    return UssdMessage(
        action=action,
        msisdn=str(pdu.params.get("source_addr", "")),
        service_code=str(pdu.params.get("destination_addr", "")),
        text=_read_text(pdu),
        session_id=session_id,
    )


def build_mobile_terminated(dialect: Dialect, message: UssdMessage, sequence_number: int) -> Pdu:
    """The ``submit_sm`` (or ``data_sm``) that carries a screen to the handset."""
    if message.action not in _MT_ACTIONS:
        raise ValueError(f"{message.action} is not a mobile-terminated action")
    op = {
        UssdAction.CONTINUE: dialect.continue_op,
        UssdAction.END: dialect.end_op,
        UssdAction.NOTIFY: dialect.notify_op,
    }[message.action]
    end = message.action is UssdAction.END and dialect.end_bit_on_end
    return _build(
        dialect,
        dialect.command,
        sequence_number,
        source=message.service_code,
        destination=message.msisdn,
        op=op,
        text=message.text,
        session_id=message.session_id,
        end=end,
    )


# --- network side ------------------------------------------------------------------------


def build_mobile_originated(dialect: Dialect, message: UssdMessage, sequence_number: int) -> Pdu:
    """The ``deliver_sm`` that carries the subscriber's unit to the application."""
    if message.action not in _MO_ACTIONS:
        raise ValueError(f"{message.action} is not a mobile-originated action")
    end = False
    if message.action is UssdAction.BEGIN:
        op = min(dialect.begin_ops)
    elif message.action is UssdAction.CONTINUE:
        op = min(dialect.continue_ops)
    elif message.action is UssdAction.NOTIFY_ACK:
        op = min(dialect.notify_ack_ops)
    elif dialect.abort_ops:
        op = min(dialect.abort_ops)
    else:
        op, end = min(dialect.continue_ops), True
    return _build(
        dialect,
        CommandId.DELIVER_SM,
        sequence_number,
        source=message.msisdn,
        destination=message.service_code,
        op=op,
        text=message.text,
        session_id=message.session_id,
        end=end,
    )


def parse_mobile_terminated(dialect: Dialect, pdu: Pdu) -> UssdMessage:
    """The USSD unit in a ``submit_sm``/``data_sm`` from the application."""
    op = _read_op(pdu)
    session_id, end_bit = _read_session(dialect, pdu)
    if op == dialect.end_op:
        action = UssdAction.END
    elif op == dialect.continue_op:
        action = UssdAction.CONTINUE
    elif op == dialect.notify_op:
        action = UssdAction.NOTIFY
    else:
        raise DialectError(
            CommandStatus.ESME_RINVOPTPARAMVAL, f"ussd_service_op {op} is not mobile-terminated"
        )
    if end_bit and action is UssdAction.CONTINUE:
        action = UssdAction.END
    return UssdMessage(
        action=action,
        msisdn=str(pdu.params.get("destination_addr", "")),
        service_code=str(pdu.params.get("source_addr", "")),
        text=_read_text(pdu),
        session_id=session_id,
    )


# --- shared ------------------------------------------------------------------------------


def _read_op(pdu: Pdu) -> int:
    try:
        op = read_int(pdu, Tag.USSD_SERVICE_OP, 1)
    except TlvValueError as error:
        raise DialectError(CommandStatus.ESME_RINVOPTPARAMVAL, str(error)) from None
    if op is None:
        raise DialectError(CommandStatus.ESME_RMISSINGOPTPARAM, "no ussd_service_op")
    return op


def _read_session(dialect: Dialect, pdu: Pdu) -> tuple[int | None, bool]:
    """The carrier session id and the end-of-session bit, as the dialect carries them."""
    try:
        if dialect.session_key is SessionKey.ITS_SESSION_INFO:
            value = pdu.tlv(Tag.ITS_SESSION_INFO)
            if value is None:
                return None, False
            info = ItsSessionInfo.from_bytes(value)
            return info.session_number, info.end
        if dialect.session_key is SessionKey.USER_MESSAGE_REFERENCE:
            return read_int(pdu, Tag.USER_MESSAGE_REFERENCE, 2), False
    except TlvValueError as error:
        raise DialectError(CommandStatus.ESME_RINVOPTPARAMVAL, str(error)) from None
    return None, False


def _read_text(pdu: Pdu) -> str:
    return decode_text(int(pdu.params.get("data_coding", 0)), message_text_bytes(pdu))


def _build(
    dialect: Dialect,
    command: CommandId,
    sequence_number: int,
    *,
    source: str,
    destination: str,
    op: int,
    text: str,
    session_id: int | None,
    end: bool,
) -> Pdu:
    encoded = encode_text(text, dialect.limits)
    data_coding = int(encoded.data_coding)
    if encoded.data_coding in (DataCoding.SMSC_DEFAULT, DataCoding.USSD_GSM7):
        data_coding = dialect.gsm_data_coding
    fields: dict[str, int | str | bytes] = {
        "service_type": dialect.service_type,
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": source,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": destination,
        "data_coding": data_coding,
    }
    tlvs: list[tuple[int, bytes]] = []
    if command is CommandId.DATA_SM or len(encoded.payload) > MAX_SHORT_MESSAGE:
        tlvs.append((Tag.MESSAGE_PAYLOAD, encoded.payload))
    else:
        fields["short_message"] = encoded.payload
    pdu = Pdu(command, sequence_number, 0, with_defaults(command, fields), tlvs)
    write_int(pdu, Tag.USSD_SERVICE_OP, 1, op)
    if dialect.session_key is SessionKey.ITS_SESSION_INFO and session_id is not None:
        pdu.set_tlv(Tag.ITS_SESSION_INFO, ItsSessionInfo(session_id, 0, end).to_bytes())
    elif dialect.session_key is SessionKey.USER_MESSAGE_REFERENCE and session_id is not None:
        write_int(pdu, Tag.USER_MESSAGE_REFERENCE, 2, session_id)
    return pdu
