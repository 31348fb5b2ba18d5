"""Pending transactions (invoices) at the service level (SPEC section 1 journey 2 and
section 3 "Pending transactions"; REFERENCE 6.4 PT-1..6), on SQLite always and on
PostgreSQL where USSDLOOP_TEST_PG is set: a merchant, a buyer and an agent with the demo
opening balance of 1000 USD; the invoice's sender fee is 1 USD, paid by the approver."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from dfsp.cash import Cash
from dfsp.customer_store import LocalUserNumbers
from dfsp.customers import Customers
from dfsp.domain.accounts import AccountKind
from dfsp.domain.customers import Customer, CustomerRole
from dfsp.domain.fees import FeeTable
from dfsp.domain.invoices import (
    ApprovalExpired,
    BuyerIsPayee,
    Invoice,
    InvoiceAccountNotAllowed,
    InvoiceBeingPaid,
    InvoiceKind,
    InvoiceNotPending,
    InvoiceState,
    NotInvoiceBuyer,
    NotMerchant,
    UnknownBuyer,
)
from dfsp.domain.notices import Notice
from dfsp.domain.payments import InvalidAmount, SendResult, StatementRow
from dfsp.domain.pins import PinPolicy, WrongPin
from dfsp.domain.tiers import TierTable, demo_tier_table
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import InsufficientFunds, Posting, TransferState
from dfsp.invoices import APPROVAL_HOLD, Invoices
from dfsp.ledger import Ledger
from dfsp.migrate import migrate
from dfsp.payments import Payments
from dfsp.store import create_store_engine
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import FLOAT, NOW, PIN, Dfsp, primary_of
from tests.support import asyncio_test
from ussdloop.db import session_factory
from ussdloop.money import Money

FEES = "fees"
WRONG_PIN = "1357"
# The demo fees, plus the agent's: 0.50 on a cash-in, 0.75 on a cash-out.
FEE_TABLE = FeeTable.from_toml(
    {
        "p2p": {"sender": {"bands": [{"flat": "1"}]}},
        "invoice": {"sender": {"bands": [{"flat": "1"}]}},
        "cash_in": {"agent": {"bands": [{"flat": "0.50"}]}},
        "cash_out": {"agent": {"bands": [{"flat": "0.75"}]}},
    },
    "USD",
)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@dataclass
class RecordedNotices:
    """A ``NoticeSink`` that keeps what it is given, one notice per key (as the outbox)."""

    by_key: dict[str, Notice] = field(default_factory=dict)
    posts: int = 0

    async def post(self, notices: Sequence[Notice]) -> None:
        self.posts += 1
        for notice in notices:
            self.by_key.setdefault(notice.key, notice)


@dataclass
class MovingClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Shop:
    dfsp: Dfsp
    payments: Payments
    invoices: Invoices
    cash: Cash
    notices: RecordedNotices
    clock: MovingClock
    merchant: Customer
    buyer: Customer
    agent: Customer
    shop_account: str
    buyer_account: str
    agent_account: str

    async def balance(self, customer: Customer, account_id: str) -> Money:
        return await self.payments.balance(customer.id, account_id, PIN)

    async def fees(self) -> Money:
        return (await self.dfsp.ledger.balance(FEES))[0]

    async def invoice(self, amount: str = "100") -> Invoice:
        return await self.invoices.create(
            self.merchant.id, self.shop_account, str(self.buyer.user_number), usd(amount)
        )

    async def approve(self, invoice: Invoice, transfer_id: str, pin: str = PIN) -> SendResult:
        return await self.invoices.approve(
            self.buyer.id, invoice.id, self.buyer_account, pin, transfer_id
        )

    async def state_of(self, invoice: Invoice) -> InvoiceState:
        return (await self.invoices.invoice(self.buyer.id, invoice.id)).state

    async def sound(self) -> None:
        assert await self.dfsp.ledger.total_balance("USD") == usd("0")
        assert await self.dfsp.ledger.audit() == []


@asynccontextmanager
async def open_shop(database: Database, tiers: TierTable | None = None) -> AsyncIterator[Shop]:
    engine = create_store_engine(database.url, schema=database.schema)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        clock = MovingClock()
        ledger = Ledger(sessions, clock)
        for account_id, kind in ((FLOAT, LedgerKind.FLOAT), (FEES, LedgerKind.FEE)):
            await ledger.open_account(
                account_id,
                currency="USD",
                kind=kind,
                owner="dfsp",
                allow_negative=kind == LedgerKind.FLOAT,
            )
        rng = random.Random(1)
        customers = Customers(
            sessions,
            ledger,
            clock=clock,
            rng=rng,
            user_numbers=LocalUserNumbers(sessions, rng),
            pin_policy=PinPolicy(),
            opening_balance=usd("1000"),
            float_account=FLOAT,
            currency="USD",
            tiers=tiers or demo_tier_table(),
        )
        notices = RecordedNotices()
        payments = Payments(
            sessions,
            ledger,
            customers,
            fees=FEE_TABLE,
            clock=clock,
            fee_account=FEES,
            notices=notices,
        )
        invoices = Invoices(sessions, ledger, customers, payments, clock=clock, notices=notices)
        dfsp = Dfsp(customers, ledger, database)
        merchant = await dfsp.register(
            1, first_name="Mary", last_name="Shop", role=CustomerRole.MERCHANT
        )
        buyer = await dfsp.register(2, first_name="Bob", last_name="Buyer")
        agent = await dfsp.register(3, first_name="Ann", last_name="Agent", role="agent")
        yield Shop(
            dfsp,
            payments,
            invoices,
            Cash(customers, payments, invoices),
            notices,
            clock,
            merchant,
            buyer,
            agent,
            await primary_of(dfsp, merchant),
            await primary_of(dfsp, buyer),
            await primary_of(dfsp, agent),
        )
    finally:
        await engine.dispose()


# --- sending an invoice -----------------------------------------------------------------


@asyncio_test
async def test_only_a_merchant_sends_an_invoice_from_an_account_they_may_invoice_from(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        for who, account in ((shop.buyer, shop.buyer_account), (shop.agent, shop.agent_account)):
            with pytest.raises(NotMerchant):
                await shop.invoices.create(
                    who.id, account, str(shop.merchant.user_number), usd("10")
                )
        with pytest.raises(InvoiceAccountNotAllowed):  # not the merchant's account
            await shop.invoices.create(
                shop.merchant.id, shop.buyer_account, str(shop.buyer.user_number), usd("10")
            )
        assert await shop.invoices.incoming(shop.buyer.id) == []


@asyncio_test
async def test_an_invoice_for_zero_to_nobody_or_to_oneself_is_refused(database: Database) -> None:
    async with open_shop(database) as shop:
        for amount in ("0", "-5"):
            with pytest.raises(InvalidAmount):
                await shop.invoice(amount)
        for nobody in ("99999999", "12", "not a number"):
            with pytest.raises(UnknownBuyer):
                await shop.invoices.create(shop.merchant.id, shop.shop_account, nobody, usd("10"))
        with pytest.raises(BuyerIsPayee):
            await shop.invoices.create(
                shop.merchant.id, shop.shop_account, str(shop.merchant.user_number), usd("10")
            )
        assert await shop.invoices.outgoing(shop.merchant.id) == []
        assert shop.notices.by_key == {}


@asyncio_test
async def test_a_new_invoice_is_in_both_pending_lists_and_pushed_to_the_buyer(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        first = await shop.invoice("100")
        shop.clock.now = NOW + timedelta(seconds=1)
        second = await shop.invoice("2.50")
        incoming = await shop.invoices.incoming(shop.buyer.id)
        assert [(p.invoice.id, p.other_name) for p in incoming] == [
            (second.id, "Mary Shop"),
            (first.id, "Mary Shop"),
        ]
        assert incoming[1].invoice.amount == usd("100")
        outgoing = await shop.invoices.outgoing(shop.merchant.id)
        assert [(p.invoice.id, p.other_name) for p in outgoing] == [
            (second.id, "Bob Buyer"),
            (first.id, "Bob Buyer"),
        ]
        assert await shop.invoices.incoming(shop.merchant.id) == []
        assert shop.notices.by_key[f"invoice:{first.id}:received"] == Notice(
            f"invoice:{first.id}:received",
            shop.buyer.id,
            "invoice_received",
            {"amount": "100 USD", "merchant": "Mary Shop", "reference": first.id},
            push=True,
        )


# --- approving ----------------------------------------------------------------------


@asyncio_test
async def test_approval_pays_the_principal_to_the_merchant_and_the_fee_from_the_buyer(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        quote = await shop.invoices.quote_approval(shop.buyer.id, invoice.id, shop.buyer_account)
        assert (quote.receiver_name, quote.amount, quote.fee, quote.total) == (
            "Mary Shop",
            usd("100"),
            usd("1"),
            usd("101"),
        )
        result = await shop.approve(invoice, "pay-1")
        assert result == SendResult(
            TransferState.EXECUTED, "pay-1", "Mary Shop", usd("100"), usd("1")
        )
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        assert await shop.balance(shop.merchant, shop.shop_account) == usd("1100")
        assert await shop.fees() == usd("1")
        transfer = await shop.dfsp.ledger.transfer("pay-1")
        buyer_ledger = f"customer:{shop.buyer_account}"
        assert transfer.kind == "invoice"
        assert transfer.postings == (
            Posting(buyer_ledger, f"customer:{shop.shop_account}", 10000),
            Posting(buyer_ledger, FEES, 100),
        )
        assert await shop.payments.ministatement(shop.buyer.id, shop.buyer_account, PIN, 2) == [
            StatementRow("Mary Shop", usd("-100"), NOW),
            StatementRow("fee", usd("-1"), NOW),
        ]
        assert await shop.state_of(invoice) is InvoiceState.PAID
        assert await shop.invoices.incoming(shop.buyer.id) == []
        assert await shop.invoices.outgoing(shop.merchant.id) == []
        await shop.sound()


@asyncio_test
async def test_approval_posts_sent_to_the_buyer_and_invoice_paid_to_the_merchant(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        await shop.approve(invoice, "pay-1")
        paid = {k: v for k, v in shop.notices.by_key.items() if not k.endswith(":received")}
        assert paid == {
            "transfer:pay-1:sender": Notice(
                "transfer:pay-1:sender",
                shop.buyer.id,
                "sent",
                {
                    "amount": "100 USD",
                    "fee": "1 USD",
                    "receiver": "Mary Shop",
                    "balance": "899 USD",
                },
            ),
            f"invoice:{invoice.id}:paid": Notice(
                f"invoice:{invoice.id}:paid",
                shop.merchant.id,
                "invoice_paid",
                {"amount": "100 USD", "buyer": "Bob Buyer", "reference": invoice.id},
            ),
        }


@asyncio_test
async def test_a_retried_approval_pays_once_and_posts_the_same_keys(database: Database) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        first = await shop.approve(invoice, "pay-1")
        keys, posts = set(shop.notices.by_key), shop.notices.posts
        again = await shop.approve(invoice, "pay-1")
        assert again == first
        assert set(shop.notices.by_key) == keys and shop.notices.posts == posts + 1
        with pytest.raises(InvoiceNotPending):
            await shop.approve(invoice, "pay-2")  # another approval of a paid invoice
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        assert await shop.balance(shop.merchant, shop.shop_account) == usd("1100")
        await shop.sound()


@asyncio_test
async def test_approval_beyond_the_balance_is_refused_and_the_invoice_stays_pending(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("1000")  # 1000 + the 1 USD fee > 1000
        with pytest.raises(InsufficientFunds):
            await shop.approve(invoice, "too-much")
        assert await shop.state_of(invoice) is InvoiceState.PENDING
        assert [p.invoice.id for p in await shop.invoices.incoming(shop.buyer.id)] == [invoice.id]
        assert await shop.dfsp.ledger.balance(f"customer:{shop.buyer_account}") == (
            usd("1000"),
            usd("1000"),
        )
        smaller = await shop.invoice("999")
        await shop.approve(smaller, "fits")
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("0")
        await shop.sound()


@asyncio_test
async def test_a_wrong_pin_refuses_the_approval_and_only_the_buyer_may_answer(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("10")
        with pytest.raises(WrongPin):
            await shop.approve(invoice, "wrong", pin=WRONG_PIN)
        for stranger in (shop.merchant, shop.agent):
            with pytest.raises(NotInvoiceBuyer):
                await shop.invoices.reject(stranger.id, invoice.id)
            with pytest.raises(NotInvoiceBuyer):
                await shop.invoices.quote_approval(stranger.id, invoice.id, shop.buyer_account)
        assert await shop.state_of(invoice) is InvoiceState.PENDING
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1000")


@asyncio_test
async def test_rejection_tells_the_merchant_and_ends_the_invoice(database: Database) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("10")
        rejected = await shop.invoices.reject(shop.buyer.id, invoice.id)
        assert (rejected.state, rejected.decided_at) == (InvoiceState.REJECTED, NOW)
        assert await shop.invoices.reject(shop.buyer.id, invoice.id) == rejected  # a retry
        with pytest.raises(NotInvoiceBuyer):
            await shop.invoices.reject(shop.merchant.id, invoice.id)
        assert shop.notices.by_key[f"invoice:{invoice.id}:rejected"] == Notice(
            f"invoice:{invoice.id}:rejected",
            shop.merchant.id,
            "invoice_rejected",
            {"amount": "10 USD", "buyer": "Bob Buyer", "reference": invoice.id},
        )
        with pytest.raises(InvoiceNotPending):
            await shop.approve(invoice, "late")
        assert await shop.invoices.outgoing(shop.merchant.id) == []
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1000")
        await shop.sound()


@asyncio_test
async def test_concurrent_approvals_of_one_invoice_pay_once(database: Database) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        outcomes = await asyncio.gather(
            *(shop.approve(invoice, f"race-{n}") for n in range(4)),
            shop.approve(invoice, "race-0"),
            return_exceptions=True,
        )
        paid = [o for o in outcomes if isinstance(o, SendResult)]
        refused = [o for o in outcomes if not isinstance(o, SendResult)]
        assert len({result.transfer_id for result in paid}) == 1
        # A loser's money is released; its retry (the second "race-0") hears so.
        losing = InvoiceBeingPaid | InvoiceNotPending | ApprovalExpired
        assert all(isinstance(o, losing) for o in refused), refused
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        assert await shop.balance(shop.merchant, shop.shop_account) == usd("1100")
        assert await shop.state_of(invoice) is InvoiceState.PAID
        await shop.sound()


@asyncio_test
async def test_an_approval_that_crashed_before_paying_is_finished_by_a_retry(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        ledger = shop.dfsp.ledger
        execute = ledger.execute

        async def crash(transfer_id: str) -> object:
            raise ConnectionError("the DFSP stopped")

        monkeypatch.setattr(ledger, "execute", crash)
        with pytest.raises(ConnectionError):
            await shop.approve(invoice, "crashed")
        monkeypatch.setattr(ledger, "execute", execute)
        # Its funds are held: another approval gives way, a rejection too.
        with pytest.raises(InvoiceBeingPaid):
            await shop.approve(invoice, "other")
        with pytest.raises(InvoiceBeingPaid):
            await shop.invoices.reject(shop.buyer.id, invoice.id)
        held = await shop.dfsp.ledger.balance(f"customer:{shop.buyer_account}")
        assert held == (usd("1000"), usd("899"))  # (balance, available)
        result = await shop.approve(invoice, "crashed")  # the retry finishes it
        assert (result.status, result.transfer_id) == (TransferState.EXECUTED, "crashed")
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        await shop.sound()


@asyncio_test
async def test_a_crashed_approval_whose_hold_ran_out_is_replaced_by_a_new_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        ledger = shop.dfsp.ledger
        execute = ledger.execute

        async def crash(transfer_id: str) -> object:
            raise ConnectionError("the DFSP stopped")

        monkeypatch.setattr(ledger, "execute", crash)
        with pytest.raises(ConnectionError):
            await shop.approve(invoice, "crashed")
        monkeypatch.setattr(ledger, "execute", execute)
        shop.clock.now = NOW + APPROVAL_HOLD
        result = await shop.approve(invoice, "fresh")
        assert result.transfer_id == "fresh"
        assert (await ledger.transfer("crashed")).state is TransferState.REJECTED
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        assert await shop.balance(shop.merchant, shop.shop_account) == usd("1100")
        await shop.sound()


@asyncio_test
async def test_a_payment_that_moved_money_before_a_crash_is_found_by_a_rejection(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_shop(database) as shop:
        invoice = await shop.invoice("100")
        ledger = shop.dfsp.ledger
        execute = ledger.execute

        async def execute_then_crash(transfer_id: str) -> object:
            await execute(transfer_id)
            raise ConnectionError("the DFSP stopped")

        monkeypatch.setattr(ledger, "execute", execute_then_crash)
        with pytest.raises(ConnectionError):
            await shop.approve(invoice, "paid")
        with pytest.raises(InvoiceNotPending):
            await shop.invoices.reject(shop.buyer.id, invoice.id)
        assert await shop.state_of(invoice) is InvoiceState.PAID
        assert f"invoice:{invoice.id}:paid" in shop.notices.by_key
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899")
        await shop.sound()


@asyncio_test
async def test_an_agent_cash_out_request_is_a_pending_transaction_of_its_own_kind(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        request = await shop.cash.request_cash_out(
            shop.agent.id, shop.agent_account, str(shop.buyer.user_number), usd("20")
        )
        assert request.kind is InvoiceKind.CASH_OUT
        incoming = await shop.invoices.incoming(shop.buyer.id)
        assert [(p.invoice.kind, p.other_name) for p in incoming] == [
            (InvoiceKind.CASH_OUT, "Ann Agent")
        ]
        accounts = await shop.dfsp.customers.accounts_of(shop.agent.id)
        commission = next(a.id for a in accounts if a.kind is AccountKind.COMMISSION)
        with pytest.raises(InvoiceAccountNotAllowed):
            await shop.cash.request_cash_out(
                shop.agent.id, commission, str(shop.buyer.user_number), usd("20")
            )
