"""What the DFSP tells its customers outside a USSD dialogue (SMS, and a USSD push for a
new invoice), as values: the use cases post ``Notice``s to a ``NoticeSink`` once the
event is committed; ``dfsp.notifications`` stores them (idempotent on ``key``), renders
them in the customer's language and delivers them through the DFSP's gateway.

A notice names its reader by customer id, never by phone number: the merchant of an
invoice never learns the buyer's MSISDN, and a customer who changes phone gets the
notice on the new one.

Message ids and their arguments (every amount a decimal string with its currency,
e.g. ``"10 USD"``, as ``ussdloop.money.Money.screen_text`` writes it):

- ``sent``: ``amount``, ``fee``, ``receiver`` (name), ``balance`` (left after);
- ``received``: ``amount``, ``sender`` (name), ``balance``;
- ``invoice_received``: ``amount``, ``merchant`` (name), ``reference`` (push=True);
- ``invoice_paid``: ``amount``, ``buyer`` (name), ``reference`` (to the merchant);
- ``invoice_rejected``: ``amount``, ``buyer`` (name), ``reference`` (to the merchant);
- ``cash_in``: ``amount``, ``agent`` (name), ``balance`` (to the customer);
- ``cash_out``: ``amount``, ``fee``, ``agent`` (name), ``balance`` (to the customer);
- ``send_failed``: ``amount``, ``receiver`` (name): a payment through the centre that
  did not go through (the held funds are back);
- ``bulk_invite``: ``payer`` (name), ``amount``, ``date`` (the last day to open an
  account): to a phone that is no customer yet (``to_msisdn``), paid by a bulk batch.

A notice to a phone that is not a customer's (only ``bulk_invite``) names it as
``to_msisdn(msisdn)`` in place of the customer id, and is written in English.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

MESSAGE_IDS: Final = frozenset(
    {
        "sent",
        "received",
        "invoice_received",
        "invoice_paid",
        "invoice_rejected",
        "cash_in",
        "cash_out",
        "send_failed",
        "bulk_invite",
    }
)
MSISDN_READER: Final = "msisdn:"  # the prefix of a reader that is a phone, not a customer


def to_msisdn(msisdn: str) -> str:
    """The reader of a notice to a phone that is not a customer yet (E.164 digits)."""
    return MSISDN_READER + msisdn


@dataclass(frozen=True)
class Notice:
    key: str  # idempotency key, e.g. "transfer:<id>:sender": posting it again is a no-op
    customer_id: str  # whom to tell
    message: str  # one of MESSAGE_IDS
    args: Mapping[str, str] = field(default_factory=dict)
    push: bool = False  # also a network-initiated USSD screen (an invoice to approve)

    def __post_init__(self) -> None:
        if self.message not in MESSAGE_IDS:
            raise ValueError(f"unknown notice message {self.message!r}")


class NoticeSink(Protocol):
    async def post(self, notices: Sequence[Notice]) -> None:
        """Keep the notices for delivery (durably, before returning)."""
