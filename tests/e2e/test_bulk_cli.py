"""`ussdloop bulk submit FILE` as a business runs it against a network started with
`ussdloop up`: the validation summary, a progress bar, the totals and the report saved
next to the file; clear refusals for a wrong PIN and for a maker checking their own file."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from dfsp.client import DfspClient
from tests.e2e.test_ussdloop_up import ROOT, network_file

PIN = "4071"
HEADER = "sequenceNumber,identifier,firstName,lastName,nationalId,dob,amount\n"


def bulk_config(directory: Path) -> tuple[Path, int, int]:
    """The network of ``ussdloop up`` on free ports, new customers of dfsp1 given
    100 USD; the two DFSP API ports."""
    path = network_file(directory)
    text = path.read_text()
    api1, api2 = (int(p) for p in re.findall(r"^api = \{ port = (\d+) \}", text, re.M))
    path.write_text(text.replace("[dfsps.dfsp1]\n", '[dfsps.dfsp1]\nopening_balance = "100"\n', 1))
    return path, api1, api2


def give_roles(config: Path, maker: str, checker: str) -> None:
    """The maker and checker roles by configuration (``[dfsps.dfsp1.bulk]``)."""
    roles = f'makers = ["{maker}"]\ncheckers = ["{checker}"]\n'
    with config.open("a") as file:
        file.write(f"[dfsps.dfsp1.bulk]\nrows_per_second = 0\n{roles}")


def up(config: Path) -> subprocess.Popen[str]:
    network = subprocess.Popen(
        [sys.executable, "-m", "ussdloop.cli", "up", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert network.stdout is not None
    assert "is up:" in network.stdout.readline()
    return network


def stop(network: subprocess.Popen[str]) -> None:
    network.send_signal(signal.SIGTERM)
    network.wait(timeout=30)


async def register_people(api1: int, api2: int) -> list[str]:
    """Maker, checker (a holder of the maker's account), a payee on each DFSP: their
    user numbers."""
    async with aiohttp.ClientSession() as session:
        dfsp1 = DfspClient(f"http://127.0.0.1:{api1}", session)
        dfsp2 = DfspClient(f"http://127.0.0.1:{api2}", session)
        people = [(dfsp1, "Maker", 1), (dfsp1, "Checker", 2), (dfsp1, "Here", 3)]
        people.append((dfsp2, "There", 4))
        registered = [
            await client.register(
                msisdn=f"+25671000000{n}",
                first_name=first,
                last_name="Cli",
                date_of_birth="1990-05-17",
                national_id=f"NC{n}",
                pin=PIN,
            )
            for client, first, n in people
        ]
        maker, checker = registered[0], registered[1]
        assert maker.primary_account_id is not None
        await dfsp1.add_holder(
            maker.customer_id, maker.primary_account_id, checker.user_number, PIN
        )
        return [person.user_number for person in registered]


def submit(
    config: Path, file: Path, maker: str, checker: str, maker_pin: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ussdloop.cli",
            "bulk",
            "submit",
            str(file),
            "--config",
            str(config),
            "--dfsp",
            "dfsp1",
            "--maker",
            maker,
            "--checker",
            checker,
        ],
        cwd=ROOT,
        env=os.environ | {"USSDLOOP_MAKER_PIN": maker_pin, "USSDLOOP_CHECKER_PIN": PIN},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_file_is_uploaded_approved_followed_and_its_report_saved(tmp_path: Path) -> None:
    config, api1, api2 = bulk_config(tmp_path)
    network = up(config)
    try:
        with ThreadPoolExecutor(1) as thread:  # the test runner has a loop of its own
            people = thread.submit(asyncio.run, register_people(api1, api2)).result()
    finally:
        stop(network)
    maker, checker, here, there = people
    give_roles(config, maker, checker)
    file = tmp_path / "salaries.csv"
    file.write_text(
        HEADER
        + f"1,{here},Here,Cli,NC3,1990-05-17,10\n"
        + f"2,{there},There,Cli,NC4,1990-05-17,12.50\n"
        + f"3,{here},Here,Cli,NC3,1990-13-17,5\n"  # no such month
    )
    network = up(config)
    try:
        wrong = submit(config, file, maker, checker, maker_pin="0000")
        assert wrong.returncode == 2
        assert "the maker's PIN is wrong: 2 attempts left" in wrong.stderr

        own = submit(config, file, maker, maker, maker_pin=PIN)
        assert own.returncode == 2
        assert "the maker and the checker must be different people" in own.stderr

        done = submit(config, file, maker, checker, maker_pin=PIN)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert ": 3 rows, 2 to pay, 0 payees without an account (invited), 1 refused" in out
        assert "  line 4: " in out  # the malformed row, with its reason
        assert "paid 2 failed 1 waiting 0 of 3," in out and " rows/s" in out
        assert f"[{'#' * 30}] paid 2" in out  # the bar, full
        assert "paid 22.50 USD" in out and "2 rows paid, 1 failed of 3" in out
        report = tmp_path / "salaries.csv.report.csv"
        assert f"report saved to {report}" in out
        lines = report.read_text().splitlines()
        assert len(lines) == 4 and ",paid," in lines[1] and ",paid," in lines[2]
    finally:
        stop(network)
