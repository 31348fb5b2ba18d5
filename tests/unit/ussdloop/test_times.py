from datetime import UTC, datetime, timedelta

import pytest

from ussdloop.times import parse_instant


def test_an_instant_without_an_offset_is_utc_and_one_with_keeps_it() -> None:
    assert parse_instant("2026-11-25T09:00") == datetime(2026, 11, 25, 9, tzinfo=UTC)
    east = parse_instant("2026-11-25T12:00+03:00")
    assert east.utcoffset() == timedelta(hours=3)
    assert east == datetime(2026, 11, 25, 9, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-11-25T09:00" + " " * 40])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)
