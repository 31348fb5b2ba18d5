"""The shared HTTP pieces, through a real aiohttp app on a loopback port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support import asyncio_test
from ussdloop.http import (
    BadRequest,
    HttpError,
    error_middleware,
    read_form,
    read_json_object,
    string_field,
)

MAX_BODY = 256
MAX_NAME = 8


class SlotTaken(HttpError):
    """A service's own error: a conflict."""

    status = 409


class Gone(HttpError):
    status = 410
    error_id = "NoLongerHere"


class ShopError(Exception):
    """A domain error that knows nothing of HTTP."""


class OutOfStock(ShopError):
    pass


async def echo_json(request: web.Request) -> web.Response:
    body = await read_json_object(request, MAX_BODY)
    name = string_field(body, "name", MAX_NAME)
    note = string_field(body, "note", MAX_NAME, allow_empty=True, required=False)
    return web.json_response({"name": name, "note": note})


async def echo_optional(request: web.Request) -> web.Response:
    return web.json_response(await read_json_object(request, MAX_BODY, optional=True))


async def echo_small(request: web.Request) -> web.Response:
    """A route with a tighter limit than the app's ``client_max_size``."""
    return web.json_response(await read_json_object(request, 16))


async def echo_form(request: web.Request) -> web.Response:
    form = await read_form(request, MAX_BODY)
    return web.json_response({"name": string_field(form, "name", MAX_NAME)})


async def fail(request: web.Request) -> web.Response:
    errors: dict[str, Exception] = {
        "taken": SlotTaken("slot 3 is taken"),
        "gone": Gone("the offer ended"),
        "silent": SlotTaken(),
        "stock": OutOfStock("no more apples"),
        "shop": ShopError("the shop is closed"),
        "bug": KeyError("secret-table-name"),
    }
    raise errors[request.match_info["kind"]]


def app() -> web.Application:
    application = web.Application(
        client_max_size=4 * MAX_BODY, middlewares=[error_middleware({ShopError: 422})]
    )
    application.router.add_post("/json", echo_json)
    application.router.add_post("/optional", echo_optional)
    application.router.add_post("/small", echo_small)
    application.router.add_post("/form", echo_form)
    application.router.add_get("/fail/{kind}", fail)
    return application


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.base + path, **kwargs) as answer:
            assert answer.content_type == "application/json"
            return answer.status, await answer.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as answer:
            assert answer.content_type == "application/json"
            return answer.status, await answer.json()


@asynccontextmanager
async def serving() -> AsyncIterator[Client]:
    runner = web.AppRunner(app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        async with aiohttp.ClientSession() as http:
            yield Client(http, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def bad_request(status: int, body: Any, reason: str) -> bool:
    return status == 400 and body["id"] == "BadRequest" and reason in body["message"]


@asyncio_test
async def test_a_json_object_with_good_fields_is_read() -> None:
    async with serving() as client:
        assert await client.post("/json", json={"name": "ann"}) == (
            200,
            {"name": "ann", "note": ""},
        )
        assert await client.post("/json", json={"name": "ann", "note": ""}) == (
            200,
            {"name": "ann", "note": ""},
        )


@asyncio_test
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"ann"', "must be a JSON object"),
        (b"{}", "'name' is missing or not a string"),
        (b'{"name": null}', "'name' is missing or not a string"),
        (b'{"name": 7}', "'name' is missing or not a string"),
        (b'{"name": ""}', "'name' must not be empty"),
        (b'{"name": "123456789"}', "'name' is longer than 8 characters"),
        (b'{"name": "ann", "note": 1}', "'note' is missing or not a string"),
        (b'{"name": "ann", "note": "123456789"}', "'note' is longer than 8 characters"),
    ],
)
async def test_bad_json_bodies_and_fields_are_bad_requests(payload: bytes, reason: str) -> None:
    async with serving() as client:
        status, body = await client.post(
            "/json", data=payload, headers={"Content-Type": "application/json"}
        )
        assert bad_request(status, body, reason), body


@asyncio_test
async def test_a_body_over_the_limit_is_refused_whether_or_not_its_length_is_declared() -> None:
    async with serving() as client:
        padded = {"name": "ann", "pad": "x" * MAX_BODY}
        status, body = await client.post("/json", json=padded)
        assert bad_request(status, body, f"over {MAX_BODY} bytes")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            yield b'{"name": "ann", '
            yield b'"pad": "' + b"x" * 20 + b'"}'

        status, body = await client.post("/small", data=chunks())
        assert bad_request(status, body, "over 16 bytes")
        status, body = await client.post("/json", data=b"x" * (8 * MAX_BODY))
        assert bad_request(status, body, f"over {MAX_BODY} bytes")


@asyncio_test
async def test_an_optional_body_may_be_empty_but_not_malformed() -> None:
    async with serving() as client:
        assert await client.post("/optional") == (200, {})
        assert await client.post("/optional", data=b"  \n") == (200, {})
        assert await client.post("/optional", json={"a": 1}) == (200, {"a": 1})
        status, body = await client.post("/optional", data=b"[]")
        assert bad_request(status, body, "must be a JSON object")


@asyncio_test
async def test_a_form_is_read_and_its_fields_checked() -> None:
    async with serving() as client:
        assert await client.post("/form", data={"name": "ann"}) == (200, {"name": "ann"})
        status, body = await client.post("/form", data={"other": "x"})
        assert bad_request(status, body, "'name' is missing or not a string")
        status, body = await client.post("/form", data={"name": "x" * (MAX_BODY + 1)})
        assert bad_request(status, body, f"over {MAX_BODY} bytes")


@asyncio_test
async def test_a_service_error_answers_with_its_status_and_class_name() -> None:
    async with serving() as client:
        assert await client.get("/fail/taken") == (
            409,
            {"id": "SlotTaken", "message": "slot 3 is taken"},
        )
        assert await client.get("/fail/gone") == (
            410,
            {"id": "NoLongerHere", "message": "the offer ended"},
        )
        assert await client.get("/fail/silent") == (
            409,
            {"id": "SlotTaken", "message": "SlotTaken"},
        )


@asyncio_test
async def test_a_mapped_domain_error_and_its_subclasses_answer_with_the_mapped_status() -> None:
    async with serving() as client:
        assert await client.get("/fail/shop") == (
            422,
            {"id": "ShopError", "message": "the shop is closed"},
        )
        assert await client.get("/fail/stock") == (
            422,
            {"id": "OutOfStock", "message": "no more apples"},
        )


@asyncio_test
async def test_unknown_paths_and_methods_answer_in_the_error_shape() -> None:
    async with serving() as client:
        status, body = await client.get("/nowhere")
        assert (status, body["id"]) == (404, "NotFound")
        status, body = await client.get("/json")
        assert (status, body["id"]) == (405, "MethodNotAllowed")


@asyncio_test
async def test_an_unexpected_error_is_logged_and_answered_500_without_its_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving() as client:
        with caplog.at_level(logging.ERROR, logger="ussdloop.http"):
            status, body = await client.get("/fail/bug")
        assert status == 500 and body["id"] == "InternalError"
        assert "secret" not in body["message"] and "KeyError" not in body["message"]
        [record] = [r for r in caplog.records if r.name == "ussdloop.http"]
        assert "event=http_request_failed" in record.getMessage()
        assert "/fail/bug" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is KeyError


@pytest.mark.parametrize(
    ("fields", "kwargs", "expected"),
    [
        ({"name": "ann"}, {}, "ann"),
        ({"name": ""}, {"allow_empty": True}, ""),
        ({}, {"required": False}, ""),
        ({"name": None}, {"required": False}, ""),
        ({"name": "x" * MAX_NAME}, {}, "x" * MAX_NAME),
    ],
)
def test_a_string_field_within_its_rules_is_returned(
    fields: dict[str, Any], kwargs: dict[str, bool], expected: str
) -> None:
    assert string_field(fields, "name", MAX_NAME, **kwargs) == expected


def test_an_absent_field_is_still_refused_when_empty_is_allowed() -> None:
    with pytest.raises(BadRequest, match="'name' is missing"):
        string_field({}, "name", MAX_NAME, allow_empty=True)


def test_an_error_id_defaults_to_the_class_name() -> None:
    assert (BadRequest.status, BadRequest.error_id) == (400, "BadRequest")
    assert (SlotTaken.status, SlotTaken.error_id) == (409, "SlotTaken")
    assert Gone.error_id == "NoLongerHere"
