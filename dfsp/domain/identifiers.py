"""Identifiers: phone numbers, user numbers and the key of a person; pure, no I/O.

SPEC section 8: identifiers are normalised before look-up, so ``+256 700 000 001`` and
``256700000001`` are one user. An MSISDN is kept as E.164 digits without the '+'
(``256700000001``); ``msisdn_uri`` gives its ``tel:+256700000001`` form. A number
written nationally (``0700 000 001``) is refused rather than guessed at: without the
country code it could be anyone's.

A user number is exactly 8 digits; new ones never start with 0 (``allocate_user_number``).

SPEC section 3 ("Customers"): a person is identified by first and last name, date of
birth and national ID; the same person may not register twice at one DFSP, different
people may share a name and birth date. ``PersonKey`` is that identity, normalised:
names case-folded (after Unicode NFKC) with whitespace collapsed, the national ID
upper-cased without whitespace (other characters, such as dashes, are kept: they may
be part of the ID). The names as typed are kept for display by the caller.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

MSISDN_MIN_DIGITS: Final = 8
MSISDN_MAX_DIGITS: Final = 15  # E.164
MAX_IDENTIFIER_TEXT: Final = 64  # longest input looked at, separators included
USER_NUMBER_DIGITS: Final = 8
MAX_NAME_LENGTH: Final = 100
MAX_NATIONAL_ID_LENGTH: Final = 32
MAX_AGE_YEARS: Final = 130

_SEPARATORS = re.compile(r"[\s\-.()]")
_DIGITS = re.compile(r"[0-9]+")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class IdentifierError(ValueError):
    """An identifier or a person's details that cannot be used; the message says why."""


class InvalidIdentifier(IdentifierError):
    """A phone number or user number that is not one."""


class InvalidPersonDetails(IdentifierError):
    """A name, date of birth or national ID refused; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UserNumbersExhausted(IdentifierError):
    """Every number tried was taken; the caller may retry later or widen the space."""


# -- phone numbers -------------------------------------------------------------------------


def normalise_msisdn(text: str) -> str:
    """E.164 digits without '+': ``"+256 (700) 000-001"`` -> ``"256700000001"``.

    Spaces, dashes, dots and parentheses are dropped; a leading ``tel:``, ``+`` or ``00``
    (international prefix) is removed. Anything else, a national number starting with 0,
    or a length outside 8..15 digits raises ``InvalidIdentifier``.
    """
    if len(text) > MAX_IDENTIFIER_TEXT:
        raise InvalidIdentifier(f"a phone number has at most {MSISDN_MAX_DIGITS} digits")
    compact = _SEPARATORS.sub("", text)
    compact = compact.removeprefix("tel:")
    if compact.startswith("+"):
        compact = compact[1:]
    elif compact.startswith("00"):
        compact = compact[2:]
    if not _DIGITS.fullmatch(compact):
        raise InvalidIdentifier("a phone number has digits only (with an optional leading +)")
    if compact.startswith("0"):
        raise InvalidIdentifier("write the number with its country code, like +256 700 000 001")
    if not MSISDN_MIN_DIGITS <= len(compact) <= MSISDN_MAX_DIGITS:
        raise InvalidIdentifier(
            f"a phone number has {MSISDN_MIN_DIGITS} to {MSISDN_MAX_DIGITS} digits"
            " with its country code"
        )
    return compact


def msisdn_uri(msisdn: str) -> str:
    """The ``tel:`` URI of a phone number: ``"256700000001"`` -> ``"tel:+256700000001"``."""
    return f"tel:+{normalise_msisdn(msisdn)}"


# -- user numbers --------------------------------------------------------------------------


class UserNumber(str):
    """A user number: exactly 8 ASCII digits. ``UserNumber(text)`` checks, ``parse`` tidies."""

    __slots__ = ()

    def __new__(cls, digits: str) -> UserNumber:
        if len(digits) != USER_NUMBER_DIGITS or not _DIGITS.fullmatch(digits):
            raise InvalidIdentifier(f"a user number has exactly {USER_NUMBER_DIGITS} digits")
        return super().__new__(cls, digits)

    @classmethod
    def parse(cls, text: str) -> UserNumber:
        """A user number as typed: spaces, dashes, dots and parentheses are ignored."""
        if len(text) > MAX_IDENTIFIER_TEXT:
            raise InvalidIdentifier(f"a user number has exactly {USER_NUMBER_DIGITS} digits")
        return cls(_SEPARATORS.sub("", text))

    def __repr__(self) -> str:
        return f"UserNumber({str(self)!r})"


def allocate_user_number(
    rng: random.Random, taken: Callable[[str], bool], attempts: int = 20
) -> UserNumber:
    """A random user number that does not start with 0 and that ``taken`` says is free.

    Use ``random.SystemRandom()`` in production so numbers cannot be predicted. Raises
    ``UserNumbersExhausted`` after ``attempts`` taken numbers in a row.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    low = 10 ** (USER_NUMBER_DIGITS - 1)
    for _ in range(attempts):
        candidate = str(rng.randrange(low, low * 10))
        if not taken(candidate):
            return UserNumber(candidate)
    raise UserNumbersExhausted(f"no free user number in {attempts} attempts")


# -- people --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonKey:
    """Who a customer is, normalised; equal keys at one DFSP are the same person.

    Build it with ``PersonKey.of``, which normalises and validates what was typed.
    """

    first_name: str
    last_name: str
    date_of_birth: date
    national_id: str

    @classmethod
    def of(
        cls,
        first_name: str,
        last_name: str,
        date_of_birth: str | date,
        national_id: str,
        *,
        today: date,
    ) -> PersonKey:
        """Normalise and check: ``today`` bounds the date of birth (no future, <= 130 years)."""
        return cls(
            first_name=normalise_name(first_name, "first_name"),
            last_name=normalise_name(last_name, "last_name"),
            date_of_birth=parse_date_of_birth(date_of_birth, today=today),
            national_id=normalise_national_id(national_id),
        )


def normalise_name(text: str, field: str = "name") -> str:
    """Case-folded, whitespace collapsed: ``"  Mary  ANNE "`` -> ``"mary anne"``."""
    name = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if not name:
        raise InvalidPersonDetails(field, "enter a name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidPersonDetails(field, f"use at most {MAX_NAME_LENGTH} characters")
    return name


def normalise_national_id(text: str) -> str:
    """Upper-cased without whitespace: ``"cm 9001 abc"`` -> ``"CM9001ABC"``."""
    national_id = "".join(unicodedata.normalize("NFKC", text).upper().split())
    if not national_id:
        raise InvalidPersonDetails("national_id", "enter the national ID")
    if len(national_id) > MAX_NATIONAL_ID_LENGTH:
        raise InvalidPersonDetails(
            "national_id", f"use at most {MAX_NATIONAL_ID_LENGTH} characters"
        )
    return national_id


def parse_date_of_birth(value: str | date, *, today: date) -> date:
    """A date of birth from ``YYYY-MM-DD``; not in the future, not over 130 years ago."""
    if isinstance(value, date):
        born = date(value.year, value.month, value.day)  # a datetime becomes its date
    else:
        match = _ISO_DATE.fullmatch(value.strip())
        if match is None:
            raise InvalidPersonDetails("date_of_birth", "write it as YYYY-MM-DD, like 1990-04-25")
        try:
            born = date(*(int(part) for part in match.groups()))
        except ValueError:
            raise InvalidPersonDetails("date_of_birth", "no such date") from None
    if born > today:
        raise InvalidPersonDetails("date_of_birth", "a date of birth can't be in the future")
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age > MAX_AGE_YEARS:
        raise InvalidPersonDetails(
            "date_of_birth", f"an age over {MAX_AGE_YEARS} years is not possible"
        )
    return born
