"""The load generator: many virtual handsets walking a scripted dialogue at once.

Handsets are driven in process (no HTTP), so the figures measure the network and the
application, not the control API. Each handset dials, answers the scripted inputs one
screen at a time, and starts over until the run ends; every screen's latency is the time
from the handset's send to the screen it gets back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulators.modem.handsets import Handset, HandsetError, HandsetState
from simulators.modem.network import MobileNetwork


@dataclass
class LoadResult:
    handsets: int
    elapsed_s: float = 0.0
    screens: int = 0
    dialogues: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_failure: str = ""

    @property
    def screens_per_s(self) -> float:
        return self.screens / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Walk:
    """A dialogue to repeat: the dial string, the answers, and how the last screen ends."""

    code: str
    answers: tuple[str, ...]

    @property
    def screens(self) -> int:
        return 1 + len(self.answers)


async def run_load(
    network: MobileNetwork,
    msisdns: Sequence[str],
    walk: Walk,
    *,
    duration_s: float,
    target_screens_per_s: float | None = None,
    timeout_s: float = 10.0,
    clock: Callable[[], float] = time.perf_counter,
) -> LoadResult:
    """Walk ``walk`` on every handset in ``msisdns`` for ``duration_s``.

    With ``target_screens_per_s`` the offered load is paced (each handset waits for its
    next slot), which is how latency is measured below saturation; without it every
    handset sends its next input as soon as it has a screen.
    """
    result = LoadResult(handsets=len(msisdns))
    interval = len(msisdns) / target_screens_per_s if target_screens_per_s else 0.0
    start = clock()
    deadline = start + duration_s
    # Paced handsets start staggered over one interval, so the offered load is smooth
    # rather than every handset sending in the same instant.
    await asyncio.gather(
        *(
            _handset_loop(
                network,
                msisdn,
                walk,
                result,
                _Pace(start + interval * n / len(msisdns), interval),
                deadline,
                timeout_s,
                clock,
            )
            for n, msisdn in enumerate(msisdns)
        )
    )
    result.elapsed_s = clock() - start
    return result


async def _handset_loop(
    network: MobileNetwork,
    msisdn: str,
    walk: Walk,
    result: LoadResult,
    pace: _Pace,
    deadline: float,
    timeout_s: float,
    clock: Callable[[], float],
) -> None:
    handset = network.handset(msisdn)
    while clock() < deadline:
        inputs = (walk.code, *walk.answers)
        for step, text in enumerate(inputs):
            if pace.interval:
                pause = pace.next_slot() - clock()
                if pause > 0:
                    await asyncio.sleep(pause)
            sent = clock()
            try:
                if step == 0:
                    screen = await handset.dial(text, timeout=timeout_s)
                else:
                    screen = await handset.reply(text, timeout=timeout_s)
            except Exception as error:  # a failed screen is counted, the run goes on
                _fail(result, f"{msisdn} step {step}: {error!r}")
                await _reset(handset)
                break
            result.latencies_ms.append((clock() - sent) * 1000.0)
            last = step == len(inputs) - 1
            if screen.expects_reply == last:
                _fail(result, f"{msisdn} step {step}: unexpected screen {screen!r}")
                await _reset(handset)
                break
            result.screens += 1
        else:
            result.dialogues += 1


@dataclass
class _Pace:
    """One handset's send times: every ``interval`` seconds from ``first``."""

    first: float
    interval: float
    sent: int = 0

    def next_slot(self) -> float:
        slot = self.first + self.sent * self.interval
        self.sent += 1
        return slot


def _fail(result: LoadResult, reason: str) -> None:
    result.failures += 1
    if not result.first_failure:
        result.first_failure = reason


async def _reset(handset: Handset) -> None:
    """Leave the handset idle for its next dialogue, whatever state the failure left."""
    if handset.state is HandsetState.IDLE:
        return
    try:
        await handset.cancel()
    except HandsetError:  # the dialogue ended meanwhile
        return
