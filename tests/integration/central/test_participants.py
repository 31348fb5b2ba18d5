"""The central API's participants and authentication, on a running central service."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from central.client import CentralError, CentralHttp, ParticipantsClient
from central.participants import VERIFIED_FOR, Participants, Status
from tests.integration.central.support import running_central
from tests.integration.conftest import Database
from tests.support import asyncio_test


@asyncio_test
async def test_the_operator_registers_dfsps_whose_credentials_are_generated(
    database: Database,
) -> None:
    async with running_central(database) as central:
        operator = ParticipantsClient(central.as_operator())
        dfsp1 = await operator.register("dfsp1", net_debit_cap="5000")
        assert dfsp1.name == "dfsp1"
        assert dfsp1.key != "dfsp1" and dfsp1.secret != "dfsp1" and len(dfsp1.secret) >= 40
        with pytest.raises(CentralError) as taken:
            await operator.register("dfsp1")
        assert (taken.value.status, taken.value.id) == (409, "AlreadyExistsError")
        with pytest.raises(CentralError) as bad:
            await operator.register("dfsp 1")
        assert (bad.value.status, bad.value.id) == (400, "ValidationError")

        itself = ParticipantsClient(central.as_dfsp(dfsp1))
        assert (await itself.get("dfsp1")).net_debit_cap == "5000.00"
        dfsp2 = await operator.register("dfsp2")
        with pytest.raises(CentralError) as other:
            await itself.get("dfsp2")
        assert other.value.status == 403
        with pytest.raises(CentralError) as not_operator:
            await itself.register("dfsp3")
        assert (not_operator.value.status, not_operator.value.id) == (403, "ForbiddenError")
        assert [p.name for p in await operator.all()] == ["dfsp1", "dfsp2"]
        assert (await operator.set_net_debit_cap("dfsp2", "100.50")).net_debit_cap == "100.50"
        assert (await operator.set_net_debit_cap("dfsp2", None)).net_debit_cap is None
        del dfsp2


@asyncio_test
async def test_wrong_or_missing_credentials_are_refused(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        wrong = ParticipantsClient(CentralHttp(central.url, central.session, dfsp1.key, "guess"))
        with pytest.raises(CentralError) as refused:
            await wrong.get("dfsp1")
        assert (refused.value.status, refused.value.id) == (401, "UnauthorizedError")
        empty_operator = CentralHttp(central.url, central.session, "operator", "")
        with pytest.raises(CentralError):
            await ParticipantsClient(empty_operator).all()
        async with central.session.get(f"{central.url}/participants") as response:
            assert response.status == 401
        async with central.session.get(
            f"{central.url}/participants", headers={"Authorization": "Bearer x"}
        ) as response:
            assert (response.status, (await response.json())["id"]) == (401, "UnauthorizedError")
        async with central.session.get(f"{central.url}/health") as response:
            assert (response.status, await response.json()) == (200, {"status": "OK"})


@asyncio_test
async def test_a_dfsp_is_paused_and_unpaused(database: Database) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        operator = ParticipantsClient(central.as_operator())
        assert (await operator.pause("dfsp1")).status == "paused"
        itself = ParticipantsClient(central.as_dfsp(dfsp1))
        assert (await itself.get("dfsp1")).status == "paused"  # it may still read itself
        assert (await itself.unpause("dfsp1")).status == "active"
        with pytest.raises(CentralError) as unknown:
            await operator.pause("dfsp9")
        assert (unknown.value.status, unknown.value.id) == (404, "NotFoundError")
        assert isinstance(central.session, aiohttp.ClientSession)


@asyncio_test
async def test_a_pause_refuses_the_next_request_though_its_credentials_were_just_checked(
    database: Database,
) -> None:
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        itself = ParticipantsClient(central.as_dfsp(dfsp1))
        assert (await itself.get("dfsp1")).status == "active"  # its credentials remembered
        await ParticipantsClient(central.as_operator()).pause("dfsp1")
        assert (await itself.get("dfsp1")).status == "paused"
        assert central.service.context is not None
        participant = await central.service.context.participants.authenticate(
            dfsp1.key, dfsp1.secret
        )
        assert participant is not None and not participant.active


@asyncio_test
async def test_a_change_made_by_another_central_process_is_seen_within_the_remembered_time(
    database: Database,
) -> None:
    now = [datetime(2026, 1, 5, 9, 0, tzinfo=UTC)]
    async with running_central(database) as central:
        dfsp1 = await central.register("dfsp1")
        assert central.service.context is not None
        sessions = central.service.context.sessions
        this = Participants(sessions, lambda: now[0])
        other = Participants(sessions, lambda: now[0])  # another process, same database
        assert (await this.authenticate(dfsp1.key, dfsp1.secret)) is not None
        await other.set_status("dfsp1", Status.PAUSED)
        remembered = await this.authenticate(dfsp1.key, dfsp1.secret)
        assert remembered is not None and remembered.active  # within VERIFIED_FOR
        now[0] += VERIFIED_FOR
        again = await this.authenticate(dfsp1.key, dfsp1.secret)
        assert again is not None and not again.active
        assert await this.authenticate(dfsp1.key, "wrong") is None
