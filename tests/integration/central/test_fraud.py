"""Central fraud sharing through its typed client, on a running central service."""

from __future__ import annotations

import pytest

from central.client import CentralError, CentralHttp
from central.fraud.client import FraudClient
from dfsp.interledger import fraud_screen
from tests.integration.central.support import Central, running_central
from tests.integration.conftest import Database
from tests.support import asyncio_test

JANE = "23456789"
JOHN, CLEAN = "34567890", "45678901"


@asyncio_test
async def test_the_score_is_the_highest_of_each_dfsps_latest_report(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = FraudClient(central.as_dfsp(await central.register("dfsp1")))
        dfsp2 = FraudClient(central.as_dfsp(await central.register("dfsp2")))
        clean = await dfsp1.user(JANE)
        assert (clean.score, clean.blacklisted, clean.reports, clean.blocked) == (
            0,
            False,
            (),
            False,
        )

        assert (await dfsp1.report(JANE, 40, "unusual pattern")).score == 40
        assert (await dfsp2.report(JANE, 70, "chargebacks")).score == 70
        assert (await dfsp2.report(JANE, 10, "chargebacks explained")).score == 40
        user = await dfsp1.user(JANE)
        assert sorted((r.dfsp, r.score, r.reason) for r in user.reports) == [
            ("dfsp1", 40, "unusual pattern"),
            ("dfsp2", 10, "chargebacks explained"),
        ]
        assert not user.blocked
        assert (await dfsp1.report(JANE, 100, "confirmed mule")).blocked


@asyncio_test
async def test_blacklisting_needs_a_reason_and_records_who(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = FraudClient(central.as_dfsp(await central.register("dfsp1")))
        operator = FraudClient(central.as_operator())
        listed = await dfsp1.blacklist(JANE, "stolen identity")
        assert (listed.blacklisted, listed.reason, listed.changed_by) == (
            True,
            "stolen identity",
            "dfsp1",
        )
        assert listed.blocked and listed.score == 0
        cleared = await operator.unblacklist(JANE, "identity confirmed")
        assert (cleared.blacklisted, cleared.reason, cleared.changed_by) == (
            False,
            "identity confirmed",
            "operator:operator",
        )
        assert not cleared.blocked
        with pytest.raises(CentralError) as no_reason:
            await operator.blacklist(JANE, "")
        assert (no_reason.value.status, no_reason.value.id) == (400, "BadRequest")


@asyncio_test
async def test_bad_reports_and_unauthorised_calls_are_refused(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = FraudClient(central.as_dfsp(await central.register("dfsp1")))
        for number, score in ((JANE, 101), (JANE, -1), ("0123456", 50), ("01234567", 50)):
            with pytest.raises(CentralError) as bad:
                await dfsp1.report(number, score, "why")
            assert bad.value.status == 400
        with pytest.raises(CentralError) as operator_reports:
            await FraudClient(central.as_operator()).report(JANE, 50, "why")
        assert (operator_reports.value.status, operator_reports.value.id) == (
            403,
            "ForbiddenError",
        )
        async with central.session.get(f"{central.url}/fraud/users/{JANE}") as response:
            assert response.status == 401
        async with central.session.put(
            f"{central.url}/fraud/blacklist/{JANE}", json={"reason": "x"}
        ) as response:
            assert response.status == 401


async def jane_scored_100_and_john_blacklisted(central: Central) -> CentralHttp:
    """dfsp1's credentials, after it scored Jane 100 and blacklisted John."""
    http = central.as_dfsp(await central.register("dfsp1"))
    await FraudClient(http).report(JANE, 100, "confirmed mule")
    await FraudClient(http).blacklist(JOHN, "stolen identity")
    return http


@asyncio_test
async def test_many_users_are_looked_up_at_once_in_order_the_never_reported_clean(
    database: Database,
) -> None:
    async with running_central(database) as central:
        http = await jane_scored_100_and_john_blacklisted(central)
        dfsp1 = FraudClient(http)
        users = await dfsp1.users([CLEAN, JANE, JOHN, JANE])
        assert users == {number: await dfsp1.user(number) for number in (CLEAN, JANE, JOHN)}
        assert [users[n].blocked for n in (CLEAN, JANE, JOHN)] == [False, True, True]
        assert users[CLEAN].score == 0 and users[CLEAN].reports == ()
        answer = await http.call("POST", "/fraud/users/lookup", {"numbers": [JOHN, CLEAN, JOHN]})
        single = await http.call("GET", f"/fraud/users/{JOHN}")
        assert [user["userNumber"] for user in answer["users"]] == [JOHN, CLEAN, JOHN]
        assert answer["users"][0] == single
        many = [f"5{n:07d}" for n in range(150)]  # more than one call's worth
        assert sorted(await dfsp1.users(many)) == many
        assert await dfsp1.users([]) == {}


@asyncio_test
async def test_a_bad_lookup_of_many_users_is_refused(database: Database) -> None:
    async with running_central(database) as central:
        http = central.as_dfsp(await central.register("dfsp1"))
        for body in (
            {},
            {"numbers": JANE},
            {"numbers": []},
            {"numbers": [JANE, 23456790]},
            {"numbers": [JANE, "0123456"]},
            {"numbers": [f"5{n:07d}" for n in range(101)]},
        ):
            with pytest.raises(CentralError) as bad:
                await http.call("POST", "/fraud/users/lookup", body)
            assert bad.value.status == 400, body
        url = f"{central.url}/fraud/users/lookup"
        async with central.session.post(url, json={"numbers": [JANE]}) as response:
            assert response.status == 401


@asyncio_test
async def test_the_payees_screening_names_the_blocked_and_blocks_all_when_the_centre_cannot_say(
    database: Database,
) -> None:
    async with running_central(database) as central:
        http = await jane_scored_100_and_john_blacklisted(central)
        screen = fraud_screen(http)
        assert await screen([JANE, JOHN, CLEAN]) == {
            JANE: "fraud score 100",
            JOHN: "stolen identity",
        }
        refused = fraud_screen(CentralHttp(central.url, central.session, "nobody", "wrong"))
        unreachable = fraud_screen(CentralHttp("http://127.0.0.1:9", central.session, "k", "s"))
        for unavailable in (refused, unreachable):
            answer = await unavailable([JANE, CLEAN])
            assert list(answer) == [JANE, CLEAN]
            assert all(why.startswith("fraud screening unavailable (") for why in answer.values())
