"""The typed HTTP client of the bulk payment routes (``dfsp.api_bulk``): what
``ussdloop bulk submit`` and, later, the web pages use. Refusals are ``DfspError``s
(``dfsp.client.error_from``) with the API's ids (``BulkRoleMissing``,
``MakerCannotCheck``, ``InvalidBatchFile``, ``WrongPin``...)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from dfsp.client import DfspError, error_from

MAX_ANSWER_BYTES = 64 << 20  # a batch of 10,000 rows with its report


@dataclass(frozen=True)
class BatchStatus:
    """A batch as the API answers it; ``rows`` are the API's row objects."""

    batch_id: str
    state: str
    rows_total: int
    by_state: dict[str, int]
    paid: str  # decimal amounts with the currency, e.g. "1200.00 USD"
    fees: str
    open: str
    rows: list[dict[str, Any]]

    @property
    def finished(self) -> bool:
        return self.state in ("done", "rejected", "cancelled")

    @property
    def rows_finished(self) -> int:
        return self.by_state.get("paid", 0) + self.by_state.get("failed", 0)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BatchStatus:
        totals = body["totals"]

        def money(value: dict[str, str]) -> str:
            return f"{value['amount']} {value['currency']}"

        return cls(
            batch_id=body["batchId"],
            state=body["state"],
            rows_total=int(totals["rows"]),
            by_state={str(k): int(v) for k, v in totals["byState"].items()},
            paid=money(totals["paid"]),
            fees=money(totals["fees"]),
            open=money(totals["open"]),
            rows=list(body["rows"]),
        )


class BulkClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session

    async def upload(
        self,
        customer_id: str,
        pin: str,
        account_id: str,
        csv_text: str,
        *,
        end_at: datetime | None = None,
    ) -> BatchStatus:
        body: dict[str, Any] = {
            "customerId": customer_id,
            "pin": pin,
            "accountId": account_id,
            "csv": csv_text,
        }
        if end_at is not None:
            body["endAt"] = end_at.isoformat()
        return BatchStatus.from_json(await self._call("POST", "/bulk/batches", body=body))

    async def approve(self, batch_id: str, customer_id: str, pin: str) -> BatchStatus:
        return await self._decide(batch_id, "approve", {"customerId": customer_id, "pin": pin})

    async def reject(
        self, batch_id: str, customer_id: str, pin: str, note: str = ""
    ) -> BatchStatus:
        body = {"customerId": customer_id, "pin": pin, "note": note}
        return await self._decide(batch_id, "reject", body)

    async def cancel(self, batch_id: str, customer_id: str, pin: str) -> BatchStatus:
        return await self._decide(batch_id, "cancel", {"customerId": customer_id, "pin": pin})

    async def status(self, batch_id: str, customer_id: str, pin: str) -> BatchStatus:
        headers = {"X-Customer-Id": customer_id, "X-Pin": pin}
        answer = await self._call("GET", f"/bulk/batches/{batch_id}", headers=headers)
        return BatchStatus.from_json(answer)

    async def report_csv(self, batch_id: str, customer_id: str, pin: str) -> str:
        headers = {"X-Customer-Id": customer_id, "X-Pin": pin}
        url = f"{self._base_url}/bulk/batches/{batch_id}/report.csv"
        async with self._session.get(url, headers=headers) as response:
            raw = await response.content.read(MAX_ANSWER_BYTES)
            if response.status >= 400:
                raise error_from(response.status, _json_or_none(raw))
            return raw.decode("utf-8")

    async def _decide(self, batch_id: str, action: str, body: dict[str, Any]) -> BatchStatus:
        answer = await self._call("POST", f"/bulk/batches/{batch_id}/{action}", body=body)
        return BatchStatus.from_json(answer)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self._base_url + path
        async with self._session.request(method, url, json=body, headers=headers) as response:
            answer = _json_or_none(await response.content.read(MAX_ANSWER_BYTES))
            if response.status >= 400:
                raise error_from(response.status, answer)
            if not isinstance(answer, dict):
                raise DfspError("the answer is not a JSON object", id="BadAnswer", status=502)
            return answer


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
