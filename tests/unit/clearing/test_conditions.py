"""PREIMAGE-SHA-256: ILPv4 raw conditions and the 2017 crypto-conditions forms."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.ilp.conditions import (
    ConditionError,
    PreimageCondition,
    PreimageFulfillment,
    base64url_decode,
    condition_for,
    fulfills,
)
from clearing.ilp.oer import IlpCodecError

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "crypto-conditions"
CC_VECTORS: list[Any] = (
    [
        pytest.param(json.loads(path.read_text()), id=path.stem)
        for path in sorted(VECTORS.glob("*.json"))
    ]
    if VECTORS.is_dir()
    else []
)
needs_vectors = pytest.mark.skipif(
    not CC_VECTORS, reason=f"no crypto-conditions vectors at {VECTORS} (../shared is absent)"
)


# --- crypto-conditions vectors (rfcs/crypto-conditions test-vectors/valid) ----------


@needs_vectors
@pytest.mark.parametrize("vector", CC_VECTORS)
def test_fulfillment_binary_parses_to_the_preimage_and_re_encodes(vector: dict[str, Any]) -> None:
    assert vector["json"]["type"] == "preimage-sha-256"
    binary = bytes.fromhex(vector["fulfillment"])
    fulfillment = PreimageFulfillment.from_binary(binary)
    assert fulfillment.preimage == bytes.fromhex(vector["fingerprintContents"])
    assert fulfillment.to_binary() == binary


@needs_vectors
@pytest.mark.parametrize("vector", CC_VECTORS)
def test_fulfillment_derives_the_published_condition_binary_and_uri(
    vector: dict[str, Any],
) -> None:
    condition = PreimageFulfillment.from_binary(bytes.fromhex(vector["fulfillment"])).condition
    assert condition.cost == vector["cost"]
    assert condition.to_binary() == bytes.fromhex(vector["conditionBinary"])
    assert condition.to_uri() == vector["conditionUri"]


@needs_vectors
@pytest.mark.parametrize("vector", CC_VECTORS)
def test_condition_binary_and_uri_parse_to_the_same_condition(vector: dict[str, Any]) -> None:
    preimage = bytes.fromhex(vector["fingerprintContents"])
    from_binary = PreimageCondition.from_binary(bytes.fromhex(vector["conditionBinary"]))
    from_uri = PreimageCondition.from_uri(vector["conditionUri"])
    assert (
        from_binary
        == from_uri
        == PreimageCondition(hashlib.sha256(preimage).digest(), len(preimage))
    )
    assert PreimageFulfillment(preimage).validates(from_uri)


@needs_vectors
def test_the_empty_preimage_fulfillment_is_oakaaa() -> None:
    by_id = {param.id: param.values[0] for param in CC_VECTORS}
    binary = bytes.fromhex(by_id["0000_test-minimal-preimage"]["fulfillment"])
    assert PreimageFulfillment(b"").to_base64url() == "oAKAAA"
    assert PreimageFulfillment.from_base64url("oAKAAA").to_binary() == binary


# --- the 2017 ledger's example (REFERENCE section 4) --------------------------------

LEDGER_FULFILLMENT = "oCKAIIYvEbZPFojkJML-W6Xl60qEY-NWz10fHN4X5-Yv-s8k"
LEDGER_CONDITION = (
    "ni:///sha-256;sbawjV8idAMItrwviBMq4zMOkuo_lRLNMm1KPPVFM2A?fpt=preimage-sha-256&cost=32"
)


def test_the_ledger_example_fulfillment_meets_its_condition_uri() -> None:
    fulfillment = PreimageFulfillment.from_base64url(LEDGER_FULFILLMENT)
    assert len(fulfillment.preimage) == 32
    assert fulfillment.condition.to_uri() == LEDGER_CONDITION
    assert fulfillment.validates(PreimageCondition.from_uri(LEDGER_CONDITION))
    assert fulfills(fulfillment.preimage, PreimageCondition.from_uri(LEDGER_CONDITION).fingerprint)


# --- ILPv4 raw form -----------------------------------------------------------------


def test_the_condition_is_the_sha256_of_the_fulfillment() -> None:
    preimage = bytes(range(32))
    condition = condition_for(preimage)
    assert condition == hashlib.sha256(preimage).digest()
    assert fulfills(preimage, condition)
    assert not fulfills(bytes(32), condition)
    assert not fulfills(preimage[:31], condition)
    assert not fulfills(preimage, condition[:31])


def test_an_ilp_fulfillment_is_32_octets() -> None:
    with pytest.raises(ConditionError):
        condition_for(b"short")


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_only_the_preimage_fulfills_its_condition(preimage: bytes, other: bytes) -> None:
    assert fulfills(preimage, condition_for(preimage))
    assert fulfills(other, condition_for(preimage)) == (other == preimage)


# --- strictness ---------------------------------------------------------------------


def test_a_fulfillment_for_another_cost_does_not_validate() -> None:
    fulfillment = PreimageFulfillment(b"aaa")
    assert not fulfillment.validates(PreimageCondition(fulfillment.condition.fingerprint, 4))


@pytest.mark.parametrize(
    ("binary", "reason"),
    [
        ("A0038000", "a length longer than the content"),
        ("A002800000", "trailing bytes"),
        ("A1028000", "another condition type"),
        ("A081028000", "a non-canonical DER length"),
        ("", "nothing at all"),
    ],
)
def test_malformed_fulfillments_are_refused(binary: str, reason: str) -> None:
    with pytest.raises(ConditionError):
        PreimageFulfillment.from_binary(bytes.fromhex(binary))


def test_costs_use_minimal_der_integers() -> None:
    fingerprint = bytes(32)
    assert PreimageCondition(fingerprint, 128).to_binary().endswith(bytes.fromhex("8102 0080"))
    assert (
        PreimageCondition.from_binary(PreimageCondition(fingerprint, 128).to_binary()).cost == 128
    )
    prefix = bytes.fromhex("A026 8020") + fingerprint
    with pytest.raises(ConditionError, match="non-minimal"):
        PreimageCondition.from_binary(prefix + bytes.fromhex("81020005"))
    with pytest.raises(ConditionError, match="negative"):
        PreimageCondition.from_binary(bytes.fromhex("A025 8020") + fingerprint + b"\x81\x01\x80")


@pytest.mark.parametrize(
    "uri",
    [
        LEDGER_CONDITION.replace("cost=32", "cost=032"),
        LEDGER_CONDITION.replace("preimage-sha-256", "prefix-sha-256"),
        LEDGER_CONDITION.replace("sha-256;", "sha-512;"),
        LEDGER_CONDITION + "&cost=32",
        LEDGER_CONDITION + "&subtypes=x",
        LEDGER_CONDITION.replace("M2A?", "M2A=?"),
        LEDGER_CONDITION.replace("M2A?", "M2B?"),
        LEDGER_CONDITION.replace("sbaw", "sb+w"),
        LEDGER_CONDITION.replace("sbaw", "sba"),
        LEDGER_CONDITION.split("?")[0],
    ],
)
def test_non_canonical_or_foreign_condition_uris_are_refused(uri: str) -> None:
    with pytest.raises(ConditionError):
        PreimageCondition.from_uri(uri)


def test_uri_parameters_may_come_in_either_order() -> None:
    fingerprint_part, _ = LEDGER_CONDITION.split("?")
    swapped = f"{fingerprint_part}?cost=32&fpt=preimage-sha-256"
    assert PreimageCondition.from_uri(swapped) == PreimageCondition.from_uri(LEDGER_CONDITION)


def test_base64url_is_strict() -> None:
    assert base64url_decode("oAKAAA") == bytes.fromhex("A0028000")
    for text in ["oAKAAA==", "oAKAA", "oAK/AA", "oAKAAB"]:
        with pytest.raises(ConditionError):
            base64url_decode(text)


@given(st.binary(max_size=300))
def test_every_form_round_trips(preimage: bytes) -> None:
    fulfillment = PreimageFulfillment(preimage)
    assert PreimageFulfillment.from_binary(fulfillment.to_binary()) == fulfillment
    assert PreimageFulfillment.from_base64url(fulfillment.to_base64url()) == fulfillment
    condition = fulfillment.condition
    assert PreimageCondition.from_binary(condition.to_binary()) == condition
    assert PreimageCondition.from_uri(condition.to_uri()) == condition


@given(st.binary(max_size=80), st.text(max_size=80))
def test_random_input_raises_only_codec_errors(binary: bytes, text: str) -> None:
    for parse in (PreimageFulfillment.from_binary, PreimageCondition.from_binary):
        with contextlib.suppress(IlpCodecError):
            parse(binary)
    for parse_text in (PreimageFulfillment.from_base64url, PreimageCondition.from_uri):
        with contextlib.suppress(IlpCodecError):
            parse_text(text)
