"""``ussdloop bulk submit FILE``: a bulk payment file from the command line, through a
DFSP's API (``dfsp.bulk_client``): the maker uploads it, the validation report's summary
is printed, the checker approves, a one-line progress bar follows the batch until it is
done, and the per-row report is saved next to the file as ``FILE.report.csv``.

PINs come from ``USSDLOOP_MAKER_PIN`` / ``USSDLOOP_CHECKER_PIN`` or are asked for
(without echo). Refusals are printed as one line naming what to do; the exit status is
0 once the batch is done (its failed rows are in the report), 2 on a refusal."""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import aiohttp

from dfsp.bulk_client import BatchStatus, BulkClient
from dfsp.client import CustomerInfo, DfspClient, DfspError, PinLockedError, WrongPinError
from ussdloop.config import NetworkConfig

MAKER_PIN_ENV: Final = "USSDLOOP_MAKER_PIN"
CHECKER_PIN_ENV: Final = "USSDLOOP_CHECKER_PIN"
POLL_SECONDS: Final = 0.5
BAR_WIDTH: Final = 30
MAX_REASONS_SHOWN: Final = 20  # refused rows listed after the summary; the rest in the report
REQUEST_TIMEOUT: Final = 60.0
AskPin = Callable[[str], str]


class SubmitRefused(Exception):
    """Something the person must fix; printed as ``ussdloop: <message>``."""


@dataclass(frozen=True)
class SubmitRequest:
    file: Path
    dfsp: str
    maker: str  # user numbers
    checker: str
    end_at: datetime | None = None
    account_id: str | None = None  # None: the maker's primary account
    url: str | None = None  # None: the DFSP API of the configuration


def parse_end(text: str | None) -> datetime | None:
    """``--end``: an ISO 8601 date and time (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise SubmitRefused(f"--end {text!r} is not an ISO 8601 date and time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def pin_from(env_name: str, who: str, ask: AskPin) -> str:
    return os.environ.get(env_name) or ask(f"{who}'s PIN: ")


async def submit(
    network: NetworkConfig, request: SubmitRequest, out: TextIO, ask: AskPin = getpass.getpass
) -> int:
    if request.maker == request.checker:
        raise SubmitRefused("the maker and the checker must be different people")
    if request.dfsp not in network.dfsps:
        raise SubmitRefused(f"no DFSP {request.dfsp!r} in the configuration")
    try:
        csv_text = request.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmitRefused(f"cannot read {request.file}: {error}") from None
    maker_pin = pin_from(MAKER_PIN_ENV, "the maker", ask)
    checker_pin = pin_from(CHECKER_PIN_ENV, "the checker", ask)
    api = network.dfsps[request.dfsp].api
    url = request.url or f"http://{api.host}:{api.port}"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            return await _submit(
                DfspClient(url, session),
                BulkClient(url, session),
                request,
                {
                    "maker": maker_pin,
                    "checker": checker_pin,
                },
                csv_text,
                out,
            )
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise SubmitRefused(f"{request.dfsp} is not reachable at {url}: {error}") from None


async def _submit(
    customers: DfspClient,
    bulk: BulkClient,
    request: SubmitRequest,
    pins: dict[str, str],
    csv_text: str,
    out: TextIO,
) -> int:
    maker = await _customer(customers, request.maker, "maker")
    maker_id = maker.customer_id
    checker_id = (await _customer(customers, request.checker, "checker")).customer_id
    account_id = request.account_id or maker.primary_account_id
    if account_id is None:
        raise SubmitRefused("the maker has no primary account: name one with --account")
    with _refusal("the maker"):
        uploaded = await bulk.upload(
            maker_id, pins["maker"], account_id, csv_text, end_at=request.end_at
        )
    print(validation_summary(uploaded), file=out, flush=True)
    with _refusal("the checker"):
        await bulk.approve(uploaded.batch_id, checker_id, pins["checker"])
    status = await _follow(bulk, uploaded.batch_id, maker_id, pins["maker"], out)
    report = await bulk.report_csv(uploaded.batch_id, maker_id, pins["maker"])
    saved = request.file.with_name(request.file.name + ".report.csv")
    saved.write_text(report, encoding="utf-8")
    print(
        f"batch {status.batch_id} {status.state}: paid {status.paid}, fees {status.fees},"
        f" {_count(status, 'paid')} rows paid, {_count(status, 'failed')} failed"
        f" of {status.rows_total}",
        file=out,
    )
    print(f"report saved to {saved}", file=out, flush=True)
    return 0


def validation_summary(batch: BatchStatus) -> str:
    """The validation report in a few lines: how many rows go out, how many payees are
    invited to open an account, and the refused rows with their reasons."""
    refused = [r for r in batch.rows if r.get("state") == "failed"]
    lines = [
        f"batch {batch.batch_id}: {batch.rows_total} rows,"
        f" {_count(batch, 'pending')} to pay, {_count(batch, 'invited')} payees without an"
        f" account (invited), {len(refused)} refused",
    ]
    for row in refused[:MAX_REASONS_SHOWN]:
        lines.append(f"  line {row.get('line')}: {row.get('reason') or 'refused'}")
    if len(refused) > MAX_REASONS_SHOWN:
        lines.append(f"  ... {len(refused) - MAX_REASONS_SHOWN} more in the report")
    return "\n".join(lines)


def progress_line(status: BatchStatus, seconds: float, start_finished: int) -> str:
    """One line of the progress bar: rows paid, failed and waiting of the total, rows/s."""
    total = max(status.rows_total, 1)
    done = status.rows_finished
    filled = BAR_WIDTH * done // total
    rate = (done - start_finished) / seconds if seconds > 0 else 0.0
    waiting = _count(status, "waiting") + _count(status, "invited") + _count(status, "pending")
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] paid {_count(status, 'paid')}"
        f" failed {_count(status, 'failed')} waiting {waiting} of {status.rows_total},"
        f" {rate:.1f} rows/s"
    )


async def _follow(
    bulk: BulkClient, batch_id: str, maker_id: str, pin: str, out: TextIO
) -> BatchStatus:
    started = time.monotonic()
    status = await bulk.status(batch_id, maker_id, pin)
    start_finished = status.rows_finished
    while True:
        line = progress_line(status, time.monotonic() - started, start_finished)
        print(f"\r{line}", end="", file=out, flush=True)
        if status.finished:
            print(file=out, flush=True)
            return status
        await asyncio.sleep(POLL_SECONDS)
        status = await bulk.status(batch_id, maker_id, pin)


async def _customer(customers: DfspClient, user_number: str, role: str) -> CustomerInfo:
    try:
        return await customers.customer_by_user_number(user_number)
    except DfspError as error:
        if error.status == 404:
            raise SubmitRefused(f"the {role} {user_number} is not a customer here") from None
        raise SubmitRefused(f"the {role} {user_number}: {error}") from None


class _refusal:
    """Turn the DFSP's refusal of ``who``'s request into a ``SubmitRefused``."""

    def __init__(self, who: str) -> None:
        self._who = who

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if isinstance(error, WrongPinError):
            left = error.attempts_left
            raise SubmitRefused(
                f"{self._who}'s PIN is wrong: {left} attempt{'' if left == 1 else 's'} left"
            ) from None
        if isinstance(error, PinLockedError):
            raise SubmitRefused(f"{self._who}'s PIN is locked: ask the DFSP to reset it") from None
        if isinstance(error, DfspError):
            raise SubmitRefused(f"refused for {self._who}: {error} ({error.id})") from None


def _count(status: BatchStatus, state: str) -> int:
    return status.by_state.get(state, 0)
