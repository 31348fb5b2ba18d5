"""Agent cash-in and cash-out (SPEC section 3, "Fees", "Customers": agents; REFERENCE
1.5(k)). An agent works from their main account (never the commission account, which
cannot send); the customer pays the agent's fee both ways (``dfsp.domain.fees``).

- Cash-in: the customer hands the agent cash; the agent enters the customer's user
  number and the amount, sees the fee, and confirms with the agent's own PIN. The agent's
  account pays the customer's primary account, less the agent cash-in fee. The customer
  gets ``cash_in``, the agent ``sent`` (``Payments.send``, limits as for a send).
- Cash-out: the agent enters the customer's user number and the amount; this makes a
  pending transaction of kind ``cash_out`` (``dfsp.invoices``), which the customer finds
  in their incoming list on their own phone and approves with their own PIN
  (``Invoices.quote_approval`` / ``approve``) or rejects: the agent's PIN never
  authorises taking the customer's money. On approval the customer pays the amount plus
  the agent cash-out fee into the agent's account and gets ``cash_out``, the agent
  ``received``; then the agent hands out the cash.
"""

from __future__ import annotations

from dfsp.customers import Customers
from dfsp.domain.customers import Customer, CustomerRole
from dfsp.domain.fees import TransactionType
from dfsp.domain.identifiers import InvalidIdentifier, UserNumber
from dfsp.domain.invoices import BuyerIsPayee, Invoice, InvoiceKind, NotAgent
from dfsp.domain.payments import SendQuote, SendResult
from dfsp.domain.pins import Pin
from dfsp.invoices import Invoices
from dfsp.payments import Payments
from ussdloop.money import Money


class Cash:
    def __init__(self, customers: Customers, payments: Payments, invoices: Invoices) -> None:
        self._customers = customers
        self._payments = payments
        self._invoices = invoices

    async def quote_cash_in(
        self,
        agent_customer_id: str,
        agent_account_id: str,
        customer_user_number: str,
        amount: Money,
    ) -> SendQuote:
        """The customer's name and the cash-in fee (kept back from what they receive)."""
        agent = await self._require_agent(agent_customer_id)
        if _same_user_number(str(agent.user_number), customer_user_number):
            raise BuyerIsPayee(customer_user_number)
        return await self._payments.quote_send(
            agent_customer_id,
            agent_account_id,
            customer_user_number,
            amount,
            kind=TransactionType.CASH_IN,
        )

    async def cash_in(self, quote: SendQuote, agent_pin: Pin | str, transfer_id: str) -> SendResult:
        """Pay the cash-in quote after the agent's PIN and limits; idempotent on the
        transfer id, like ``Payments.send``."""
        if quote.quote.kind is not TransactionType.CASH_IN or quote.own_accounts:
            raise ValueError("cash_in pays a quote of quote_cash_in")
        await self._require_agent(quote.sender_customer_id)
        return await self._payments.send(quote, agent_pin, transfer_id)

    async def request_cash_out(
        self,
        agent_customer_id: str,
        agent_account_id: str,
        customer_user_number: str,
        amount: Money,
    ) -> Invoice:
        """A pending cash-out for the customer to approve (``Invoices.approve``)."""
        return await self._invoices.ask(
            InvoiceKind.CASH_OUT, agent_customer_id, agent_account_id, customer_user_number, amount
        )

    async def _require_agent(self, customer_id: str) -> Customer:
        customer = await self._customers.customer(customer_id)
        if customer.role is not CustomerRole.AGENT:
            raise NotAgent(customer_id)
        return customer


def _same_user_number(number: str, typed: str) -> bool:
    try:
        return str(UserNumber.parse(typed)) == number
    except InvalidIdentifier:
        return False  # not a user number: the quote says so
