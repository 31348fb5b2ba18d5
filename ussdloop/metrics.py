"""Prometheus text exposition (format 0.0.4) for the services' counters and gauges.

A service gathers its figures into ``Metric`` values; ``render`` writes them. Counters
are the services' own monotonic counts, so no client library is needed for this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Literal["counter", "gauge"]
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r} is not a Prometheus metric name")


def counters(prefix: str, values: Mapping[str, int], help: str) -> list[Metric]:
    """One counter per entry of ``values`` (``prefix_<key>_total``)."""
    return [
        Metric(f"{prefix}_{key}_total", "counter", f"{help}: {key}", v) for key, v in values.items()
    ]


def render(metrics: Iterable[Metric]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for metric in metrics:
        if metric.name not in described:
            described.add(metric.name)
            lines.append(f"# HELP {metric.name} {_escape(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
        lines.append(f"{metric.name}{_labels(metric.labels)} {_number(metric.value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{_escape(v).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()
    )
    return "{" + inner + "}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
