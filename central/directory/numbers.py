"""User numbers: 8 digits, never starting with 0, allocated at random by the directory."""

from __future__ import annotations

import re
import secrets
from typing import Final

USER_NUMBER: Final = re.compile(r"[1-9][0-9]{7}")


def is_user_number(text: str) -> bool:
    return USER_NUMBER.fullmatch(text) is not None


def random_user_number() -> str:
    number = str(10_000_000 + secrets.randbelow(90_000_000))
    assert is_user_number(number)
    return number
