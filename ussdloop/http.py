"""What every HTTP API of the network shares: reading bounded request bodies, checking
fields, and answering errors as ``{"id": "<ErrorName>", "message": "..."}``.

A handler raises an ``HttpError`` (``BadRequest``, or a service's own subclass) and
``error_middleware`` answers it with its status. A service whose domain errors know
nothing of HTTP maps them to statuses in one place, the middleware's ``statuses``.
aiohttp's own 4xx answers (no route, wrong method) get the same shape; anything else
is logged and answered 500 ``InternalError`` without its details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)


class HttpError(Exception):
    """An error answered with ``status``; its id is the class name unless a subclass
    sets ``error_id``. The message is shown to the caller: it says what to fix."""

    status: ClassVar[int] = 500
    error_id: ClassVar[str] = "InternalError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "error_id" not in cls.__dict__:
            cls.error_id = cls.__name__


class BadRequest(HttpError):
    """The request cannot be understood; the message says what to fix."""

    status = 400


def error_response(status: int, error_id: str, message: str) -> web.Response:
    return web.json_response({"id": error_id, "message": message}, status=status)


async def read_json_object(
    request: web.Request, max_body: int, *, optional: bool = False
) -> dict[str, Any]:
    """The body as a JSON object of at most ``max_body`` bytes; an empty body is ``{}``
    when ``optional``. BadRequest otherwise."""
    raw = await _read_bounded(request, max_body)
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def read_form(request: web.Request, max_body: int) -> dict[str, Any]:
    """The body's form fields (urlencoded or multipart). The app's ``client_max_size``
    bounds a body sent without a Content-Length; keep it equal to ``max_body``."""
    _refuse_declared_oversize(request, max_body)
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(_too_large(max_body)) from None
    except ValueError:
        raise BadRequest("the body is not a form") from None
    return dict(form)


def string_field(
    body: Mapping[str, Any],
    name: str,
    max_chars: int,
    *,
    allow_empty: bool = False,
    required: bool = True,
) -> str:
    """``body[name]`` as a string of at most ``max_chars`` characters; a field that is
    absent (or null) is ``""`` unless ``required``. BadRequest otherwise."""
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name!r} is missing or not a string")
    if not value and not allow_empty:
        raise BadRequest(f"{name!r} must not be empty")
    if len(value) > max_chars:
        raise BadRequest(f"{name!r} is longer than {max_chars} characters")
    return value


def error_middleware(statuses: Mapping[type[Exception], int] | None = None) -> Middleware:
    """Answer errors in the shared shape.

    ``statuses`` maps a service's own exception types to a status (the id is the raised
    class's name; the most specific type listed wins), e.g. ``{HandsetError: 409}``.
    """
    mapped = dict(statuses or {})

    @web.middleware
    async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpError as error:
            return error_response(error.status, error.error_id, str(error) or error.error_id)
        except web.HTTPRequestEntityTooLarge as error:
            return error_response(400, BadRequest.error_id, error.text or "the body is too large")
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return error_response(error.status, _reason_id(error.reason), error.reason)
        except Exception as error:
            status = _mapped_status(mapped, error)
            if status is None:
                log.exception(
                    "event=http_request_failed method=%s path=%s", request.method, request.path
                )
                return error_response(500, "InternalError", "the request could not be completed")
            name = type(error).__name__
            return error_response(status, name, str(error) or name)

    return answer_errors


def _mapped_status(mapped: Mapping[type[Exception], int], error: Exception) -> int | None:
    for kind in type(error).__mro__:
        if kind in mapped:
            return mapped[kind]
    return None


def _reason_id(reason: str) -> str:
    """``"Method Not Allowed"`` -> ``"MethodNotAllowed"``."""
    return "".join(part[:1].upper() + part[1:] for part in reason.replace("-", " ").split())


async def _read_bounded(request: web.Request, max_body: int) -> bytes:
    _refuse_declared_oversize(request, max_body)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(_too_large(max_body)) from None
    if len(raw) > max_body:
        raise BadRequest(_too_large(max_body))
    return raw


def _refuse_declared_oversize(request: web.Request, max_body: int) -> None:
    if request.content_length is not None and request.content_length > max_body:
        raise BadRequest(_too_large(max_body))


def _too_large(max_body: int) -> str:
    return f"the body is over {max_body} bytes"
