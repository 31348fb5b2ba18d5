"""OER primitives for interledger packets (sans-I/O: bytes in, values out).

Encodings follow the Interledger notes on OER (IL-RFC 30):

- fixed-size unsigned integers are big-endian in exactly 1, 2, 4 or 8 octets;
- a length prefix is one octet ``0..127`` (short form) or ``0x80 | n`` followed by ``n``
  big-endian octets holding a length of at least 128 (long form); the shortest form is
  the only canonical one, and ``0x80`` alone (indefinite length) is not allowed;
- a var-uint is a length prefix followed by the value's minimal big-endian octets
  (zero is the single octet ``00``); values are limited to unsigned 64 bits here;
- a var-octet-string is a length prefix followed by that many octets.

DER definite lengths use the same rules, so ``conditions`` reuses these helpers.
"""

from __future__ import annotations

from typing import Final

UINT64_MAX: Final = 2**64 - 1
# The longest length a long-form prefix may state: no interledger field is anywhere
# near this, and it keeps a hostile prefix from describing an absurd size.
MAX_LENGTH_OCTETS: Final = 4
_FIXED_WIDTHS: Final = (1, 2, 4, 8)


class IlpCodecError(ValueError):
    """Base of every error the interledger codecs raise for bad input."""


class OerError(IlpCodecError):
    """Bytes that are not canonical OER: truncated, overlong or non-minimal."""


def encode_uint(value: int, width: int) -> bytes:
    """A fixed-size unsigned integer of ``width`` octets."""
    if width not in _FIXED_WIDTHS:
        raise OerError(f"unsupported fixed uint width {width}")
    if not 0 <= value < 1 << (8 * width):
        raise OerError(f"{value} does not fit in an unsigned {8 * width}-bit integer")
    return value.to_bytes(width, "big")


def encode_length_prefix(length: int) -> bytes:
    """The canonical (shortest) length determinant for ``length``."""
    if length < 0:
        raise OerError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    octets = (length.bit_length() + 7) // 8
    if octets > MAX_LENGTH_OCTETS:
        raise OerError(f"length {length} needs more than {MAX_LENGTH_OCTETS} length octets")
    return bytes([0x80 | octets]) + length.to_bytes(octets, "big")


def encode_var_uint(value: int) -> bytes:
    """A length-prefixed unsigned integer in its minimal octets (u64 at most)."""
    if not 0 <= value <= UINT64_MAX:
        raise OerError(f"var-uint {value} is outside 0..2**64-1")
    octets = max(1, (value.bit_length() + 7) // 8)
    return encode_length_prefix(octets) + value.to_bytes(octets, "big")


def encode_var_octet_string(value: bytes) -> bytes:
    """A length prefix followed by the octets themselves."""
    return encode_length_prefix(len(value)) + bytes(value)


class Writer:
    """Accumulates OER fields in order; ``bytes(writer)`` is the encoding."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def __bytes__(self) -> bytes:
        return bytes(self._buffer)

    def write_octets(self, value: bytes) -> None:
        self._buffer += value

    def write_uint(self, value: int, width: int) -> None:
        self._buffer += encode_uint(value, width)

    def write_var_uint(self, value: int) -> None:
        self._buffer += encode_var_uint(value)

    def write_var_octet_string(self, value: bytes) -> None:
        self._buffer += encode_var_octet_string(value)


class Reader:
    """Reads OER fields from a byte string, refusing anything non-canonical."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._position = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._position

    def read_octets(self, count: int) -> bytes:
        if count < 0:
            raise OerError(f"negative read of {count} octets")
        if count > self.remaining:
            raise OerError(
                f"truncated: need {count} octets at offset {self._position}, {self.remaining} left"
            )
        start = self._position
        self._position += count
        return self._data[start : self._position]

    def read_uint(self, width: int) -> int:
        if width not in _FIXED_WIDTHS:
            raise OerError(f"unsupported fixed uint width {width}")
        return int.from_bytes(self.read_octets(width), "big")

    def read_length_prefix(self) -> int:
        first = self.read_uint(1)
        if first < 0x80:
            return first
        octets = first & 0x7F
        if octets == 0:
            raise OerError("indefinite length (0x80) is not allowed")
        if octets > MAX_LENGTH_OCTETS:
            raise OerError(f"length prefix of {octets} octets exceeds {MAX_LENGTH_OCTETS}")
        raw = self.read_octets(octets)
        if raw[0] == 0:
            raise OerError("non-canonical length prefix: leading zero octet")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise OerError(f"non-canonical length prefix: {length} must use the short form")
        return length

    def read_var_uint(self) -> int:
        octets = self.read_length_prefix()
        if octets == 0:
            raise OerError("var-uint with no value octets")
        if octets > 8:
            raise OerError(f"var-uint of {octets} octets exceeds 64 bits")
        raw = self.read_octets(octets)
        if octets > 1 and raw[0] == 0:
            raise OerError("non-canonical var-uint: leading zero octet")
        return int.from_bytes(raw, "big")

    def read_var_octet_string(self) -> bytes:
        return self.read_octets(self.read_length_prefix())

    def expect_end(self) -> None:
        """Refuse trailing octets after the last field."""
        if self.remaining:
            raise OerError(f"{self.remaining} unexpected trailing octets")
