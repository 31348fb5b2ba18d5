"""Pending transactions (invoices, agent cash-out requests), agent cash-in and the
metrics through the DFSP's HTTP API, driven only through ``DfspClient`` on a real
loopback server (SQLite, and PostgreSQL where USSDLOOP_TEST_PG is set). Everyone starts
with 1000 USD; the buyer pays an invoice's fee of 1 USD; the customer pays the agent's
fee: 0.50 USD kept back from a cash-in, 0.75 USD added to a cash-out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from dfsp.client import (
    CustomerInfo,
    DfspClient,
    DfspError,
    InsufficientFundsError,
    InvalidAmountError,
    InvoiceInfo,
    PendingInvoices,
    QuoteChangedError,
    SendResult,
    WrongPinError,
)
from dfsp.domain.transfers import TransferState
from tests.integration.conftest import Database
from tests.integration.dfsp.test_api import PIN, WRONG_PIN, Served, served_dfsp, usd
from tests.support import asyncio_test
from ussdloop.compose import dfsp_service
from ussdloop.config import load_network
from ussdloop.money import Money

NOTHING = PendingInvoices(incoming=(), outgoing=())


@dataclass
class Parties:
    merchant: CustomerInfo
    buyer: CustomerInfo
    agent: CustomerInfo


async def register(client: DfspClient, n: int, first_name: str, role: str) -> CustomerInfo:
    return await client.register(
        msisdn=f"+2567000003{n:02d}",
        first_name=first_name,
        last_name=role.title(),
        date_of_birth="1990-04-25",
        national_id=f"IV{n:04d}",
        pin=PIN,
        role=role,
    )


async def parties(client: DfspClient) -> Parties:
    return Parties(
        await register(client, 1, "Mia", "merchant"),
        await register(client, 2, "Bo", "customer"),
        await register(client, 3, "Ada", "agent"),
    )


def primary(customer: CustomerInfo) -> str:
    assert customer.primary_account_id is not None
    return customer.primary_account_id


async def balance(client: DfspClient, customer: CustomerInfo) -> Money:
    return await client.balance(customer.customer_id, primary(customer), PIN)


async def invoice(client: DfspClient, who: Parties, amount: str) -> InvoiceInfo:
    return await client.create_invoice(
        who.merchant.customer_id, primary(who.merchant), who.buyer.user_number, usd(amount)
    )


async def approve(
    client: DfspClient, who: Parties, bill: InvoiceInfo, transfer_id: str, pin: str = PIN
) -> SendResult:
    return await client.approve_invoice(
        who.buyer.customer_id, bill.invoice_id, primary(who.buyer), pin, transfer_id
    )


async def raw_text(dfsp: Served, path: str) -> str:
    async with dfsp.session.get(dfsp.base_url + path) as response:
        return await response.text()


# --- asking ---------------------------------------------------------------------------


@asyncio_test
async def test_only_a_merchant_invoices_a_positive_amount_to_a_known_buyer(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        with pytest.raises(DfspError) as not_merchant:
            await client.create_invoice(
                who.buyer.customer_id, primary(who.buyer), who.agent.user_number, usd("10")
            )
        assert (not_merchant.value.status, not_merchant.value.id) == (403, "NotMerchant")
        with pytest.raises(InvalidAmountError):
            await invoice(client, who, "0")
        with pytest.raises(DfspError) as nobody:
            await client.create_invoice(
                who.merchant.customer_id, primary(who.merchant), "99999999", usd("10")
            )
        assert (nobody.value.status, nobody.value.id) == (404, "UnknownBuyer")
        with pytest.raises(DfspError) as self_billed:
            await client.create_invoice(
                who.merchant.customer_id, primary(who.merchant), who.merchant.user_number, usd("1")
            )
        assert (self_billed.value.status, self_billed.value.id) == (409, "BuyerIsPayee")
        assert await client.pending_invoices(who.merchant.customer_id) == NOTHING


@asyncio_test
async def test_an_invoice_is_listed_on_both_sides_with_names_and_no_phone_number(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        bill = await invoice(client, who, "100")
        assert (bill.kind, bill.state, bill.amount, bill.payee_name, bill.buyer_name) == (
            "invoice",
            "pending",
            usd("100"),
            "Mia Merchant",
            "Bo Customer",
        )
        assert bill.created_at.tzinfo is not None
        mine = await client.pending_invoices(who.buyer.customer_id)
        theirs = await client.pending_invoices(who.merchant.customer_id)
        assert (mine.incoming, mine.outgoing) == ((bill,), ())
        assert (theirs.incoming, theirs.outgoing) == ((), (bill,))
        for customer in (who.buyer, who.merchant):
            text = await raw_text(dfsp, f"/customers/{customer.customer_id}/invoices")
            for msisdn in (who.buyer.msisdn, who.merchant.msisdn):
                assert msisdn.lstrip("+") not in text


# --- answering ------------------------------------------------------------------------


@asyncio_test
async def test_a_quoted_invoice_is_paid_once_with_the_buyers_pin_and_the_fee(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        bill = await invoice(client, who, "100")
        quote = await client.quote_invoice(
            who.buyer.customer_id, bill.invoice_id, primary(who.buyer)
        )
        assert (quote.receiver_name, quote.amount, quote.fee, quote.total) == (
            "Mia Merchant",
            usd("100"),
            usd("1"),
            usd("101"),
        )
        paid = await approve(client, who, bill, "inv-pay")
        assert await approve(client, who, bill, "inv-pay") == paid  # a retry pays once
        assert (paid.status, paid.amount, paid.fee, paid.receiver_name) == (
            "executed",
            usd("100"),
            usd("1"),
            "Mia Merchant",
        )
        assert await balance(client, who.buyer) == usd("899")
        assert await balance(client, who.merchant) == usd("1100")
        assert await client.pending_invoices(who.buyer.customer_id) == NOTHING
        with pytest.raises(DfspError) as again:
            await approve(client, who, bill, "inv-pay-again")
        assert (again.value.status, again.value.id) == (409, "InvoiceNotPending")
        assert await balance(client, who.buyer) == usd("899")


@asyncio_test
async def test_an_approval_beyond_the_balance_or_with_a_wrong_pin_leaves_it_pending(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        bill = await invoice(client, who, "999.50")  # 1000.50 with the fee
        with pytest.raises(InsufficientFundsError) as poor:
            await approve(client, who, bill, "inv-poor")
        assert (poor.value.status, poor.value.available) == (409, usd("1000"))
        with pytest.raises(WrongPinError) as wrong:
            await approve(client, who, bill, "inv-wrong", pin=WRONG_PIN)
        assert (wrong.value.status, wrong.value.attempts_left) == (403, 2)
        assert WRONG_PIN not in str(wrong.value)
        with pytest.raises(DfspError) as stranger:
            await client.approve_invoice(
                who.agent.customer_id, bill.invoice_id, primary(who.agent), PIN, "inv-other"
            )
        assert (stranger.value.status, stranger.value.id) == (403, "NotInvoiceBuyer")
        with pytest.raises(DfspError) as unknown:
            await client.quote_invoice(who.buyer.customer_id, "no-such", primary(who.buyer))
        assert (unknown.value.status, unknown.value.id) == (404, "UnknownInvoice")
        assert (await client.pending_invoices(who.buyer.customer_id)).incoming == (bill,)
        assert await balance(client, who.buyer) == usd("1000")


@asyncio_test
async def test_a_rejected_invoice_can_no_longer_be_approved(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        bill = await invoice(client, who, "20")
        rejected = await client.reject_invoice(who.buyer.customer_id, bill.invoice_id)
        assert rejected == replace(bill, state="rejected")
        assert await client.pending_invoices(who.merchant.customer_id) == NOTHING
        with pytest.raises(DfspError) as late:
            await approve(client, who, bill, "inv-late")
        assert (late.value.status, late.value.id) == (409, "InvoiceNotPending")
        path = f"{dfsp.base_url}/invoices/{bill.invoice_id}/approve"
        request = {
            "customerId": who.buyer.customer_id,
            "accountId": primary(who.buyer),
            "pin": PIN,
            "transferId": "inv-late",
        }
        async with dfsp.session.post(path, json=request) as response:
            assert (await response.json())["state"] == "rejected"
        assert await balance(client, who.buyer) == usd("1000")


# --- agent cash -----------------------------------------------------------------------


@asyncio_test
async def test_an_agent_cashes_in_with_their_pin_less_the_agent_fee(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        quote = await client.quote_cash_in(
            who.agent.customer_id, primary(who.agent), who.buyer.user_number, usd("100")
        )
        assert (quote.receiver_name, quote.amount, quote.fee, quote.receiver_fee) == (
            "Bo Customer",
            usd("100"),
            usd("0"),
            usd("0.50"),
        )
        with pytest.raises(QuoteChangedError):
            await client.cash_in(replace(quote, fee=usd("1")), PIN, "cin-stale")
        with pytest.raises(WrongPinError):
            await client.cash_in(quote, WRONG_PIN, "cin-wrong")
        with pytest.raises(DfspError) as not_agent:
            await client.quote_cash_in(
                who.merchant.customer_id, primary(who.merchant), who.buyer.user_number, usd("5")
            )
        assert (not_agent.value.status, not_agent.value.id) == (403, "NotAgent")
        paid = await client.cash_in(quote, PIN, "cin-1")
        assert await client.cash_in(quote, PIN, "cin-1") == paid
        assert (paid.status, paid.amount, paid.receiver_name) == (
            "executed",
            usd("100"),
            "Bo Customer",
        )
        assert await balance(client, who.agent) == usd("900")
        assert await balance(client, who.buyer) == usd("1099.50")


@asyncio_test
async def test_a_cash_out_request_is_approved_by_the_customer_with_their_own_pin(
    database: Database,
) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        request = await client.request_cash_out(
            who.agent.customer_id, primary(who.agent), who.buyer.user_number, usd("100")
        )
        assert (request.kind, request.payee_name, request.buyer_name) == (
            "cash_out",
            "Ada Agent",
            "Bo Customer",
        )
        assert (await client.pending_invoices(who.buyer.customer_id)).incoming == (request,)
        with pytest.raises(DfspError) as not_agent:
            await client.request_cash_out(
                who.merchant.customer_id, primary(who.merchant), who.buyer.user_number, usd("5")
            )
        assert (not_agent.value.status, not_agent.value.id) == (403, "NotAgent")
        quote = await client.quote_invoice(
            who.buyer.customer_id, request.invoice_id, primary(who.buyer)
        )
        assert (quote.receiver_name, quote.fee, quote.total) == (
            "Ada Agent",
            usd("0.75"),
            usd("100.75"),
        )
        paid = await approve(client, who, request, "cout-1")
        assert (paid.status, paid.fee) == ("executed", usd("0.75"))
        assert await balance(client, who.buyer) == usd("899.25")
        assert await balance(client, who.agent) == usd("1100")


# --- metrics --------------------------------------------------------------------------


@asyncio_test
async def test_metrics_count_customers_transfers_notices_and_invoices(database: Database) -> None:
    async with served_dfsp(database) as dfsp:
        client = dfsp.client
        who = await parties(client)
        await invoice(client, who, "5")
        paid = await invoice(client, who, "7")
        await approve(client, who, paid, "met-pay")
        text = await client.metrics()
        lines = set(text.splitlines())
        assert "# TYPE dfsp_customers gauge" in lines
        assert "dfsp_customers 6" in lines  # the shop's three and these three
        assert 'dfsp_transfers_total{state="executed",kind="invoice"} 1' in lines
        assert 'dfsp_notices{state="pending"} 0' in lines  # the shop posts to a recorder
        assert 'dfsp_invoices{kind="invoice",state="pending"} 1' in lines
        assert 'dfsp_invoices{kind="invoice",state="paid"} 1' in lines
        assert 'dfsp_invoices{kind="cash_out",state="rejected"} 0' in lines


# --- the running service --------------------------------------------------------------


@asyncio_test
async def test_the_service_sweep_releases_an_abandoned_approval_hold(tmp_path: Path) -> None:
    service = dfsp_service(load_network(environ={}), "dfsp1", any_port=True, data_dir=tmp_path)
    service.expire_every = 0.05
    service.use_gateway("http://127.0.0.1:9")  # nobody: the notices wait in the outbox
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = DfspClient(service.base_url, session)
            who = await parties(client)
            bill = await invoice(client, who, "100")
            assert service.invoices is not None and service.payments is not None
            assert service.ledger is not None
            quote = await service.invoices.quote_approval(
                who.buyer.customer_id, bill.invoice_id, primary(who.buyer)
            )
            # An approval that held the funds and then died before claiming the invoice.
            # Time enough for the hold's own PIN check on a loaded machine, then expiry.
            soon = datetime.now(UTC) + timedelta(seconds=1.5)
            await service.payments.hold(quote, PIN, "abandoned", expires_at=soon)
            assert await balance(client, who.buyer) == usd("899")
            for _ in range(400):
                if (await service.ledger.transfer("abandoned")).state is TransferState.EXPIRED:
                    break
                await asyncio.sleep(0.025)
            assert (await service.ledger.transfer("abandoned")).state is TransferState.EXPIRED
            assert await balance(client, who.buyer) == usd("1000")
            await approve(client, who, bill, "after-sweep")
            assert await balance(client, who.buyer) == usd("899")
            lines = set((await client.metrics()).splitlines())
            assert "dfsp_holds_expired_total 1" in lines
            assert 'dfsp_transfers_total{state="expired",kind="invoice"} 1' in lines
            assert 'dfsp_invoices{kind="invoice",state="paid"} 1' in lines
            assert 'dfsp_notices{state="pending"} 0' not in lines  # waiting for a gateway
    finally:
        await service.stop()
