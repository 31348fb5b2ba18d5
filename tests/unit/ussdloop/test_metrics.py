"""Prometheus text exposition."""

from __future__ import annotations

import pytest

from ussdloop.metrics import Metric, counters, render


def test_counters_and_gauges_are_written_in_the_exposition_format() -> None:
    text = render(
        [
            *counters("ussd", {"screens_sent": 5}, "USSD gateway events"),
            Metric("ussd_sessions_live", "gauge", "live sessions", 2, {"dfsp": 'd"1'}),
        ]
    )
    assert text.splitlines() == [
        "# HELP ussd_screens_sent_total USSD gateway events: screens_sent",
        "# TYPE ussd_screens_sent_total counter",
        "ussd_screens_sent_total 5",
        "# HELP ussd_sessions_live live sessions",
        "# TYPE ussd_sessions_live gauge",
        'ussd_sessions_live{dfsp="d\\"1"} 2',
    ]


def test_a_bad_metric_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        Metric("2bad", "gauge", "", 1)
