"""The SMS centre: ``submit_sm`` without ``ussd_service_op`` is a text message.

The message goes to the handset's inbox at once; when the ESME asked for it
(``registered_delivery``) a delivery receipt follows as a ``deliver_sm`` with
``esm_class`` 0x04, the customary ``id:... stat:DELIVRD`` text, and the
``receipted_message_id`` and ``message_state`` TLVs. A full inbox makes the delivery
fail (``stat:UNDELIV``), as a phone with no room would.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
)
from gateway.smpp.gsm0338 import decode_text, encode_gsm7, gsm7_length
from gateway.smpp.pdu import Pdu, request
from gateway.smpp.tlv import message_text_bytes, write_cstring, write_int
from simulators.modem.clock import ReactorClock
from simulators.modem.handsets import Handset, Sms
from simulators.modem.smpp_link import SubmitOutcome
from simulators.modem.ussd_centre import MobileOriginatedLinks

S = CommandStatus
RECEIPT_TEXT = 20  # characters of the message quoted in a receipt's "text:" field


class SmsCentre:
    def __init__(
        self,
        clock: ReactorClock,
        links: MobileOriginatedLinks,
        handset: Callable[[str], Handset],
        message_id: Callable[[], str],
    ) -> None:
        self._clock = clock
        self._links = links
        self._handset = handset
        self._message_id = message_id

    def submit(self, system_id: str, pdu: Pdu) -> SubmitOutcome:
        try:
            handset = self._handset(str(pdu.get("destination_addr", "")))
        except ValueError:  # not an MSISDN, or the network is full
            return SubmitOutcome(S.ESME_RINVDSTADR)
        message_id = self._message_id()
        text = decode_text(int(pdu.get("data_coding", 0)), message_text_bytes(pdu))
        submitted = self._clock.seconds()
        sms = Sms(message_id, str(pdu.get("source_addr", "")), text, submitted)
        wants_receipt = int(pdu.get("registered_delivery", 0)) & 0x03

        def deliver() -> None:
            delivered = handset.receive_sms(sms)
            if wants_receipt == 1 or (wants_receipt == 2 and not delivered):
                receipt = delivery_receipt(pdu, sms, delivered, submitted, self._clock.seconds())
                self._links.deliver(system_id, receipt, _ignore, store=True)

        return SubmitOutcome(S.ESME_ROK, message_id, after=deliver)


def delivery_receipt(
    submitted_pdu: Pdu, sms: Sms, delivered: bool, submit_date: float, done_date: float
) -> Pdu:
    """The receipt ``deliver_sm``: from the handset back to the original sender."""
    stat, err, state = (
        ("DELIVRD", "000", MessageState.DELIVERED)
        if delivered
        else ("UNDELIV", "001", MessageState.UNDELIVERABLE)
    )
    text = (
        f"id:{sms.id} sub:001 dlvrd:{'001' if delivered else '000'}"
        f" submit date:{_receipt_date(submit_date)} done date:{_receipt_date(done_date)}"
        f" stat:{stat} err:{err} text:{_gsm_safe(sms.text[:RECEIPT_TEXT])}"
    )
    pdu = request(
        CommandId.DELIVER_SM,
        0,
        source_addr_ton=int(submitted_pdu.get("dest_addr_ton", 1)),
        source_addr_npi=int(submitted_pdu.get("dest_addr_npi", 1)),
        source_addr=str(submitted_pdu.get("destination_addr", "")),
        dest_addr_ton=int(submitted_pdu.get("source_addr_ton", 0)),
        dest_addr_npi=int(submitted_pdu.get("source_addr_npi", 0)),
        destination_addr=str(submitted_pdu.get("source_addr", "")),
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=encode_gsm7(text),
    )
    write_cstring(pdu, Tag.RECEIPTED_MESSAGE_ID, sms.id)
    write_int(pdu, Tag.MESSAGE_STATE, 1, state)
    return pdu


def _receipt_date(seconds: float) -> str:
    return time.strftime("%y%m%d%H%M", time.gmtime(seconds))


def _gsm_safe(text: str) -> str:
    """The text with anything outside the GSM 03.38 alphabet shown as ``?``."""
    return "".join(char if gsm7_length(char) is not None else "?" for char in text)


def _ignore(status: int | None) -> None:
    """Delivery result of a receipt: nothing to do either way."""
