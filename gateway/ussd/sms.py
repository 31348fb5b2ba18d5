"""SMS over the carrier's SMPP link: text messages out, delivery receipts back.

An SMS is a submit_sm without ``ussd_service_op``, of at most ``MAX_SMS_SEGMENTS``
segments (a long one goes in ``message_payload``), with a delivery receipt requested.
Receipts arrive as deliver_sm with the receipt bit of ``esm_class`` set; ``SmsOutbox``
keeps the last ``kept`` of them by message id.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from twisted.logger import Logger

from gateway.smpp.constants import CommandId, MessageState, Tag
from gateway.smpp.gsm0338 import DataCoding, ScreenLimits, decode_text, encode_text
from gateway.smpp.pdu import MAX_SHORT_MESSAGE, Pdu, request
from gateway.smpp.tlv import message_state, receipted_message_id
from gateway.ussd.records import UssdCounters
from gateway.ussd_menus.engine import mask_msisdn

MAX_SMS_SEGMENTS: Final = 6
SMS_LIMITS: Final = ScreenLimits(
    gsm7=153 * MAX_SMS_SEGMENTS,
    latin1=134 * MAX_SMS_SEGMENTS,
    ucs2=67 * MAX_SMS_SEGMENTS,
    codings=(DataCoding.SMSC_DEFAULT, DataCoding.UCS2),
)
_RECEIPT_STAT: Final = re.compile(r"\bstat:(\w+)", re.IGNORECASE)
_RECEIPT_ID: Final = re.compile(r"\bid:(\S+)", re.IGNORECASE)

_log = Logger(namespace="gateway.ussd.sms")

Submit = Callable[[Pdu], Awaitable[Pdu]]  # the response, or an error when refused


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: str
    msisdn: str
    state: str  # "DELIVERED", "UNDELIVERABLE", ... (or the receipt text's stat: word)
    received_at: float


def sms_submit(msisdn: str, text: str, *, source_addr: str, receipt: bool) -> Pdu:
    """The submit_sm of an SMS; ``TextCodingError`` for text over ``MAX_SMS_SEGMENTS``."""
    encoded = encode_text(text, SMS_LIMITS)
    fields: dict[str, Any] = {
        "source_addr_ton": 0,
        "source_addr_npi": 0,
        "source_addr": source_addr,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": msisdn,
        "registered_delivery": 1 if receipt else 0,
        "data_coding": int(encoded.data_coding),
    }
    tlvs: list[tuple[int, bytes]] = []
    if len(encoded.payload) > MAX_SHORT_MESSAGE:
        tlvs.append((Tag.MESSAGE_PAYLOAD, encoded.payload))
    else:
        fields["short_message"] = encoded.payload
    return request(CommandId.SUBMIT_SM, 0, tlvs=tlvs, **fields)


def parse_delivery_receipt(pdu: Pdu, received_at: float) -> DeliveryReceipt:
    """The receipt in a deliver_sm: its TLVs, else its text; ``TlvValueError`` if bad."""
    text = decode_text(int(pdu.params.get("data_coding", 0)), _message_bytes(pdu))
    message_id = receipted_message_id(pdu)
    state = message_state(pdu)
    if message_id is None:
        found = _RECEIPT_ID.search(text)
        message_id = found.group(1) if found else ""
    if state is not None and state in MessageState._value2member_map_:
        state_name = MessageState(state).name
    else:
        found = _RECEIPT_STAT.search(text)
        state_name = found.group(1).upper() if found else "UNKNOWN"
    msisdn = str(pdu.params.get("source_addr", ""))
    return DeliveryReceipt(message_id, msisdn, state_name, received_at)


class SmsOutbox:
    """Sends SMS through ``submit`` and keeps the last ``kept`` receipts by message id."""

    def __init__(
        self, submit: Submit, *, source_addr: str, kept: int, counters: UssdCounters
    ) -> None:
        if kept < 0:
            raise ValueError(f"kept must not be negative, got {kept}")
        self.receipts: OrderedDict[str, DeliveryReceipt] = OrderedDict()
        self._submit = submit
        self._source_addr = source_addr
        self._kept = kept
        self._counters = counters

    async def send(self, msisdn: str, text: str, *, receipt: bool = True) -> str:
        """Send an SMS; the SMSC's message id (``submit``'s errors pass through)."""
        pdu = sms_submit(msisdn, text, source_addr=self._source_addr, receipt=receipt)
        response = await self._submit(pdu)
        message_id = str(response.params.get("message_id", ""))
        self._counters.sms_sent += 1
        _log.info(
            "sms_sent message_id={message_id} msisdn={msisdn} receipt={receipt}",
            message_id=message_id,
            msisdn=mask_msisdn(msisdn),
            receipt=receipt,
        )
        return message_id

    def received(self, pdu: Pdu, received_at: float) -> DeliveryReceipt:
        """Record the receipt in ``pdu``; ``TlvValueError`` for a malformed one."""
        receipt = parse_delivery_receipt(pdu, received_at)
        self._counters.delivery_receipts += 1
        if self._kept:
            self.receipts[receipt.message_id] = receipt
            self.receipts.move_to_end(receipt.message_id)
            while len(self.receipts) > self._kept:
                self.receipts.popitem(last=False)
        _log.info(
            "sms_delivery_receipt message_id={message_id} state={state} msisdn={msisdn}",
            message_id=receipt.message_id,
            state=receipt.state,
            msisdn=mask_msisdn(receipt.msisdn),
        )
        return receipt


def _message_bytes(pdu: Pdu) -> bytes:
    payload = pdu.tlv(Tag.MESSAGE_PAYLOAD)
    if payload is not None:
        return payload
    message = pdu.params.get("short_message", b"")
    return message if isinstance(message, bytes) else b""
