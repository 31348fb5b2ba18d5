"""The control API over real HTTP, against a real simulator with an application bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from gateway.smpp.dialects import UssdAction, UssdMessage
from simulators.modem.control_api import ControlServer, normalise_msisdn
from tests.support import asyncio_test, until
from tests.unit.simulators.echo_esme import (
    BALANCE,
    GOODBYE,
    WELCOME,
    EchoNetwork,
    Menu,
    echo_menu,
    echo_network,
)

MSISDN = "256700000001"


@dataclass
class Api:
    network: EchoNetwork
    http: aiohttp.ClientSession
    base: str

    async def call(
        self, method: str, path: str, body: Any = None, *, data: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        async with self.http.request(method, self.base + path, json=body, data=data) as answer:
            return answer.status, await answer.json()

    async def dial(self, code: str = "*123#", msisdn: str = MSISDN, **extra: Any) -> Any:
        return await self.call("POST", f"/phones/{msisdn}/dial", {"code": code, **extra})

    async def reply(self, text: str, msisdn: str = MSISDN, **extra: Any) -> Any:
        return await self.call("POST", f"/phones/{msisdn}/reply", {"text": text, **extra})


@asynccontextmanager
async def control_api(menu: Menu = echo_menu, **timers: float) -> AsyncIterator[Api]:
    async with echo_network(menu, **timers) as network:
        server = ControlServer(network.simulator, "127.0.0.1", 0)
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Api(network, http, f"http://127.0.0.1:{server.port}")
        finally:
            await server.stop()


def screen(text: str | None, expects_reply: bool, state: str, **rest: Any) -> dict[str, Any]:
    return {
        "msisdn": rest.get("msisdn", MSISDN),
        "screen": text,
        "expectsReply": expects_reply,
        "state": state,
        "endedReason": rest.get("endedReason"),
        "networkInitiated": rest.get("networkInitiated", False),
    }


@asyncio_test
async def test_health() -> None:
    async with control_api() as api:
        assert await api.call("GET", "/health") == (200, {"status": "ok"})


@asyncio_test
async def test_a_dialogue_dial_then_reply_answers_with_each_screen() -> None:
    async with control_api() as api:
        assert await api.dial("*123#") == (200, screen(WELCOME, True, "open"))
        status, body = await api.reply("1")
        assert (status, body) == (200, screen(BALANCE, False, "idle", endedReason="released"))
        assert [m.action for m in api.network.esme.received] == [
            UssdAction.BEGIN,
            UssdAction.CONTINUE,
        ]


@asyncio_test
async def test_the_phone_shows_its_last_screen_and_the_list_has_every_phone() -> None:
    async with control_api() as api:
        await api.dial()
        assert await api.call("GET", f"/phones/{MSISDN}") == (200, screen(WELCOME, True, "open"))
        await api.dial(msisdn="256700000002")
        status, body = await api.call("GET", "/phones")
        assert status == 200
        assert [phone["msisdn"] for phone in body["phones"]] == [MSISDN, "256700000002"]
        assert body["total"] == 2


@asyncio_test
async def test_a_phone_never_used_is_idle_and_is_not_created_by_looking() -> None:
    async with control_api() as api:
        assert await api.call("GET", "/phones/256799999999") == (
            200,
            screen(None, False, "idle", msisdn="256799999999"),
        )
        assert "256799999999" not in api.network.simulator.network.handsets


@asyncio_test
async def test_dialling_during_a_dialogue_is_refused_as_busy() -> None:
    async with control_api() as api:
        await api.dial()
        status, body = await api.dial()
        assert status == 409 and body["id"] == "HandsetBusy"


@asyncio_test
async def test_replying_without_a_dialogue_is_refused() -> None:
    async with control_api() as api:
        status, body = await api.reply("1")
        assert status == 409 and body["id"] == "NoDialogue"
        assert body["message"]


@asyncio_test
async def test_cancel_ends_the_dialogue_and_the_application_gets_an_abort() -> None:
    async with control_api() as api:
        await api.dial()
        status, body = await api.call("POST", f"/phones/{MSISDN}/cancel")
        assert status == 200
        assert body["state"] == "idle" and body["endedReason"] == "aborted"
        esme = api.network.esme
        await until(lambda: esme.received[-1].action is UssdAction.ABORT)
        status, body = await api.call("POST", f"/phones/{MSISDN}/cancel")
        assert status == 409 and body["id"] == "NoDialogue"


@asyncio_test
async def test_an_unknown_code_ends_at_once_with_the_network_message() -> None:
    async with control_api() as api:
        status, body = await api.dial("*999#")
        assert status == 200
        assert body["expectsReply"] is False and body["endedReason"] == "network_error"


@asyncio_test
async def test_a_dial_answers_with_a_timeout_screen_when_the_application_is_silent() -> None:
    def silent(message: UssdMessage) -> None:
        return None

    async with control_api(silent) as api:
        status, body = await api.dial(timeout=0.2)
        assert status == 200
        assert body["endedReason"] == "timeout" and body["state"] == "idle"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("256700000001", "256700000001"), ("+256 700 000001", "256700000001"), ("+12345", "12345")],
)
def test_msisdns_are_normalised(raw: str, normal: str) -> None:
    assert normalise_msisdn(raw) == normal


@asyncio_test
async def test_an_msisdn_with_plus_and_spaces_in_the_path_names_the_same_phone() -> None:
    async with control_api() as api:
        status, body = await api.dial(msisdn="%2B256%20700%20000001")
        assert status == 200 and body["msisdn"] == MSISDN


@asyncio_test
@pytest.mark.parametrize("msisdn", ["1234", "1234567890123456", "25670000000x", "++25670000"])
async def test_a_bad_msisdn_is_a_bad_request(msisdn: str) -> None:
    async with control_api() as api:
        status, body = await api.call("GET", f"/phones/{msisdn}")
        assert status == 400 and body["id"] == "BadRequest"


@asyncio_test
async def test_bad_bodies_are_bad_requests() -> None:
    async with control_api() as api:
        dial = f"/phones/{MSISDN}/dial"
        for data in (b"{not json", b"[1, 2]", b'{"code": 5}', b"{}", b'{"code": ""}'):
            status, body = await api.call("POST", dial, data=data)
            assert (status, body["id"]) == (400, "BadRequest"), data
        status, body = await api.dial(timeout=-1)
        assert (status, body["id"]) == (400, "BadRequest")
        status, body = await api.dial("*" + "1" * 200 + "#")
        assert (status, body["id"]) == (400, "BadRequest")
        assert api.network.simulator.network.handset(MSISDN).state.value == "idle"


@asyncio_test
async def test_a_body_over_16_kib_is_refused() -> None:
    async with control_api() as api:
        padding = "x" * (16 * 1024)
        status, body = await api.call(
            "POST", f"/phones/{MSISDN}/dial", {"code": "*123#", "p": padding}
        )
        assert status == 400 and body["id"] == "BadRequest" and "16384" in body["message"]


@asyncio_test
async def test_unknown_paths_and_methods_answer_in_the_error_shape() -> None:
    async with control_api() as api:
        assert (await api.call("GET", "/nowhere"))[1]["id"] == "NotFound"
        status, body = await api.call("GET", f"/phones/{MSISDN}/dial")
        assert (status, body["id"]) == (405, "MethodNotAllowed")


@asyncio_test
async def test_an_sms_from_the_application_reaches_the_inbox() -> None:
    async with control_api() as api:
        assert await api.network.esme.send_sms(MSISDN, "You received 5.00 USD") == 0
        status, body = await api.call("GET", f"/phones/{MSISDN}/sms")
        assert status == 200 and body["msisdn"] == MSISDN
        [message] = body["sms"]
        assert message["text"] == "You received 5.00 USD" and message["sender"] == "123"
        assert message["index"] == 1 and message["id"] and message["receivedAt"].endswith("+00:00")
        assert (await api.call("GET", "/phones/256711111111/sms"))[1]["sms"] == []


@asyncio_test
async def test_a_network_initiated_prompt_is_shown_and_can_be_answered() -> None:
    async with control_api() as api:
        assert await api.network.esme.push(MSISDN, "Pay 5.00 USD to shop?\n1. Yes") == 0
        status, body = await api.call("GET", f"/phones/{MSISDN}")
        assert body == screen("Pay 5.00 USD to shop?\n1. Yes", True, "open", networkInitiated=True)
        status, body = await api.reply("0")
        assert status == 200 and body["screen"] == GOODBYE


@asyncio_test
async def test_faults_are_set_read_and_cleared() -> None:
    async with control_api() as api:
        status, body = await api.call("POST", "/faults", {"drop_mt": 0.5, "delay": 0.1})
        assert status == 200 and body["drop_mt"] == 0.5 and body["delay"] == 0.1
        assert api.network.simulator.faults.drop_mt == 0.5
        status, body = await api.call("POST", "/faults", {"throttle_count": 3})
        assert body["throttle_count"] == 3 and body["drop_mt"] == 0.5
        assert (await api.call("GET", "/faults"))[1] == body
        status, body = await api.call("POST", "/faults", {"clear": True})
        assert body["drop_mt"] == 0.0 and body["throttle_count"] == 0


@asyncio_test
@pytest.mark.parametrize(
    "change",
    [
        {"drop_mt": 1.5},
        {"drop_mo": "half"},
        {"delay": 10_000},
        {"throttle_count": 1.5},
        {"ignore_enquire_link": 1},
        {"explode": True},
        {"throttle_count": 2, "throttle_fraction": 0.5},
        {"drop_mo": 0.5, "drop_mt": -1},
    ],
)
async def test_a_bad_fault_changes_nothing(change: dict[str, Any]) -> None:
    async with control_api() as api:
        status, body = await api.call("POST", "/faults", change)
        assert (status, body["id"]) == (400, "BadRequest")
        assert api.network.simulator.faults.snapshot()["drop_mo"] == 0.0


@asyncio_test
async def test_disconnect_drops_the_application_link() -> None:
    async with control_api() as api:
        status, body = await api.call("POST", "/faults", {"disconnect": True})
        assert status == 200 and body["disconnected"] == 1


@asyncio_test
async def test_restart_ends_dialogues_and_listens_again() -> None:
    async with control_api() as api:
        await api.dial()
        assert await api.call("POST", "/restart") == (200, {"status": "restarted"})
        assert api.network.simulator.running
        phone = (await api.call("GET", f"/phones/{MSISDN}"))[1]
        assert phone["state"] == "idle" and phone["endedReason"] == "network_error"
