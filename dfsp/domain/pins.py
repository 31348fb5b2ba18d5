"""PINs: the weak-PIN rules, hashing at rest, and the wrong-PIN lock-out; pure, no I/O.

SPEC section 3 ("Customers"): a PIN is never stored or logged in clear; weak PINs are
refused; a few wrong PINs lock the customer out until the DFSP resets them.

Weak PINs (``check_pin``), in the order they are checked, each with a reason the
person can act on: not digits only; shorter or longer than the policy (4..6 by
default); all one digit (1111); a straight run up or down (1234, 4321, 0123, 9876).
Runs wrap around from 9 to 0 (8901, 7890, 1098): on a phone keypad 0 sits after 9, so
"7890" is typed as a run and guessed as one, and refusing the wrap-around runs costs
only a handful of the 10**4 four-digit PINs. Last, a short blocklist of the PINs people
choose most after those (published PIN-frequency studies): patterns like 1212 and
1122, years like 2000, the keypad column 2580.

Hashing (``hash_pin``): scrypt with a random 16-byte salt; the parameters travel in the
stored string, ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, so they can be raised
later: ``verify_pin`` uses what is stored, ``needs_rehash`` says when to hash again
(after the next correct PIN). Stored parameters are bounded, so a corrupt row cannot
make a check eat memory. A PIN is carried in a ``Pin`` whose repr is ``Pin(****)``.

Lock-out (``PinAttempts``): a frozen state the service stores per customer; every
wrong PIN counts, the ``max_failures``-th locks, a correct PIN clears the count, and
only ``reset`` (the DFSP) unlocks. While locked, no PIN is checked at all.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import itertools
import re
import secrets
from dataclasses import dataclass, field
from typing import Final, final

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# The most chosen PINs that are neither one digit nor a straight run.
COMMON_PINS: Final = frozenset(
    {
        "1212", "1122", "1313", "1010", "2000", "2001", "1004", "6969", "2580", "0852",
        "121212", "112233", "123123", "123321", "696969", "147258", "159753",
    }
)  # fmt: skip
MAX_PIN_LENGTH: Final = 12
DEFAULT_MAX_FAILURES: Final = 3
_DIGITS = re.compile(r"[0-9]+")


class PinError(Exception):
    """A PIN refused, wrong or locked; the service maps each to a screen."""


class WeakPinReason(enum.StrEnum):
    """Why a PIN is refused; ``message`` is the text a person can act on."""

    NOT_DIGITS = "not_digits"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    ONE_DIGIT = "one_digit"
    STRAIGHT_RUN = "straight_run"
    COMMON = "common"


class WeakPin(PinError, ValueError):
    """The PIN is refused; ``reason`` says why, ``str(error)`` says what to do."""

    def __init__(self, reason: WeakPinReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class WrongPin(PinError):
    """The PIN did not match; the customer may try ``attempts_left`` more times."""

    def __init__(self, attempts_left: int) -> None:
        plural = "attempt" if attempts_left == 1 else "attempts"
        super().__init__(f"wrong PIN: {attempts_left} {plural} left")
        self.attempts_left = attempts_left


class PinLocked(PinError):
    """Too many wrong PINs: nothing is checked until the DFSP resets the PIN."""

    def __init__(self) -> None:
        super().__init__("too many wrong PINs: the PIN is locked until your provider resets it")


@final
class Pin:
    """A PIN in memory: its repr and str never show the digits; ``reveal`` does."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        self._digits = digits

    def reveal(self) -> str:
        return self._digits

    def __repr__(self) -> str:
        return "Pin(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pin):
            return NotImplemented
        return hmac.compare_digest(self._digits.encode(), other._digits.encode())

    __hash__ = None  # type: ignore[assignment]  # a hash table of PINs is a leak


def _digits_of(pin: Pin | str) -> str:
    return pin.reveal() if isinstance(pin, Pin) else pin


@dataclass(frozen=True, slots=True)
class PinPolicy:
    """What a new PIN must be; the default is 4 to 6 digits and the common-PIN list."""

    min_length: int = 4
    max_length: int = 6
    blocklist: frozenset[str] = field(default=COMMON_PINS)

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= MAX_PIN_LENGTH:
            raise ValueError(
                f"PIN lengths must satisfy 1 <= min_length <= max_length <= {MAX_PIN_LENGTH}"
            )

    def check(self, pin: Pin | str) -> None:
        """Raise ``WeakPin`` with the first rule the PIN breaks; return if it is strong."""
        digits = _digits_of(pin)
        if not _DIGITS.fullmatch(digits):
            raise WeakPin(WeakPinReason.NOT_DIGITS, "use digits 0-9 only")
        if len(digits) < self.min_length:
            raise WeakPin(WeakPinReason.TOO_SHORT, f"use at least {self.min_length} digits")
        if len(digits) > self.max_length:
            raise WeakPin(WeakPinReason.TOO_LONG, f"use at most {self.max_length} digits")
        if len(set(digits)) == 1:
            raise WeakPin(WeakPinReason.ONE_DIGIT, "use different digits, not one repeated")
        if _is_straight_run(digits):
            raise WeakPin(
                WeakPinReason.STRAIGHT_RUN, "avoid digits in a row up or down, like 1234 or 4321"
            )
        if digits in self.blocklist:
            raise WeakPin(WeakPinReason.COMMON, "this PIN is too easy to guess: choose another")


DEFAULT_PIN_POLICY: Final = PinPolicy()


def check_pin(pin: Pin | str, policy: PinPolicy = DEFAULT_PIN_POLICY) -> None:
    """Raise ``WeakPin`` unless the PIN is acceptable under ``policy``."""
    policy.check(pin)


def _is_straight_run(digits: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {9})  # +1 or -1 each time, 9 -> 0 and 0 -> 9 included


# -- hashing -------------------------------------------------------------------------------


MAX_SCRYPT_MEMORY: Final = 64 * 2**20  # room to raise n to 2**16 with r = 8


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost; the bounds keep a stored value from asking for absurd memory or time."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (2 <= self.n <= 2**20 and self.n & (self.n - 1) == 0):
            raise ValueError("scrypt n must be a power of two from 2 to 2**20")
        if not (1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError("scrypt r must be 1..32 and p 1..16")
        if 128 * self.n * self.r > MAX_SCRYPT_MEMORY:
            raise ValueError(f"scrypt n * r * 128 must not exceed {MAX_SCRYPT_MEMORY} bytes")


DEFAULT_SCRYPT: Final = ScryptParams()  # 16 MiB, about 50 ms
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
_B64 = r"[A-Za-z0-9+/]{1,128}={0,2}"
_STORED = re.compile(rf"scrypt\$([0-9]{{1,8}})\$([0-9]{{1,2}})\$([0-9]{{1,2}})\$({_B64})\$({_B64})")


def _scrypt(pin: str, salt: bytes, params: ScryptParams, length: int) -> bytes:
    kdf = Scrypt(salt=salt, length=length, n=params.n, r=params.r, p=params.p)
    return kdf.derive(pin.encode("utf-8"))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_pin(pin: Pin | str, params: ScryptParams = DEFAULT_SCRYPT) -> str:
    """The PIN as stored: ``scrypt$n$r$p$<salt b64>$<hash b64>`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(_digits_of(pin), salt, params, HASH_BYTES)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def _parse_stored(stored: object) -> tuple[ScryptParams, bytes, bytes] | None:
    match = _STORED.fullmatch(stored) if isinstance(stored, str) else None
    if match is None:
        return None
    n, r, p, salt_text, digest_text = match.groups()
    try:
        params = ScryptParams(int(n), int(r), int(p))
        salt = base64.b64decode(salt_text, validate=True)
        digest = base64.b64decode(digest_text, validate=True)
    except (ValueError, binascii.Error):
        return None
    if not (8 <= len(salt) <= 64 and 16 <= len(digest) <= 64):
        return None
    return params, salt, digest


def verify_pin(pin: Pin | str, stored: str) -> bool:
    """True when ``pin`` matches ``stored``; False for a wrong PIN or a malformed value."""
    parsed = _parse_stored(stored)
    if parsed is None:
        return False
    params, salt, digest = parsed
    candidate = _scrypt(_digits_of(pin), salt, params, len(digest))
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_SCRYPT) -> bool:
    """True when ``stored`` is malformed or was hashed with other parameters than ``params``."""
    parsed = _parse_stored(stored)
    return parsed is None or parsed[0] != params


# -- lock-out ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinAttempts:
    """Wrong PINs in a row and whether they locked the customer out.

    Transitions: open --wrong--> open (count + 1) or locked (count reaches the maximum);
    open --right--> open (count 0); locked --reset (DFSP)--> open (count 0). A wrong or
    right PIN while locked is refused with ``PinLocked``: the PIN is not even checked.
    """

    failures: int = 0
    locked: bool = False

    def __post_init__(self) -> None:
        if self.failures < 0:
            raise ValueError("failures must not be negative")

    def ensure_unlocked(self) -> None:
        """Raise ``PinLocked`` when locked; call it before checking a PIN."""
        if self.locked:
            raise PinLocked()

    def after_failure(self, max_failures: int = DEFAULT_MAX_FAILURES) -> PinAttempts:
        """The state after one more wrong PIN; the ``max_failures``-th locks."""
        _check_max(max_failures)
        self.ensure_unlocked()
        failures = self.failures + 1
        return PinAttempts(failures=failures, locked=failures >= max_failures)

    def after_success(self) -> PinAttempts:
        """The state after a right PIN: the count starts again."""
        self.ensure_unlocked()
        return PinAttempts()

    def reset(self) -> PinAttempts:
        """The DFSP's reset: unlocked, no failures."""
        return PinAttempts()

    def attempts_left(self, max_failures: int = DEFAULT_MAX_FAILURES) -> int:
        _check_max(max_failures)
        return 0 if self.locked else max(0, max_failures - self.failures)

    def refusal(self, max_failures: int = DEFAULT_MAX_FAILURES) -> WrongPin | PinLocked:
        """The error to raise once this state (after a failure) is stored."""
        return PinLocked() if self.locked else WrongPin(self.attempts_left(max_failures))


def _check_max(max_failures: int) -> None:
    if max_failures < 1:
        raise ValueError("max_failures must be at least 1")
