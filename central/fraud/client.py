"""The typed client of the fraud routes (``central.fraud.api``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.client import CentralHttp
from central.fraud.service import MAX_LOOKUP


@dataclass(frozen=True)
class FraudReportInfo:
    dfsp: str
    score: int
    reason: str
    reported: str  # ISO 8601


@dataclass(frozen=True)
class FraudUser:
    user_number: str
    score: int
    blacklisted: bool
    reason: str | None  # of the last blacklist change
    changed_by: str | None
    reports: tuple[FraudReportInfo, ...]

    @property
    def blocked(self) -> bool:
        return self.blacklisted or self.score >= 100

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FraudUser:
        reports = tuple(
            FraudReportInfo(item["dfsp"], item["score"], item["reason"], item["reported"])
            for item in body["reports"]
        )
        return cls(
            body["userNumber"],
            body["score"],
            body["blacklisted"],
            body.get("reason"),
            body.get("changedBy"),
            reports,
        )


class FraudClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http

    async def report(self, user_number: str, score: int, reason: str) -> FraudUser:
        body = {"userNumber": user_number, "score": score, "reason": reason}
        return FraudUser.from_json(await self._http.call("POST", "/fraud/reports", body))

    async def blacklist(self, user_number: str, reason: str) -> FraudUser:
        answer = await self._http.call("PUT", f"/fraud/blacklist/{user_number}", {"reason": reason})
        return FraudUser.from_json(answer)

    async def unblacklist(self, user_number: str, reason: str) -> FraudUser:
        answer = await self._http.call(
            "DELETE", f"/fraud/blacklist/{user_number}", {"reason": reason}
        )
        return FraudUser.from_json(answer)

    async def user(self, user_number: str) -> FraudUser:
        return FraudUser.from_json(await self._http.call("GET", f"/fraud/users/{user_number}"))

    async def users(self, numbers: Sequence[str]) -> dict[str, FraudUser]:
        """The standing of each user number, by number (one never reported is clean):
        one call for every ``MAX_LOOKUP`` of them."""
        distinct = list(dict.fromkeys(numbers))
        found: dict[str, FraudUser] = {}
        for start in range(0, len(distinct), MAX_LOOKUP):
            body = {"numbers": distinct[start : start + MAX_LOOKUP]}
            answer = await self._http.call("POST", "/fraud/users/lookup", body)
            found |= {user.user_number: user for user in map(FraudUser.from_json, answer["users"])}
        return found
