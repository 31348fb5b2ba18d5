"""PREIMAGE-SHA-256 conditions and fulfillments.

ILPv4 carries them as 32 raw bytes: the fulfillment is a 32-byte preimage and the
condition is its SHA-256. The 2017 ledger used the crypto-conditions forms
(draft-thomas-crypto-conditions, type 0, PREIMAGE-SHA-256):

- fulfillment: DER ``A0 len (80 len preimage)``, shown base64url without padding; the
  empty preimage's fulfillment is ``oAKAAA``;
- condition binary: DER ``A0 len (80 20 fingerprint) (81 len cost)``, where the
  fingerprint is SHA-256(preimage) and the cost is the preimage length (a DER INTEGER);
- condition URI: ``ni:///sha-256;<base64url fingerprint>?fpt=preimage-sha-256&cost=N``.

Every parser is strict (canonical DER, canonical base64url, no trailing bytes), so
parsing and re-encoding reproduces the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

from clearing.ilp.oer import IlpCodecError, OerError, Reader, encode_length_prefix

FINGERPRINT_LENGTH: Final = 32
ILP_FULFILLMENT_LENGTH: Final = 32
MAX_PREIMAGE_LENGTH: Final = 32767
MAX_COST: Final = 2**32 - 1
TYPE_NAME: Final = "preimage-sha-256"
_TAG_PREIMAGE_TYPE: Final = 0xA0  # [0] constructed, context-specific
_TAG_FIRST_FIELD: Final = 0x80  # [0] primitive: preimage / fingerprint
_TAG_COST: Final = 0x81  # [1] primitive
_URI_PREFIX: Final = "ni:///sha-256;"
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")


class ConditionError(IlpCodecError):
    """A condition or fulfillment that is malformed or not PREIMAGE-SHA-256."""


def condition_for(fulfillment: bytes) -> bytes:
    """The ILPv4 execution condition for a 32-byte fulfillment: its SHA-256."""
    if len(fulfillment) != ILP_FULFILLMENT_LENGTH:
        raise ConditionError(f"an ILP fulfillment is 32 octets, got {len(fulfillment)}")
    return hashlib.sha256(fulfillment).digest()


def fulfills(fulfillment: bytes, condition: bytes) -> bool:
    """Whether ``fulfillment`` is a 32-byte preimage of the 32-byte ``condition``."""
    if len(fulfillment) != ILP_FULFILLMENT_LENGTH or len(condition) != FINGERPRINT_LENGTH:
        return False
    return hmac.compare_digest(hashlib.sha256(fulfillment).digest(), condition)


def base64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def base64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: no padding, no stray characters, canonical bits."""
    if not text.isascii() or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ConditionError(f"{text[:40]!r} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ConditionError(f"{text[:40]!r} is not base64url: {error}") from None
    if base64url_encode(data) != text:
        raise ConditionError(f"{text[:40]!r} is not canonical base64url")
    return data


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length_prefix(len(content)) + content


def _read_der(reader: Reader, tag: int) -> bytes:
    try:
        found = reader.read_uint(1)
        if found != tag:
            raise ConditionError(f"expected DER tag {tag:#04x}, found {found:#04x}")
        return reader.read_var_octet_string()
    except OerError as error:
        raise ConditionError(f"malformed DER: {error}") from None


def _expect_end(reader: Reader) -> None:
    if reader.remaining:
        raise ConditionError(f"{reader.remaining} unexpected trailing octets")


def _encode_cost(cost: int) -> bytes:
    return cost.to_bytes(cost.bit_length() // 8 + 1, "big")  # non-negative DER INTEGER


def _decode_cost(raw: bytes) -> int:
    if not raw:
        raise ConditionError("empty cost INTEGER")
    if raw[0] & 0x80:
        raise ConditionError("negative cost")
    if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
        raise ConditionError("non-minimal cost INTEGER")
    cost = int.from_bytes(raw, "big")
    if cost > MAX_COST:
        raise ConditionError(f"cost {cost} exceeds {MAX_COST}")
    return cost


@dataclass(frozen=True, slots=True)
class PreimageCondition:
    fingerprint: bytes
    cost: int

    def __post_init__(self) -> None:
        if len(self.fingerprint) != FINGERPRINT_LENGTH:
            raise ConditionError(f"fingerprint must be 32 octets, got {len(self.fingerprint)}")
        if not 0 <= self.cost <= MAX_COST:
            raise ConditionError(f"cost {self.cost} is outside 0..{MAX_COST}")

    def to_binary(self) -> bytes:
        fields = _der(_TAG_FIRST_FIELD, self.fingerprint) + _der(_TAG_COST, _encode_cost(self.cost))
        return _der(_TAG_PREIMAGE_TYPE, fields)

    def to_uri(self) -> str:
        return f"{_URI_PREFIX}{base64url_encode(self.fingerprint)}?fpt={TYPE_NAME}&cost={self.cost}"

    @classmethod
    def from_binary(cls, data: bytes) -> PreimageCondition:
        outer = Reader(data)
        fields = Reader(_read_der(outer, _TAG_PREIMAGE_TYPE))
        _expect_end(outer)
        fingerprint = _read_der(fields, _TAG_FIRST_FIELD)
        cost = _decode_cost(_read_der(fields, _TAG_COST))
        _expect_end(fields)
        return cls(fingerprint, cost)

    @classmethod
    def from_uri(cls, uri: str) -> PreimageCondition:
        if not uri.startswith(_URI_PREFIX) or uri.count("?") != 1:
            raise ConditionError(f"{uri[:60]!r} is not an ni:///sha-256 condition URI")
        encoded, query = uri[len(_URI_PREFIX) :].split("?")
        parameters: dict[str, str] = {}
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            if not equals or key in parameters:
                raise ConditionError(f"malformed or repeated URI parameter {pair!r}")
            parameters[key] = value
        if set(parameters) != {"fpt", "cost"}:
            raise ConditionError(f"URI parameters must be fpt and cost, got {sorted(parameters)}")
        if parameters["fpt"] != TYPE_NAME:
            raise ConditionError(f"unsupported condition type {parameters['fpt']!r}")
        if not _DECIMAL.fullmatch(parameters["cost"]) or len(parameters["cost"]) > 10:
            raise ConditionError(f"cost {parameters['cost']!r} is not a canonical decimal")
        return cls(base64url_decode(encoded), int(parameters["cost"]))


@dataclass(frozen=True, slots=True)
class PreimageFulfillment:
    preimage: bytes

    def __post_init__(self) -> None:
        if len(self.preimage) > MAX_PREIMAGE_LENGTH:
            raise ConditionError(f"preimage exceeds {MAX_PREIMAGE_LENGTH} octets")

    @property
    def condition(self) -> PreimageCondition:
        return PreimageCondition(hashlib.sha256(self.preimage).digest(), len(self.preimage))

    def validates(self, condition: PreimageCondition) -> bool:
        """Whether this fulfillment meets ``condition`` (fingerprint and cost)."""
        mine = self.condition
        return mine.cost == condition.cost and hmac.compare_digest(
            mine.fingerprint, condition.fingerprint
        )

    def to_binary(self) -> bytes:
        return _der(_TAG_PREIMAGE_TYPE, _der(_TAG_FIRST_FIELD, self.preimage))

    def to_base64url(self) -> str:
        return base64url_encode(self.to_binary())

    @classmethod
    def from_binary(cls, data: bytes) -> PreimageFulfillment:
        outer = Reader(data)
        fields = Reader(_read_der(outer, _TAG_PREIMAGE_TYPE))
        _expect_end(outer)
        preimage = _read_der(fields, _TAG_FIRST_FIELD)
        _expect_end(fields)
        return cls(preimage)

    @classmethod
    def from_base64url(cls, text: str) -> PreimageFulfillment:
        return cls.from_binary(base64url_decode(text))
