"""The typed client of the directory routes (``central.directory.api``), as a DFSP."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from central.client import CentralHttp


@dataclass(frozen=True)
class DirectoryEntry:
    user_number: str
    dfsp: str  # the user's primary DFSP
    name: str
    spsp_receiver: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DirectoryEntry:
        return cls(body["userNumber"], body["dfsp"], body["name"], body["spspReceiver"])


class DirectoryClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http
        self._name: str | None = None  # the calling DFSP's name, learnt once

    async def set_endpoint(self, url: str) -> None:
        answer = await self._http.call("PUT", "/directory/endpoint", {"url": url})
        self._name = answer["dfsp"]

    async def register_user(self, name: str, user_number: str | None = None) -> str:
        """A new user's number, or (with ``user_number``) this DFSP added to that user."""
        body = {"name": name} if user_number is None else {"name": name, "userNumber": user_number}
        answer = await self._http.call("POST", "/users", body)
        number: str = answer["userNumber"]
        return number

    async def remove_dfsp(self, user_number: str) -> None:
        """Remove this DFSP from the user (the last DFSP removed removes the user)."""
        name = await self._own_name()
        await self._http.call("DELETE", f"/users/{user_number}/dfsps/{name}")

    async def set_primary(self, user_number: str, dfsp: str) -> None:
        await self._http.call("PUT", f"/users/{user_number}/primary", {"dfsp": dfsp})

    async def lookup(self, user_number: str) -> DirectoryEntry:
        params = {"identifierType": "eur", "identifier": user_number}
        return DirectoryEntry.from_json(await self._http.call("GET", "/resources", params=params))

    async def lookup_many(self, numbers: Iterable[str]) -> dict[str, DirectoryEntry | None]:
        body = {"identifiers": list(numbers)}
        answer = await self._http.call("POST", "/resources/batch", body)
        return {
            number: None if item is None else DirectoryEntry.from_json(item)
            for number, item in answer["resources"].items()
        }

    async def _own_name(self) -> str:
        if self._name is None:
            self._name = (await self._http.call("GET", "/directory/endpoint"))["dfsp"]
        assert self._name is not None
        return self._name
