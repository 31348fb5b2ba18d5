"""Structured logs: one event per line on stderr, as text or JSON.

The services log through ``twisted.logger`` with named fields (``session_id``, masked
``msisdn``, ``system_id``, ...); the simulator's modules use the standard library's
``logging`` with ``event=... key=value`` messages. Both go to the same stream.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

LEVELS = ("debug", "info", "warn", "error")


def start_logging(level: str = "info", *, json: bool = False, stream: TextIO | None = None) -> None:
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    out = stream or sys.stderr
    # zope interfaces are not visible to mypy: these are ILogObserver / ILogFilterPredicate.
    observer: Any = jsonFileLogObserver(out) if json else textFileLogObserver(out)
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    filtered: Any = FilteringLogObserver(observer, [predicate])
    globalLogBeginner.beginLoggingTo([filtered], redirectStandardIO=False)
    stdlib_level = {"warn": logging.WARNING}.get(level, getattr(logging, level.upper()))
    logging.basicConfig(
        level=stdlib_level,
        stream=out,
        format="%(asctime)s [%(name)s#%(levelname)s] %(message)s",
    )
