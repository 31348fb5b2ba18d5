"""The DFSP as a running service in the network of ``ussdloop up``: customers register
and pay through ``DfspClient`` on dfsp1's API (the demo opening balance of 1000 USD from
the float, the demo fee of 1 USD), and a restart on the same data directory keeps them."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from dfsp.client import CustomerInfo, DfspClient
from dfsp.service import FEE_ACCOUNT, FLOAT_ACCOUNT
from tests.support import asyncio_test
from ussdloop.compose import Running, start_dfsp, start_network
from ussdloop.config import load_network
from ussdloop.money import Money

PIN = "2468"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def register(client: DfspClient, n: int, first_name: str) -> CustomerInfo:
    return await client.register(
        msisdn=f"+2567000002{n:02d}",
        first_name=first_name,
        last_name="Service",
        date_of_birth="1990-04-25",
        national_id=f"SV{n:04d}",
        pin=PIN,
    )


async def balance_of(client: DfspClient, customer: CustomerInfo) -> Money:
    assert customer.primary_account_id is not None
    return await client.balance(customer.customer_id, customer.primary_account_id, PIN)


@asyncio_test
async def test_customers_pay_through_the_api_and_survive_a_restart(tmp_path: Path) -> None:
    network = load_network(environ={})
    data_dir = tmp_path / "var"
    carrier = await start_network(network, any_port=True, data_dir=data_dir)
    try:
        assert set(carrier.dfsps) == {"dfsp1", "dfsp2"}
        dfsp1 = carrier.dfsps["dfsp1"]
        assert dfsp1.port != 0 and dfsp1.port != carrier.dfsps["dfsp2"].port
        assert any(e.startswith(f"dfsp1 API {dfsp1.base_url} ") for e in carrier.running.endpoints)
        assert (data_dir / "dfsp1.db").exists() and (data_dir / "dfsp2.db").exists()
        async with aiohttp.ClientSession() as session:
            client = DfspClient(dfsp1.base_url, session)
            assert await client.health()
            ann = await register(client, 1, "Ann")
            ben = await register(client, 2, "Ben")
            assert ann.primary_account_id is not None
            quote = await client.quote_send(
                ann.customer_id, ann.primary_account_id, ben.user_number, usd("10")
            )
            assert (quote.amount, quote.fee, quote.total) == (usd("10"), usd("1"), usd("11"))
            paid = await client.send(quote, PIN, "service-pay-1")
            assert paid.status == "executed"
            assert await balance_of(client, ann) == usd("989")
            assert await balance_of(client, ben) == usd("1010")

        # The same DFSP again, on the same data directory (and a new free port).
        await dfsp1.stop()
        running = Running()
        again = await start_dfsp(network, "dfsp1", running, any_port=True, data_dir=data_dir)
        try:
            async with aiohttp.ClientSession() as session:
                client = DfspClient(again.base_url, session)
                assert await client.customer_by_msisdn("+256700000201") == ann
                assert await client.customer_by_user_number(ben.user_number) == ben
                assert await balance_of(client, ann) == usd("989")
                assert await balance_of(client, ben) == usd("1010")
                # The float and fee accounts were found again, not opened afresh: the
                # fee collected before the restart is there, the next customer is funded
                # from the same float, and the ledger still sums to zero.
                cy = await register(client, 3, "Cy")
                assert await balance_of(client, cy) == usd("1000")
            assert again.ledger is not None
            assert (await again.ledger.balance(FEE_ACCOUNT))[0] == usd("1")
            assert (await again.ledger.balance(FLOAT_ACCOUNT))[0] == usd("-3000")
            assert await again.ledger.total_balance("USD") == usd("0")
            assert await again.ledger.audit() == []
        finally:
            await running.stop()
    finally:
        await carrier.running.stop()


@asyncio_test
async def test_a_dfsp_without_an_opening_balance_opens_empty_accounts(tmp_path: Path) -> None:
    network = load_network(environ={"USSDLOOP__DFSPS__DFSP2__OPENING_BALANCE": '"0"'})
    running = Running()
    dfsp2 = await start_dfsp(network, "dfsp2", running, any_port=True, data_dir=tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            client = DfspClient(dfsp2.base_url, session)
            dee = await register(client, 4, "Dee")
            assert await balance_of(client, dee) == usd("0")
    finally:
        await running.stop()
    assert (tmp_path / "dfsp2.db").exists()
