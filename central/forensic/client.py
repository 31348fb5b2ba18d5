"""The forensic log calls of the central API; ``ForensicClient`` is also the
``ussdloop.forensic.ForensicSink`` a service's ``ForensicWriter`` appends through::

    http = CentralHttp(central_url, session, key, secret)
    await KmsClient(http).register("dfsp1", public_key_base64(private_key))
    writer = ForensicWriter("dfsp1", private_key, ForensicClient(http))
    await writer.start()
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from central.client import CentralHttp
from ussdloop.forensic import Record, Report


class ForensicClient:
    def __init__(self, http: CentralHttp) -> None:
        self._http = http

    async def append(self, records: Sequence[Record]) -> None:
        body = {"records": [record.to_json() for record in records]}
        await self._http.call("POST", "/forensic/records", body)

    async def last(self, service: str) -> Record | None:
        answer = await self._http.call("GET", f"/forensic/last/{service}")
        return None if answer["record"] is None else Record.from_json(answer["record"])

    async def records(self, service: str, *, after_seq: int = 0, limit: int = 100) -> list[Record]:
        params = {"service": service, "after_seq": str(after_seq), "limit": str(limit)}
        answer = await self._http.call("GET", "/forensic/records", params=params)
        return _records(answer)

    async def verify(self) -> Report:
        return Report.from_json(await self._http.call("GET", "/forensic/verify"))

    async def transfer(self, transfer_id: str) -> list[Record]:
        return _records(await self._http.call("GET", f"/forensic/transfers/{transfer_id}"))

    async def customer(self, user_number: str, since: datetime, until: datetime) -> list[Record]:
        """Every record about one customer in ``[since, until)``, by time."""
        params = {"from": since.isoformat(), "to": until.isoformat()}
        answer = await self._http.call("GET", f"/forensic/customers/{user_number}", params=params)
        return _records(answer)


def _records(answer: dict[str, Any]) -> list[Record]:
    return [Record.from_json(item) for item in answer["records"]]
