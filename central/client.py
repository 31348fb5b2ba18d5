"""The typed HTTP client of the central API: what DFSPs (and the operator's tools) use.

``CentralHttp`` carries the base URL, the HTTP session and the caller's credentials
(HTTP Basic); each component has its client class built on it (``ParticipantsClient``
here; ``central.directory.client``...). Refusals are ``CentralError`` with the API's
error id (``NotFoundError``, ``AlreadyExistsError``...), its status and message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

MAX_ANSWER_BYTES = 4 << 20


class CentralError(Exception):
    def __init__(self, message: str, *, id: str, status: int) -> None:
        super().__init__(message)
        self.id = id
        self.status = status


class CentralHttp:
    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, key: str, secret: str
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.headers = {"Authorization": aiohttp.encode_basic_auth(key, secret)}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        text: str | None = None,
    ) -> Any:
        """The JSON answer (a ``text/plain`` body is sent as ``text``)."""
        options: dict[str, Any] = {"headers": dict(self.headers), "params": params}
        if text is not None:
            options["data"] = text.encode()
            options["headers"]["Content-Type"] = "text/plain; charset=utf-8"
        elif body is not None:
            options["json"] = body
        async with self.session.request(method, self.base_url + path, **options) as response:
            raw = await _read_bounded(response)
            try:
                answer = json.loads(raw) if raw else None
            except ValueError:
                answer = raw.decode(errors="replace")
            if response.status >= 400:
                raise _error(response.status, answer)
            return answer


def _error(status: int, body: Any) -> CentralError:
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return CentralError(str(body.get("message") or body["id"]), id=body["id"], status=status)
    return CentralError(f"HTTP {status}", id="HttpError", status=status)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise CentralError("the answer is too large", id="AnswerTooLarge", status=502)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class ParticipantInfo:
    name: str
    status: str  # "active" or "paused"
    net_debit_cap: str | None  # decimal string; None: no cap

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ParticipantInfo:
        return cls(body["name"], body["status"], body.get("netDebitCap"))


@dataclass(frozen=True)
class RegisteredDfsp:
    name: str
    key: str
    secret: str


class ParticipantsClient:
    """The operator's calls (and a DFSP's about itself)."""

    def __init__(self, http: CentralHttp) -> None:
        self._http = http

    async def register(self, name: str, *, net_debit_cap: str | None = None) -> RegisteredDfsp:
        body: dict[str, Any] = {"name": name}
        if net_debit_cap is not None:
            body["netDebitCap"] = net_debit_cap
        answer = await self._http.call("POST", "/commands/register", body)
        return RegisteredDfsp(answer["name"], answer["key"], answer["secret"])

    async def get(self, name: str) -> ParticipantInfo:
        return ParticipantInfo.from_json(await self._http.call("GET", f"/participants/{name}"))

    async def all(self) -> list[ParticipantInfo]:
        answer = await self._http.call("GET", "/participants")
        return [ParticipantInfo.from_json(item) for item in answer["participants"]]

    async def pause(self, name: str) -> ParticipantInfo:
        return ParticipantInfo.from_json(
            await self._http.call("POST", f"/participants/{name}/pause")
        )

    async def unpause(self, name: str) -> ParticipantInfo:
        answer = await self._http.call("POST", f"/participants/{name}/unpause")
        return ParticipantInfo.from_json(answer)

    async def set_net_debit_cap(self, name: str, cap: str | None) -> ParticipantInfo:
        answer = await self._http.call(
            "PUT", f"/participants/{name}/net-debit-cap", {"netDebitCap": cap}
        )
        return ParticipantInfo.from_json(answer)
