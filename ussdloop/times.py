"""Instants as the services read them from people and other programs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MAX_ISO_CHARS: Final = 40  # longer text is not an ISO 8601 date and time


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date and time, aware; one written without an offset is UTC.
    ``ValueError`` for anything else (each caller says it in its own words)."""
    if len(text) > MAX_ISO_CHARS:
        raise ValueError(f"{text[:MAX_ISO_CHARS]!r}... is not an ISO 8601 date and time")
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
