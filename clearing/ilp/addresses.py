"""ILP addresses (IL-RFC 15) and the scheme's account addresses (SPEC section 5)."""

from __future__ import annotations

import re
from typing import Final

from clearing.ilp.oer import IlpCodecError

MAX_ADDRESS_LENGTH: Final = 1023
# REFERENCE 4 says DFSP ids are "about 20 chars or fewer"; allow some headroom.
MAX_DFSP_ID_LENGTH: Final = 32
ALLOCATION_SCHEMES: Final = frozenset(
    {"g", "private", "example", "peer", "self", "test", "test1", "test2", "test3", "local"}
)
_SEGMENT: Final = re.compile(r"[a-zA-Z0-9_~-]+")
_COUNTRY: Final = re.compile(r"[A-Z]{3}")


class InvalidIlpAddress(IlpCodecError):
    """A string that is not a valid ILP address."""


def _check_segment(segment: str, what: str) -> None:
    if not _SEGMENT.fullmatch(segment):
        raise InvalidIlpAddress(
            f"{what} {segment!r} is empty or has a character outside [a-zA-Z0-9_~-]"
        )


class IlpAddress(str):
    """An ILP address: ``<scheme>.<segment>[.<segment>...]``, at most 1023 characters.

    A ``str`` so it prints, compares and encodes as the address itself; constructing
    one validates it and raises ``InvalidIlpAddress`` otherwise.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> IlpAddress:
        if not isinstance(value, str):
            raise InvalidIlpAddress(f"an ILP address is a str, not {type(value).__name__}")
        if len(value) > MAX_ADDRESS_LENGTH:
            raise InvalidIlpAddress(f"address of {len(value)} chars exceeds {MAX_ADDRESS_LENGTH}")
        scheme, *segments = value.split(".")
        if scheme not in ALLOCATION_SCHEMES:
            raise InvalidIlpAddress(f"{value[:40]!r} does not start with an allocation scheme")
        if not segments:
            raise InvalidIlpAddress(f"{value!r} has no segment after the allocation scheme")
        for segment in segments:
            _check_segment(segment, "address segment")
        return super().__new__(cls, value)

    @property
    def scheme(self) -> str:
        return self.split(".", 1)[0]


def dfsp_account_address(dfsp: str, account: str, country: str = "ZZZ") -> IlpAddress:
    """``private.l1p.<country>.<dfsp>.<account>``; the account may have suffixes (``1.medical``)."""
    if not _COUNTRY.fullmatch(country):
        raise InvalidIlpAddress(f"country {country!r} is not ISO 3166 alpha-3 (or ZZZ)")
    _check_segment(dfsp, "DFSP id")
    if len(dfsp) > MAX_DFSP_ID_LENGTH:
        raise InvalidIlpAddress(f"DFSP id of {len(dfsp)} chars exceeds {MAX_DFSP_ID_LENGTH}")
    for segment in account.split("."):
        _check_segment(segment, "account segment")
    return IlpAddress(f"private.l1p.{country}.{dfsp}.{account}")
