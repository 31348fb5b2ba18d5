"""The typed client of the fraud routes (``central.fraud.api``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from central.client import CentralHttp


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
