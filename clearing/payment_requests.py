"""Interledger payment requests (the IPR of the 2017 stack, RFC-11): the payee's DFSP
describes a payment it will accept as an ILPv1 payment packet and locks it with a
PREIMAGE-SHA-256 condition whose fulfilment only it can produce.

The fulfilment is ``HMAC-SHA256(secret, packet)``: the payee's DFSP keeps no state per
request, and after a restart it recomputes the fulfilment from its secret and the
packet that comes back with the central ledger's prepared transfer. The packet's
address is ``private.l1p.ZZZ.<dfsp>.<user number>``, its amount the minor units the
payee's DFSP receives through the centre, its data a small JSON object (transfer id,
transfer code, the payer's name and DFSP, an invoice id, the expiry), so the payee's
DFSP checks every part of a prepared transfer against what it asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from clearing.ilp.addresses import IlpAddress, dfsp_account_address
from clearing.ilp.conditions import condition_for
from clearing.ilp.oer import IlpCodecError
from clearing.ilp.v1 import Payment, decode_v1_packet, encode_v1_packet
from ussdloop.money import Money

SECRET_BYTES: Final = 32
TRANSFER_CODES: Final = frozenset({"p2p", "invoice"})


class PaymentRequestError(ValueError):
    """A packet this DFSP did not issue, or whose details do not hold together."""


@dataclass(frozen=True)
class PaymentDetails:
    """What the payer's DFSP asked for and the payee's DFSP agreed to."""

    transfer_id: str
    payee_user_number: str
    amount: Money  # what the payee's DFSP receives through the centre
    expires_at: datetime  # the latest moment the central transfer may execute
    transfer_code: str  # "p2p" or "invoice"
    payer_name: str
    payer_dfsp: str
    invoice_id: str | None = None

    def __post_init__(self) -> None:
        if self.amount.minor <= 0:
            raise PaymentRequestError("a payment request is for a positive amount")
        if self.transfer_code not in TRANSFER_CODES:
            raise PaymentRequestError(f"unknown transfer code {self.transfer_code!r}")
        if self.expires_at.tzinfo is None:
            raise PaymentRequestError("the expiry must be an aware datetime")


@dataclass(frozen=True)
class PaymentRequest:
    details: PaymentDetails
    packet: bytes  # the ILPv1 payment packet (OER)
    condition: bytes  # SHA-256 of the fulfilment (32 bytes)


class PaymentRequests:
    """The payee side: issue requests, read packets back, recompute fulfilments."""

    def __init__(self, dfsp: str, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the payment request secret has at least {SECRET_BYTES} bytes")
        self.dfsp = dfsp
        self._secret = secret

    def request(self, details: PaymentDetails) -> PaymentRequest:
        packet = encode_packet(self.dfsp, details)
        return PaymentRequest(details, packet, condition_for(self.fulfilment(packet)))

    def fulfilment(self, packet: bytes) -> bytes:
        return hmac.new(self._secret, packet, hashlib.sha256).digest()

    def read(self, packet: bytes, currency: str) -> PaymentDetails:
        """The details of a packet issued to this DFSP (PaymentRequestError otherwise)."""
        details = decode_packet(packet, currency)
        expected = dfsp_account_address(self.dfsp, details.payee_user_number)
        if decode_v1_packet(packet) != Payment(details.amount.minor, expected, _data(details)):
            raise PaymentRequestError("the packet is not one of this DFSP's payment requests")
        return details


def encode_packet(dfsp: str, details: PaymentDetails) -> bytes:
    address = dfsp_account_address(dfsp, details.payee_user_number)
    return encode_v1_packet(Payment(details.amount.minor, address, _data(details)))


def decode_packet(packet: bytes, currency: str) -> PaymentDetails:
    try:
        payment = decode_v1_packet(packet)
    except IlpCodecError as error:
        raise PaymentRequestError(f"not an ILP payment packet: {error}") from None
    if not isinstance(payment, Payment):
        raise PaymentRequestError("not an ILP payment packet")
    try:
        fields: dict[str, Any] = json.loads(payment.data)
        segments = IlpAddress(payment.account).split(".")
        return PaymentDetails(
            transfer_id=str(fields["transferId"]),
            payee_user_number=segments[-1],
            amount=Money(currency, payment.amount),
            expires_at=datetime.fromisoformat(fields["expiresAt"]),
            transfer_code=str(fields["transferCode"]),
            payer_name=str(fields["payerName"]),
            payer_dfsp=str(fields["payerDfsp"]),
            invoice_id=fields.get("invoiceId"),
        )
    except (ValueError, KeyError, TypeError, IlpCodecError) as error:
        raise PaymentRequestError(f"the packet's details are unreadable: {error}") from None


def _data(details: PaymentDetails) -> bytes:
    fields: dict[str, Any] = {
        "transferId": details.transfer_id,
        "transferCode": details.transfer_code,
        "payerName": details.payer_name,
        "payerDfsp": details.payer_dfsp,
        "expiresAt": details.expires_at.isoformat(),
    }
    if details.invoice_id is not None:
        fields["invoiceId"] = details.invoice_id
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
