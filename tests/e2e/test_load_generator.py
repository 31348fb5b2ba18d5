"""The load generator behind bench/ussd_screens.py counts what it measures correctly."""

from __future__ import annotations

from simulators.modem.load import Walk, run_load
from tests.e2e.carrier import carrier_network
from tests.support import asyncio_test

DEMO_WALK = Walk("*123#", ("1", "Amani", "42", "2"))


@asyncio_test
async def test_handsets_walk_the_demo_dialogue_and_every_screen_is_timed() -> None:
    async with carrier_network() as carrier:
        phones = [f"2567000003{n:02d}" for n in range(5)]
        result = await run_load(carrier.simulator.network, phones, DEMO_WALK, duration_s=0.5)
        assert result.failures == 0, result.first_failure
        assert result.dialogues >= len(phones)
        assert result.screens >= DEMO_WALK.screens * result.dialogues
        assert len(result.latencies_ms) == result.screens
        assert 0 < result.percentile_ms(0.5) <= result.percentile_ms(0.99)


@asyncio_test
async def test_a_walk_that_does_not_end_where_expected_is_counted_as_a_failure() -> None:
    async with carrier_network() as carrier:
        short_walk = Walk("*123#", ("1",))  # the demo's second screen expects a name
        result = await run_load(
            carrier.simulator.network, ["256700000399"], short_walk, duration_s=0.2
        )
        assert result.failures >= 1
        assert "unexpected screen" in result.first_failure
        assert result.dialogues == 0
