"""The central directory through its typed client, on a running central service."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from central.client import CentralError, ParticipantsClient
from central.directory.client import DirectoryClient, DirectoryEntry
from central.directory.service import Directory
from central.fraud.client import FraudClient
from tests.integration.central.support import Central, running_central
from tests.integration.conftest import Database
from tests.support import asyncio_test


async def directory_of(central: Central, name: str) -> DirectoryClient:
    """A registered DFSP's directory client, its endpoint set."""
    client = DirectoryClient(central.as_dfsp(await central.register(name)))
    await client.set_endpoint(f"http://{name}.example:3043/v1/")
    return client


def refused(error: pytest.ExceptionInfo[CentralError]) -> tuple[int, str]:
    return error.value.status, error.value.id


@asyncio_test
async def test_a_registered_user_is_looked_up_at_their_primary_dfsp(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        number = await dfsp1.register_user("Jane Doe")
        assert len(number) == 8 and number.isdigit() and number[0] != "0"
        assert await dfsp1.lookup(number) == DirectoryEntry(
            number, "dfsp1", "Jane Doe", f"http://dfsp1.example:3043/v1/receivers/{number}"
        )
        other = await dfsp1.register_user("John Smith")
        assert other != number
        with pytest.raises(CentralError) as unknown:
            await dfsp1.lookup("12345678" if "12345678" not in (number, other) else "87654321")
        assert refused(unknown) == (404, "NotFoundError")


@asyncio_test
async def test_a_second_dfsp_is_added_and_the_primary_changes_only_from_the_primary(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        dfsp2 = await directory_of(central, "dfsp2")
        number = await dfsp1.register_user("Jane Doe")
        assert await dfsp2.register_user("ignored", number) == number
        with pytest.raises(CentralError) as twice:
            await dfsp2.register_user("Jane Doe", number)
        assert refused(twice) == (409, "AlreadyExistsError")
        assert (await dfsp2.lookup(number)).dfsp == "dfsp1"  # the first DFSP stays primary

        with pytest.raises(CentralError) as not_primary:
            await dfsp2.set_primary(number, "dfsp2")
        assert refused(not_primary) == (403, "ForbiddenError")
        with pytest.raises(CentralError) as not_the_users:
            await dfsp1.set_primary(number, "dfsp3")
        assert refused(not_the_users) == (404, "NotFoundError")
        await dfsp1.set_primary(number, "dfsp2")
        entry = await dfsp1.lookup(number)
        assert (entry.dfsp, entry.spsp_receiver) == (
            "dfsp2",
            f"http://dfsp2.example:3043/v1/receivers/{number}",
        )
        await dfsp2.set_primary(number, "dfsp2")  # the same primary again: no change

        with pytest.raises(CentralError) as unknown_user:
            await dfsp2.register_user("Jane Doe", "99999999")
        assert refused(unknown_user) == (404, "NotFoundError")


@asyncio_test
async def test_the_users_of_a_paused_dfsp_look_unknown(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        number = await dfsp1.register_user("Jane Doe")
        operator = ParticipantsClient(central.as_operator())
        await operator.pause("dfsp1")
        with pytest.raises(CentralError) as unknown:
            await dfsp1.lookup(number)
        assert refused(unknown) == (404, "NotFoundError")
        assert await dfsp1.lookup_many([number]) == {number: None}
        await operator.unpause("dfsp1")
        assert (await dfsp1.lookup(number)).dfsp == "dfsp1"


@asyncio_test
async def test_a_dfsp_without_an_endpoint_has_no_reachable_users(database: Database) -> None:
    async with running_central(database) as central:
        silent = DirectoryClient(central.as_dfsp(await central.register("dfsp1")))
        number = await silent.register_user("Jane Doe")
        with pytest.raises(CentralError) as unknown:
            await silent.lookup(number)
        assert refused(unknown) == (404, "NotFoundError")
        with pytest.raises(CentralError) as bad_url:
            await silent.set_endpoint("ftp://dfsp1")
        assert refused(bad_url) == (400, "ValidationError")


@asyncio_test
async def test_batch_lookup_answers_every_identifier(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        numbers = [await dfsp1.register_user(f"User {i}") for i in range(3)]
        unknown = next(n for n in ("11111111", "22222222") if n not in numbers)
        found = await dfsp1.lookup_many([*numbers, unknown, "not-a-number"])
        names = [entry.name if (entry := found[n]) else None for n in numbers]
        assert names == ["User 0", "User 1", "User 2"]
        assert found[unknown] is None and found["not-a-number"] is None
        with pytest.raises(CentralError) as too_many:
            await dfsp1.lookup_many(str(10_000_000 + i) for i in range(1001))
        assert refused(too_many) == (400, "ValidationError")


@asyncio_test
async def test_identifier_types_and_an_unknown_type(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        http = central.as_dfsp(dfsp1)
        assert await http.call("GET", "/identifier-types") == [
            {"identifierType": "eur", "description": "Central end user registry"}
        ]
        with pytest.raises(CentralError) as wrong_type:
            await http.call("GET", "/resources", params={"identifierType": "0", "identifier": "1"})
        assert refused(wrong_type) == (404, "InvalidQueryParameterError")


@asyncio_test
async def test_removal_rules(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        dfsp2 = await directory_of(central, "dfsp2")
        number = await dfsp1.register_user("Jane Doe")
        await dfsp2.register_user("Jane Doe", number)
        with pytest.raises(CentralError) as primary:
            await dfsp1.remove_dfsp(number)
        assert refused(primary) == (422, "UnprocessableEntityError")
        await dfsp2.remove_dfsp(number)
        with pytest.raises(CentralError) as gone:
            await dfsp2.remove_dfsp(number)
        assert refused(gone) == (404, "NotFoundError")
        await dfsp1.remove_dfsp(number)  # the last DFSP: the user is removed
        with pytest.raises(CentralError) as unknown:
            await dfsp1.lookup(number)
        assert refused(unknown) == (404, "NotFoundError")
        with pytest.raises(CentralError) as no_user:
            await dfsp2.register_user("Jane Doe", number)
        assert refused(no_user) == (404, "NotFoundError")

        other = await dfsp1.register_user("John Smith")
        http2 = central.as_dfsp(await ParticipantsClient(central.as_operator()).register("dfsp3"))
        with pytest.raises(CentralError) as not_itself:
            await http2.call("DELETE", f"/users/{other}/dfsps/dfsp1")
        assert refused(not_itself) == (403, "ForbiddenError")


@asyncio_test
async def test_a_blacklisted_user_gets_no_further_dfsp(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        credentials = await central.register("dfsp2")
        dfsp2 = DirectoryClient(central.as_dfsp(credentials))
        number = await dfsp1.register_user("Jane Doe")
        await FraudClient(central.as_operator()).blacklist(number, "stolen identity")
        with pytest.raises(CentralError) as blocked:
            await dfsp2.register_user("Jane Doe", number)
        assert refused(blocked) == (403, "FraudViolationError")
        await FraudClient(central.as_operator()).unblacklist(number, "cleared")
        await FraudClient(central.as_dfsp(credentials)).report(number, 100, "mule account")
        with pytest.raises(CentralError) as scored:
            await dfsp2.register_user("Jane Doe", number)
        assert refused(scored) == (403, "FraudViolationError")


@asyncio_test
async def test_unauthorised_calls_are_refused(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        number = await dfsp1.register_user("Jane Doe")
        async with central.session.get(
            f"{central.url}/resources", params={"identifierType": "eur", "identifier": number}
        ) as response:
            assert (response.status, (await response.json())["id"]) == (401, "UnauthorizedError")
        operator = DirectoryClient(central.as_operator())
        with pytest.raises(CentralError) as not_a_dfsp:
            await operator.register_user("Jane Doe")
        assert refused(not_a_dfsp) == (403, "ForbiddenError")
        assert (await operator.lookup(number)).dfsp == "dfsp1"  # reading is open to the operator
        await ParticipantsClient(central.as_operator()).pause("dfsp1")
        with pytest.raises(CentralError) as paused:
            await dfsp1.register_user("John Smith")
        assert refused(paused) == (403, "ForbiddenError")


@asyncio_test
async def test_a_taken_user_number_is_drawn_again(database: Database) -> None:
    async with running_central(database) as central:
        await central.register("dfsp1")
        assert central.service.context is not None
        draws = itertools.chain(["23456789", "23456789", "34567890"])
        directory = Directory(
            central.service.context.sessions,
            central.service.context.clock,
            draw=lambda: next(draws),
        )
        first = await directory.register_user("dfsp1", "Jane Doe")
        second = await directory.register_user("dfsp1", "John Smith")
        assert (first.user_number, second.user_number) == ("23456789", "34567890")


@asyncio_test
async def test_concurrent_registrations_and_primary_changes_keep_one_primary(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await directory_of(central, "dfsp1")
        others = [await directory_of(central, f"dfsp{i}") for i in range(2, 5)]
        numbers = await asyncio.gather(*(dfsp1.register_user(f"User {i}") for i in range(20)))
        assert len(set(numbers)) == 20
        number = numbers[0]
        await asyncio.gather(*(other.register_user("User 0", number) for other in others))
        results = await asyncio.gather(
            *(dfsp1.set_primary(number, f"dfsp{i}") for i in range(2, 5)),
            return_exceptions=True,
        )
        changed = [result for result in results if result is None]
        assert len(changed) == 1  # the first change moved the primary away from dfsp1
        assert all(
            isinstance(r, CentralError) and r.status == 403 for r in results if r is not None
        )
        assert (await dfsp1.lookup(number)).dfsp in {"dfsp2", "dfsp3", "dfsp4"}


@asyncio_test
async def test_concurrent_announces_of_one_dfsp_all_succeed(database: Database) -> None:
    """A DFSP announcing its endpoint from several nodes (or retries) at once: the last
    one wins, none fails on the new row's key."""
    async with running_central(database) as central:
        http = central.as_dfsp(await central.register("dfsp1"))
        client = DirectoryClient(http)
        urls = [f"http://node{n}.dfsp1.example/interledger" for n in range(6)]
        await asyncio.gather(*(client.set_endpoint(url) for url in urls))
        assert (await http.call("GET", "/directory/endpoint"))["url"] in urls
