"""Central rules through their typed client, on a running central service: whether a
transfer is allowed (and why not), and the scheme fee."""

from __future__ import annotations

from typing import Any

import pytest

from central.client import CentralError, ParticipantsClient
from central.directory.client import DirectoryClient
from central.fraud.client import FraudClient
from central.rules.client import Eligibility, RulesClient
from tests.integration.central.support import Central, running_central
from tests.integration.conftest import Database
from tests.support import asyncio_test
from ussdloop.config import ConfigError
from ussdloop.money import Money

BANDS: dict[str, Any] = {
    "bands": [
        {"up_to": "100", "flat": "0.50"},
        {"up_to": "1000", "flat": "1", "percent": "0.5"},
        {"flat": "5", "percent": "0.25"},
    ]
}


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


async def two_users(central: Central) -> tuple[RulesClient, FraudClient, str, str]:
    """A sender at dfsp1, a receiver at dfsp2 (endpoints set); dfsp1's rules and fraud."""
    credentials = await central.register("dfsp1")
    dfsp1 = DirectoryClient(central.as_dfsp(credentials))
    dfsp2 = DirectoryClient(central.as_dfsp(await central.register("dfsp2")))
    await dfsp1.set_endpoint("http://dfsp1.example/v1")
    await dfsp2.set_endpoint("http://dfsp2.example/v1")
    sender = await dfsp1.register_user("Jane Doe")
    receiver = await dfsp2.register_user("John Smith")
    http = central.as_dfsp(credentials)
    return RulesClient(http), FraudClient(http), sender, receiver


@asyncio_test
async def test_a_transfer_is_allowed_or_refused_with_its_reason(database: Database) -> None:
    async with running_central(database, max_transfer="100000") as central:
        rules, fraud, sender, receiver = await two_users(central)
        assert await rules.check_transfer(sender, receiver, usd("125")) == Eligibility(True)
        assert await rules.check_transfer(sender, receiver, usd("100000")) == Eligibility(True)
        assert await rules.check_transfer(sender, receiver, usd("100000.01")) == Eligibility(
            False, "transfer_limit_exceeded", "Not allowed to send more than 100,000"
        )
        assert (await rules.check_transfer(sender, receiver, usd("0"))).code == "invalid_amount"
        assert (await rules.check_transfer(sender, "99999999", usd("1"))).code == (
            "unknown_receiver"
        )

        await fraud.blacklist(receiver, "stolen identity")
        refused = await rules.check_transfer(sender, receiver, usd("1"))
        assert (refused.allowed, refused.code) == (False, "fraud_violation")
        await fraud.unblacklist(receiver, "cleared")
        await fraud.report(sender, 100, "confirmed mule")
        assert (await rules.check_transfer(sender, receiver, usd("1"))).code == "fraud_violation"
        await fraud.report(sender, 99, "under review")
        assert (await rules.check_transfer(sender, receiver, usd("1"))).allowed


@asyncio_test
async def test_the_receivers_of_a_paused_dfsp_are_unknown(database: Database) -> None:
    async with running_central(database) as central:
        rules, _, sender, receiver = await two_users(central)
        await ParticipantsClient(central.as_operator()).pause("dfsp2")
        assert (await rules.check_transfer(sender, receiver, usd("1"))).code == ("unknown_receiver")


@asyncio_test
async def test_malformed_amounts_are_invalid_and_missing_parameters_refused(
    database: Database,
) -> None:
    async with running_central(database) as central:
        rules, _, sender, receiver = await two_users(central)
        http = central.as_operator()
        for amount in ("abc", "1.001", "-5"):
            answer = await http.call(
                "GET",
                "/transfer",
                params={
                    "sender_user_number": sender,
                    "receiver_user_number": receiver,
                    "amount": amount,
                },
            )
            assert answer["allowed"] is False and answer["reason"]["code"] == "invalid_amount"
        with pytest.raises(CentralError) as missing:
            await http.call("GET", "/transfer", params={"sender_user_number": sender})
        assert missing.value.status == 400
        async with central.session.get(f"{central.url}/transfer") as response:
            assert response.status == 401
        assert (await rules.check_transfer(sender, receiver, usd("1"))).allowed  # no limit set


@asyncio_test
async def test_many_transfers_are_checked_at_once_each_with_its_reason_or_fee(
    database: Database,
) -> None:
    async with running_central(database, max_transfer="100000", scheme_fee=BANDS) as central:
        dfsp2 = DirectoryClient(central.as_dfsp(await central.register("dfsp2")))
        http = central.as_dfsp(await central.register("dfsp1"))
        rules, fraud, dfsp1 = RulesClient(http), FraudClient(http), DirectoryClient(http)
        await dfsp1.set_endpoint("http://dfsp1.example/v1")
        await dfsp2.set_endpoint("http://dfsp2.example/v1")
        sender, same_dfsp, blocked = [
            await dfsp1.register_user(name) for name in ("Jane Doe", "Ann Lee", "Bob Roe")
        ]
        receiver = await dfsp2.register_user("John Smith")
        await fraud.blacklist(blocked, "stolen identity")
        checks = await rules.check_transfers(
            sender,
            [
                (receiver, usd("100")),
                (receiver, usd("101")),
                (same_dfsp, usd("500")),  # within dfsp1: no scheme fee
                ("99999999", usd("1")),
                ("not a number", usd("1")),
                (receiver, usd("100000.01")),
                (blocked, usd("1")),
            ],
        )
        assert [(c.eligibility.code, c.scheme_fee) for c in checks] == [
            (None, usd("0.50")),
            (None, usd("1.51")),
            (None, usd("0")),
            ("unknown_receiver", None),
            ("unknown_receiver", None),
            ("transfer_limit_exceeded", None),
            ("fraud_violation", None),
        ]
        one = await rules.check_transfer(sender, receiver, usd("100000.01"))
        assert checks[5].eligibility == one  # the same answer as one at a time


@asyncio_test
async def test_a_batch_check_refuses_bad_input_and_callers_that_are_not_dfsps(
    database: Database,
) -> None:
    async with running_central(database) as central:
        _, _, sender, receiver = await two_users(central)
        http = central.as_dfsp(await central.register("dfsp3"))
        bad_bodies: list[Any] = [
            {"transfers": []},  # no sender
            {"sender_user_number": sender, "transfers": "all"},
            {"sender_user_number": sender, "transfers": [{"amount": "1"}]},
            {"sender_user_number": "12", "transfers": []},
            {
                "sender_user_number": sender,
                "transfers": [{"receiver_user_number": receiver, "amount": "1"}] * 1001,
            },
        ]
        for body in bad_bodies:
            with pytest.raises(CentralError) as refused:
                await http.call("POST", "/transfers/check", body)
            assert refused.value.status == 400, body
        with pytest.raises(CentralError) as operator:
            await central.as_operator().call(
                "POST", "/transfers/check", {"sender_user_number": sender, "transfers": []}
            )
        assert operator.value.status == 403
        assert await http.call(
            "POST", "/transfers/check", {"sender_user_number": sender, "transfers": []}
        ) == {"transfers": []}


@asyncio_test
async def test_the_scheme_fee_applies_only_across_dfsps_by_band(database: Database) -> None:
    async with running_central(database, scheme_fee=BANDS) as central:
        rules = RulesClient(central.as_dfsp(await central.register("dfsp1")))
        assert await rules.scheme_fee(usd("500"), "dfsp1", "dfsp1") == usd("0")
        assert await rules.scheme_fee(usd("100"), "dfsp1", "dfsp2") == usd("0.50")
        assert await rules.scheme_fee(usd("100.01"), "dfsp1", "dfsp2") == usd("1.50")  # 0.50005
        assert await rules.scheme_fee(usd("101"), "dfsp1", "dfsp2") == usd("1.51")  # 0.505 up
        assert await rules.scheme_fee(usd("1000"), "dfsp1", "dfsp2") == usd("6")
        assert await rules.scheme_fee(usd("1000.02"), "dfsp1", "dfsp2") == usd("7.50")
        with pytest.raises(CentralError) as zero:
            await rules.scheme_fee(usd("0"), "dfsp1", "dfsp2")
        assert zero.value.status == 400


@asyncio_test
async def test_no_scheme_fee_is_configured_by_default(database: Database) -> None:
    async with running_central(database) as central:
        rules = RulesClient(central.as_dfsp(await central.register("dfsp1")))
        assert await rules.scheme_fee(usd("500"), "dfsp1", "dfsp2") == usd("0")


@asyncio_test
async def test_a_bad_scheme_fee_stops_the_start_naming_the_key(database: Database) -> None:
    bad = {"bands": [{"up_to": "100", "flat": "0.50"}, {"flat": "1", "percent": "abc"}]}
    with pytest.raises(ConfigError, match=r"central\.scheme_fee\.bands\[1\]\.percent"):
        async with running_central(database, scheme_fee=bad):
            pass
