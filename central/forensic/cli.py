"""``ussdloop forensic verify``, ``ussdloop forensic transfer ID`` and ``ussdloop
forensic customer USER_NUMBER [--from ISO] [--to ISO]``: read the central forensic log
straight from the configured central database, or through the central API (``--url``)
with the operator's credentials from the configuration."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from central.client import CentralError, CentralHttp
from central.forensic.client import ForensicClient
from central.forensic.service import (
    customer_records,
    transfer_path,
    transfers_in,
    verify_stored,
)
from ussdloop import db
from ussdloop.config import NetworkConfig
from ussdloop.forensic import Record, Report, utc_iso

Read = Callable[[AsyncSession], Any]


async def verify_command(network: NetworkConfig, url: str | None, out: TextIO) -> int:
    """Print each service's intact ranges and every problem; 1 if there is any."""
    async with _reading(network, url) as read:
        report: Report = await read(verify_stored, lambda client: client.verify())
    for chain in report.chains:
        print(chain.summary(), file=out)
        for finding in chain.findings:
            print(f"  {finding.problem}: {finding.detail}", file=out)
    if not report.chains:
        print("the forensic log is empty", file=out)
    return 0 if report.ok else 1


async def transfer_command(
    network: NetworkConfig, url: str | None, transfer_id: str, out: TextIO
) -> int:
    """Print the transfer's path across the services, by time; 1 if nothing is logged."""
    async with _reading(network, url) as read:
        records: list[Record] = await read(
            lambda session: transfer_path(session, transfer_id),
            lambda client: client.transfer(transfer_id),
        )
    _print_records(records, out)
    if not records:
        print(f"nothing in the forensic log is about {transfer_id!r}", file=out)
    return 0 if records else 1


async def customer_command(
    network: NetworkConfig,
    url: str | None,
    user_number: str,
    since: datetime,
    until: datetime,
    out: TextIO,
) -> int:
    """Print every record about the customer in the window, then their transfers; 1 if
    nothing is logged."""
    async with _reading(network, url) as read:
        records: list[Record] = await read(
            lambda session: customer_records(session, user_number, since, until),
            lambda client: client.customer(user_number, since, until),
        )
    _print_records(records, out)
    window = f"from {utc_iso(since)} to {utc_iso(until)}"
    if not records:
        print(f"nothing in the forensic log is about {user_number} {window}", file=out)
        return 1
    transfers = transfers_in(records)
    print(f"{len(transfers)} transfer(s) of {user_number} {window}", file=out)
    for transfer_id in transfers:
        print(f"  {transfer_id}", file=out)
    return 0


def _print_records(records: list[Record], out: TextIO) -> None:
    for record in records:
        data = json.dumps(record.data, sort_keys=True, ensure_ascii=False)
        print(f"{record.at}  {record.service}#{record.seq}  {record.event}  {data}", file=out)


class CommandError(Exception):
    """The log could not be read: the message says why (exit 2)."""


@asynccontextmanager
async def _reading(network: NetworkConfig, url: str | None) -> AsyncIterator[Any]:
    if url:
        central = network.central
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            client = ForensicClient(
                CentralHttp(url, session, central.operator_key, central.operator_secret)
            )

            async def over_http(_: Read, remote: Callable[[ForensicClient], Any]) -> Any:
                try:
                    return await remote(client)
                except (CentralError, aiohttp.ClientError, OSError) as error:
                    raise CommandError(f"the central API at {url} answered: {error}") from None

            yield over_http
        return
    database = network.central.database_url(network.network.data_dir)
    file = make_url(database).database
    if database.startswith("sqlite") and file and not Path(file).exists():
        raise CommandError(f"there is no central database at {file} (has central run?)")
    engine = db.create_service_engine(database)
    sessions = db.session_factory(engine)

    async def from_database(local: Read, _: Callable[[ForensicClient], Any]) -> Any:
        try:
            async with sessions() as session, session.begin():
                await session.connection(execution_options=db.READ_ONLY)
                return await local(session)
        except DBAPIError as error:
            raise CommandError(
                f"cannot read the forensic log in {database}: {error.orig} (has central run?)"
            ) from None

    try:
        yield from_database
    finally:
        await engine.dispose()
