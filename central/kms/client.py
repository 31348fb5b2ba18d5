"""The KMS calls of the central API (``central.kms.api``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from central.client import CentralHttp


@dataclass(frozen=True)
class KeyInfo:
    public_key: str  # base64 raw Ed25519
    valid_from: str
    owner: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> KeyInfo:
        return cls(body["publicKey"], body["validFrom"], body["owner"])


@dataclass(frozen=True)
class ServiceKeysInfo:
    service: str
    current: KeyInfo
    previous: tuple[KeyInfo, ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ServiceKeysInfo:
        previous = tuple(KeyInfo.from_json(key) for key in body["previous"])
        return cls(body["service"], KeyInfo.from_json(body["current"]), previous)


class KmsClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http

    async def register(self, service: str, public_key: str) -> ServiceKeysInfo:
        """Set or rotate ``service``'s key (base64 of the raw 32 bytes)."""
        answer = await self._http.call("PUT", f"/kms/keys/{service}", {"publicKey": public_key})
        return ServiceKeysInfo.from_json(answer)

    async def keys(self, service: str) -> ServiceKeysInfo:
        return ServiceKeysInfo.from_json(await self._http.call("GET", f"/kms/keys/{service}"))
