"""Agent cash-in and cash-out at the service level (SPEC section 3, "Fees", "Customers":
agents), on SQLite always and on PostgreSQL where USSDLOOP_TEST_PG is set. The customer
pays the agent's fee both ways: 0.50 USD kept back from a cash-in, 0.75 USD added to a
cash-out (``test_invoices.FEE_TABLE``)."""

from __future__ import annotations

import pytest

from dfsp.domain.accounts import AccountKind
from dfsp.domain.invoices import BuyerIsPayee, InvoiceState, NotAgent
from dfsp.domain.limits import LimitName, Limits
from dfsp.domain.notices import Notice
from dfsp.domain.payments import LimitExceeded, SendNotAllowed, SendResult
from dfsp.domain.pins import WrongPin
from dfsp.domain.tiers import Tier, TierTable
from dfsp.domain.transfers import Posting, TransferState
from tests.integration.conftest import Database
from tests.integration.dfsp.test_customers import PIN
from tests.integration.dfsp.test_invoices import FEES, WRONG_PIN, Shop, open_shop, usd
from tests.support import asyncio_test


async def cash_in(shop: Shop, amount: str, transfer_id: str, pin: str = PIN) -> SendResult:
    quote = await shop.cash.quote_cash_in(
        shop.agent.id, shop.agent_account, str(shop.buyer.user_number), usd(amount)
    )
    return await shop.cash.cash_in(quote, pin, transfer_id)


@asyncio_test
async def test_cash_in_pays_the_customer_less_the_agent_fee(database: Database) -> None:
    async with open_shop(database) as shop:
        quote = await shop.cash.quote_cash_in(
            shop.agent.id, shop.agent_account, str(shop.buyer.user_number), usd("100")
        )
        assert (quote.receiver_name, quote.amount, quote.total) == (
            "Bob Buyer",
            usd("100"),
            usd("100"),
        )
        assert quote.quote.receiver_fee == usd("0.50")
        result = await shop.cash.cash_in(quote, PIN, "in-1")
        assert (result.status, result.amount) == (TransferState.EXECUTED, usd("100"))
        assert await shop.balance(shop.agent, shop.agent_account) == usd("900")
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1099.50")
        assert await shop.fees() == usd("0.50")
        transfer = await shop.dfsp.ledger.transfer("in-1")
        agent_ledger = f"customer:{shop.agent_account}"
        assert (transfer.kind, transfer.postings) == (
            "cash_in",
            (
                Posting(agent_ledger, f"customer:{shop.buyer_account}", 9950),
                Posting(agent_ledger, FEES, 50),
            ),
        )
        assert await cash_in(shop, "100", "in-1") == result  # a retry pays once
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1099.50")
        assert shop.notices.by_key == {
            "transfer:in-1:sender": Notice(
                "transfer:in-1:sender",
                shop.agent.id,
                "sent",
                {
                    "amount": "100 USD",
                    "fee": "0 USD",
                    "receiver": "Bob Buyer",
                    "balance": "900 USD",
                },
            ),
            "transfer:in-1:receiver": Notice(
                "transfer:in-1:receiver",
                shop.buyer.id,
                "cash_in",
                {"amount": "99.50 USD", "agent": "Ann Agent", "balance": "1099.50 USD"},
            ),
        }
        await shop.sound()


@asyncio_test
async def test_only_an_agent_cashes_in_from_the_main_account_to_someone_else(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        for who, account in ((shop.buyer, shop.buyer_account), (shop.merchant, shop.shop_account)):
            with pytest.raises(NotAgent):
                await shop.cash.quote_cash_in(
                    who.id, account, str(shop.buyer.user_number), usd("10")
                )
        accounts = await shop.dfsp.customers.accounts_of(shop.agent.id)
        commission = next(a.id for a in accounts if a.kind is AccountKind.COMMISSION)
        with pytest.raises(SendNotAllowed):
            await shop.cash.quote_cash_in(
                shop.agent.id, commission, str(shop.buyer.user_number), usd("10")
            )
        with pytest.raises(BuyerIsPayee):
            await shop.cash.quote_cash_in(
                shop.agent.id, shop.agent_account, str(shop.agent.user_number), usd("10")
            )
        with pytest.raises(WrongPin):
            await cash_in(shop, "10", "wrong", pin=WRONG_PIN)
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1000")


@asyncio_test
async def test_cash_in_keeps_to_the_agents_tier_limits(database: Database) -> None:
    tight = TierTable((Tier("tight", Limits(max_transfer=usd("50"))),))
    async with open_shop(database, tight) as shop:
        with pytest.raises(LimitExceeded) as refused:
            await cash_in(shop, "50.01", "big")
        assert refused.value.violation.limit is LimitName.MAX_TRANSFER
        await cash_in(shop, "50", "fits")
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("1049.50")


@asyncio_test
async def test_cash_out_is_approved_by_the_customer_with_their_pin_and_fee(
    database: Database,
) -> None:
    async with open_shop(database) as shop:
        request = await shop.cash.request_cash_out(
            shop.agent.id, shop.agent_account, str(shop.buyer.user_number), usd("100")
        )
        quote = await shop.invoices.quote_approval(shop.buyer.id, request.id, shop.buyer_account)
        assert (quote.receiver_name, quote.fee, quote.total) == (
            "Ann Agent",
            usd("0.75"),
            usd("100.75"),
        )
        with pytest.raises(WrongPin):
            await shop.invoices.approve(
                shop.buyer.id, request.id, shop.buyer_account, WRONG_PIN, "o"
            )
        result = await shop.invoices.approve(
            shop.buyer.id, request.id, shop.buyer_account, PIN, "out-1"
        )
        assert (result.status, result.amount, result.fee) == (
            TransferState.EXECUTED,
            usd("100"),
            usd("0.75"),
        )
        assert await shop.balance(shop.buyer, shop.buyer_account) == usd("899.25")
        assert await shop.balance(shop.agent, shop.agent_account) == usd("1100")
        assert await shop.fees() == usd("0.75")
        assert (await shop.dfsp.ledger.transfer("out-1")).kind == "cash_out"
        assert await shop.state_of(request) is InvoiceState.PAID
        assert shop.notices.by_key["transfer:out-1:sender"] == Notice(
            "transfer:out-1:sender",
            shop.buyer.id,
            "cash_out",
            {"amount": "100 USD", "fee": "0.75 USD", "agent": "Ann Agent", "balance": "899.25 USD"},
        )
        assert shop.notices.by_key["transfer:out-1:receiver"] == Notice(
            "transfer:out-1:receiver",
            shop.agent.id,
            "received",
            {"amount": "100 USD", "sender": "Bob Buyer", "balance": "1100 USD"},
        )
        await shop.sound()


@asyncio_test
async def test_only_an_agent_asks_for_a_cash_out(database: Database) -> None:
    async with open_shop(database) as shop:
        with pytest.raises(NotAgent):
            await shop.cash.request_cash_out(
                shop.merchant.id, shop.shop_account, str(shop.buyer.user_number), usd("10")
            )
        assert await shop.invoices.incoming(shop.buyer.id) == []
