"""Invoices across DFSPs at the service level (SPEC section 3 "Pending transactions":
the invoice lives at the merchant's DFSP, a notice with its reference goes to the
buyer's DFSP), on SQLite always and on PostgreSQL where USSDLOOP_TEST_PG is set. The
other DFSP and the central directory are a fake ``Interledger``; paying through the
centre is the end-to-end test's (tests/e2e/test_clearing_invoices.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from dfsp.domain.invoices import (
    InvoiceNotPending,
    InvoiceState,
    NotInvoiceBuyer,
    RemoteInvoice,
    UnknownBuyer,
    UnknownInvoice,
)
from dfsp.domain.payments import RemoteReceiver, UnknownReceiver
from dfsp.domain.transfers import TransferState
from dfsp.interledger import ClearingUnavailable
from dfsp.invoices import Invoices
from dfsp.invoices_across import InvoicesAcross
from tests.integration.conftest import Database
from tests.integration.dfsp.test_invoices import Shop, open_shop, usd
from tests.support import asyncio_test

ELSEWHERE = RemoteReceiver("44556677", "Venya Ndoro", "dfsp2", "http://dfsp2/interledger")
MERCHANT = RemoteReceiver("11223344", "Shop One", "dfsp1", "http://dfsp1/interledger")


@dataclass
class OtherDfsp:
    """The central directory and one other DFSP, as ``InvoicesAcross`` sees them."""

    name: str = "dfsp1"
    currency: str = "USD"
    down: bool = False
    people: dict[str, RemoteReceiver] = field(
        default_factory=lambda: {"44556677": ELSEWHERE, "11223344": MERCHANT}
    )
    invoices_sent: list[dict[str, Any]] = field(default_factory=list)
    rejections_sent: list[str] = field(default_factory=list)

    async def remote_receiver(self, user_number: str) -> RemoteReceiver:
        if user_number not in self.people:
            raise UnknownReceiver(user_number)
        return self.people[user_number]

    async def send_invoice(self, buyer: RemoteReceiver, **fields: Any) -> str:
        if self.down:
            raise ClearingUnavailable("dfsp2 does not answer")
        self.invoices_sent.append(fields)
        return "reference-there"

    async def reject_invoice(self, merchant: RemoteReceiver, invoice_id: str) -> str:
        if self.down:
            raise ClearingUnavailable("dfsp1 does not answer")
        self.rejections_sent.append(invoice_id)
        return "rejected"


@dataclass
class Network:
    shop: Shop
    other: OtherDfsp
    invoices: Invoices
    across: InvoicesAcross

    async def receive(self, invoice_id: str = "inv-1", merchant_dfsp: str = "dfsp1") -> Any:
        return await self.across.receive(
            merchant_dfsp=merchant_dfsp,
            merchant_invoice_id=invoice_id,
            merchant_name="Shop One",
            merchant_user_number="11223344",
            buyer_user_number=str(self.shop.buyer.user_number),
            amount=usd("25"),
            memo="Invoice from Shop One for 25 USD",
        )


@asynccontextmanager
async def open_network(database: Database) -> AsyncIterator[Network]:
    async with open_shop(database) as shop:
        other = OtherDfsp()
        invoices = Invoices(
            shop.invoices._sessions,
            shop.dfsp.ledger,
            shop.dfsp.customers,
            shop.payments,
            clock=shop.clock,
            notices=shop.notices,
            interledger=other,  # type: ignore[arg-type]
        )
        assert invoices.across is not None
        yield Network(shop, other, invoices, invoices.across)


# --- the buyer's DFSP --------------------------------------------------------------------


@asyncio_test
async def test_an_invoice_from_another_dfsp_is_kept_once_and_its_buyer_told(
    database: Database,
) -> None:
    async with open_network(database) as net:
        first = await net.receive()
        again = await net.receive()  # the merchant's DFSP retried
        assert again == first and first.state is InvoiceState.PENDING
        told = net.shop.notices.by_key[f"invoice:{first.id}:received"]
        assert told.customer_id == net.shop.buyer.id and told.push
        assert told.args == {"amount": "25 USD", "merchant": "Shop One", "reference": first.id}

        # The same invoice id from another merchant DFSP is another invoice.
        other = await net.receive(merchant_dfsp="dfsp3")
        assert other.id != first.id

        # Listed with the local ones, newest first, in the same shape.
        net.shop.clock.now = net.shop.clock.now.replace(minute=5)
        local = await net.invoices.create(
            net.shop.merchant.id, net.shop.shop_account, str(net.shop.buyer.user_number), usd("3")
        )
        incoming = await net.invoices.incoming(net.shop.buyer.id)
        assert incoming[0].invoice.id == local.id
        assert {p.invoice.id for p in incoming} == {local.id, first.id, other.id}
        assert {p.other_name for p in incoming} == {"Mary Shop", "Shop One"}


@asyncio_test
async def test_an_invoice_for_someone_not_here_is_refused(database: Database) -> None:
    async with open_network(database) as net:
        with pytest.raises(UnknownBuyer):
            await net.across.receive(
                merchant_dfsp="dfsp1",
                merchant_invoice_id="inv-9",
                merchant_name="Shop One",
                merchant_user_number="11223344",
                buyer_user_number="99999999",
                amount=usd("25"),
                memo="",
            )


@asyncio_test
async def test_a_rejection_reaches_the_merchants_dfsp_even_if_it_is_away_at_first(
    database: Database,
) -> None:
    async with open_network(database) as net:
        invoice = await net.receive()
        with pytest.raises(NotInvoiceBuyer):
            await net.across.reject(net.shop.merchant.id, invoice.id)
        net.other.down = True
        rejected = await net.across.reject(net.shop.buyer.id, invoice.id)
        assert rejected.state is InvoiceState.REJECTED and net.other.rejections_sent == []
        assert await net.invoices.incoming(net.shop.buyer.id) == []

        net.other.down = False
        await net.invoices.retry_peers()
        assert net.other.rejections_sent == ["inv-1"]
        await net.invoices.retry_peers()  # told once
        assert net.other.rejections_sent == ["inv-1"]
        assert await net.across.reject(net.shop.buyer.id, invoice.id) == rejected
        with pytest.raises(InvoiceNotPending):
            await net.across.quote(net.shop.buyer.id, invoice.id, net.shop.buyer_account)


@asyncio_test
async def test_a_payment_decided_through_clearing_marks_the_buyers_invoice_paid(
    database: Database,
) -> None:
    async with open_network(database) as net:
        invoice: RemoteInvoice = await net.receive()
        await net.across.debited("dfsp1", "inv-1", "transfer-1", TransferState.REJECTED.value)
        assert (await net.across.find(invoice.id)) == invoice  # a failed payment: still pending
        await net.across.debited("dfsp1", "inv-1", "transfer-1", TransferState.EXECUTED.value)
        paid = await net.across.find(invoice.id)
        assert paid is not None and paid.state is InvoiceState.PAID
        assert paid.approval == "transfer-1"
        with pytest.raises(InvoiceNotPending):
            await net.across.reject(net.shop.buyer.id, invoice.id)


# --- the merchant's DFSP -----------------------------------------------------------------


@asyncio_test
async def test_an_invoice_to_a_buyer_elsewhere_is_kept_here_and_told_there_until_taken(
    database: Database,
) -> None:
    async with open_network(database) as net:
        shop = net.shop
        net.other.down = True
        invoice = await net.invoices.create(
            shop.merchant.id, shop.shop_account, "44556677", usd("25")
        )
        assert invoice.buyer_customer_id is None and invoice.buyer_dfsp == "dfsp2"
        assert invoice.buyer_name == "Venya Ndoro" and net.other.invoices_sent == []
        outgoing = await net.invoices.outgoing(shop.merchant.id)
        assert [(p.invoice.id, p.other_name) for p in outgoing] == [(invoice.id, "Venya Ndoro")]

        net.other.down = False
        await net.invoices.retry_peers()
        await net.invoices.retry_peers()
        assert net.other.invoices_sent == [
            {
                "invoice_id": invoice.id,
                "merchant_name": "Mary Shop",
                "merchant_user_number": str(shop.merchant.user_number),
                "amount": usd("25"),
                "memo": "Invoice from Mary Shop for 25 USD",
            }
        ]
        with pytest.raises(UnknownBuyer):
            await net.invoices.create(shop.merchant.id, shop.shop_account, "12121212", usd("1"))


@asyncio_test
async def test_a_payment_request_must_match_the_invoice_and_its_credit_pays_it(
    database: Database,
) -> None:
    async with open_network(database) as net:
        shop = net.shop
        invoice = await net.invoices.create(
            shop.merchant.id, shop.shop_account, "44556677", usd("25")
        )
        merchant_number = str(shop.merchant.user_number)
        await net.across.sent.payable(invoice.id, merchant_number, usd("25"), "dfsp2")
        for wrong in (
            (invoice.id, merchant_number, usd("24"), "dfsp2"),
            (invoice.id, merchant_number, usd("25"), "dfsp3"),
            (invoice.id, "11111111", usd("25"), "dfsp2"),
            ("nothing", merchant_number, usd("25"), "dfsp2"),
        ):
            with pytest.raises(UnknownInvoice):
                await net.across.sent.payable(*wrong)

        paid = await net.across.credited(invoice.id, "transfer-1")
        assert paid is not None and paid.message == "invoice_paid"
        assert paid.customer_id == shop.merchant.id
        assert paid.args == {"amount": "25 USD", "buyer": "Venya Ndoro", "reference": invoice.id}
        assert await net.across.credited(invoice.id, "transfer-1") == paid  # a repeat
        assert await net.across.credited(invoice.id, "transfer-2") is None  # not this one
        with pytest.raises(InvoiceNotPending):
            await net.across.sent.payable(invoice.id, merchant_number, usd("25"), "dfsp2")
        assert await net.invoices.outgoing(shop.merchant.id) == []


@asyncio_test
async def test_the_buyers_dfsp_says_the_buyer_refused_and_the_merchant_is_told(
    database: Database,
) -> None:
    async with open_network(database) as net:
        shop = net.shop
        invoice = await net.invoices.create(
            shop.merchant.id, shop.shop_account, "44556677", usd("25")
        )
        with pytest.raises(UnknownInvoice):
            await net.across.sent.rejected_by_buyer(invoice.id, "dfsp3")  # not theirs
        rejected = await net.across.sent.rejected_by_buyer(invoice.id, "dfsp2")
        assert rejected.state is InvoiceState.REJECTED
        assert await net.across.sent.rejected_by_buyer(invoice.id, "dfsp2") == rejected
        told = shop.notices.by_key[f"invoice:{invoice.id}:rejected"]
        assert told.customer_id == shop.merchant.id and told.message == "invoice_rejected"
        assert told.args["buyer"] == "Venya Ndoro"
        assert await net.across.credited(invoice.id, "transfer-late") is None
