"""USSD screens per second and screen latency, end to end over SMPP.

N virtual handsets (in this process, with the simulator's SMSC) walk the demo menu's
5-screen dialogue against the gateway, which runs as its own process (`ussdloop gateway`)
so the two share the machine's cores as they would in production. Three runs:

1. saturation: every handset sends its next input as soon as it has a screen;
2. half load: the offered rate paced at half the saturated throughput, for latency;
3. baseline: the same saturation run against a bare echo ESME (bench/echo_esme.py).

    python bench/ussd_screens.py [--handsets 200] [--duration 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ussdloop.aio import install_asyncio_reactor  # noqa: E402

install_asyncio_reactor()

from simulators.modem.load import LoadResult, Walk, run_load  # noqa: E402
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig  # noqa: E402
from ussdloop.aio import as_deferred  # noqa: E402

SYSTEM_ID, PASSWORD = "dfsp1", "dfsp1pw"
WALK = Walk("*123#", ("1", "Amani", "42", "2"))


def gateway_command(port: int) -> list[str]:
    return [sys.executable, "-m", "ussdloop.cli", "gateway", "--dfsp", "dfsp1"]


def gateway_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "USSDLOOP__DFSPS__DFSP1__GATEWAY__SMPP__PORT": str(port),
            "USSDLOOP__DFSPS__DFSP1__GATEWAY__SMPP__RECONNECT_INITIAL": "0.1",
            "USSDLOOP__DFSPS__DFSP1__GATEWAY__USSD_HTTP__PORT": "0",
            "USSDLOOP__DFSPS__DFSP1__GATEWAY__MENU": "demo",
        }
    )
    return env


def echo_command(port: int) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "bench" / "echo_esme.py"),
        f"--port={port}",
        f"--system-id={SYSTEM_ID}",
        f"--password={PASSWORD}",
        f"--screens={WALK.screens}",
    ]


async def with_application(
    simulator: Simulator, command: list[str], env: dict[str, str], run: Callable[[], Awaitable[Any]]
) -> Any:
    """Start the application process (its log to a file, as in production), wait for its
    bind, run, stop it."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while SYSTEM_ID not in simulator.bound_accounts():
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                error = log.read().decode(errors="replace")
                raise RuntimeError(f"{command[1]} did not bind: {error[-2000:]}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        return await run()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        while SYSTEM_ID in simulator.bound_accounts():
            await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    account = EsmeAccount(
        system_id=SYSTEM_ID, password=PASSWORD, short_codes=("123",), window=args.window
    )
    simulator = Simulator(SimulatorConfig(smpp_port=0, accounts=(account,)))
    await simulator.start()
    port = simulator.smpp_port
    phones = [f"2567{n:08d}" for n in range(args.handsets)]
    for phone in phones:
        simulator.network.handset(phone)
    gc.freeze()  # as `ussdloop` does after start-up

    async def load(target: float | None = None, duration: float = args.duration) -> LoadResult:
        return await run_load(
            simulator.network, phones, WALK, duration_s=duration, target_screens_per_s=target
        )

    async def gateway_runs() -> tuple[LoadResult, LoadResult]:
        await load(duration=1.0)  # warm up
        saturated = await load()
        half = await load(target=saturated.screens_per_s / 2)
        return saturated, half

    async def baseline_run() -> LoadResult:
        await load(duration=1.0)
        return await load()

    try:
        saturated, half = await with_application(
            simulator, gateway_command(port), gateway_env(port), gateway_runs
        )
        baseline = await with_application(
            simulator, echo_command(port), dict(os.environ), baseline_run
        )
    finally:
        await simulator.stop()
    return {
        "handsets": args.handsets,
        "duration_s": args.duration,
        "screens_per_s": round(saturated.screens_per_s, 1),
        "p50_ms": round(half.percentile_ms(0.50), 2),
        "p99_ms": round(half.percentile_ms(0.99), 2),
        "half_load_screens_per_s": round(half.screens_per_s, 1),
        "saturated_p50_ms": round(saturated.percentile_ms(0.50), 2),
        "saturated_p99_ms": round(saturated.percentile_ms(0.99), 2),
        "baseline_screens_per_s": round(baseline.screens_per_s, 1),
        "gateway_vs_baseline": round(saturated.screens_per_s / baseline.screens_per_s, 3)
        if baseline.screens_per_s
        else 0.0,
        "failures": saturated.failures + half.failures + baseline.failures,
        "first_failure": saturated.first_failure or half.first_failure or baseline.first_failure,
    }


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("run", "screens/s", "p50 ms", "p99 ms"),
        (
            "gateway, saturated",
            f"{figures['screens_per_s']:.0f}",
            f"{figures['saturated_p50_ms']:.1f}",
            f"{figures['saturated_p99_ms']:.1f}",
        ),
        (
            "gateway, half load",
            f"{figures['half_load_screens_per_s']:.0f}",
            f"{figures['p50_ms']:.1f}",
            f"{figures['p99_ms']:.1f}",
        ),
        ("echo ESME baseline", f"{figures['baseline_screens_per_s']:.0f}", "", ""),
    ]
    lines = [f"{a:<20} {b:>10} {c:>8} {d:>8}" for a, b, c, d in rows]
    lines.append(
        f"gateway / baseline: {figures['gateway_vs_baseline']:.0%}"
        f"   handsets: {figures['handsets']}   failures: {figures['failures']}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--handsets", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--window", type=int, default=10, help="the SMSC's window per bind")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from twisted.internet import reactor

    outcome: dict[str, Any] = {}

    async def run() -> None:
        try:
            outcome.update(await bench(args))
        finally:
            reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: as_deferred(run()))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if not outcome:
        return 1
    print(json.dumps(outcome) if args.json else table(outcome))
    return 0 if not outcome["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
