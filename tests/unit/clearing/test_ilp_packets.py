"""ILPv4 and 2017 ILPv1 packets against the published vectors, plus addresses and properties."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.ilp.addresses import IlpAddress, InvalidIlpAddress, dfsp_account_address
from clearing.ilp.conditions import condition_for
from clearing.ilp.oer import UINT64_MAX, IlpCodecError, encode_var_octet_string
from clearing.ilp.packets import (
    Fulfill,
    IlpPacketError,
    Packet,
    Prepare,
    Reject,
    decode_packet,
    encode_packet,
)
from clearing.ilp.v1 import (
    ErrorPacket,
    ForwardedPayment,
    Fulfillment,
    Payment,
    Rejection,
    V1Packet,
    decode_v1_packet,
    encode_v1_packet,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors"


def _vectors(folder: str) -> list[Any]:
    directory = VECTORS / folder
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    return [pytest.param(json.loads(path.read_text()), id=path.stem) for path in files]


V4_VECTORS = _vectors("ilp-v4")
V1_VECTORS = _vectors("ilp-v1")
needs_vectors = pytest.mark.skipif(
    not (V4_VECTORS and V1_VECTORS),
    reason=f"no ILP vectors at {VECTORS} (../shared is absent)",
)


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- ILPv4 vectors (interledgerjs/ilp-packet test/data) ------------------------------


def _expected_v4(kind: str, fields: dict[str, str]) -> Packet:
    if kind == "prepare":
        return Prepare(
            amount=int(fields["amount"]),
            expires_at=_iso(fields["expiresAt"]),
            execution_condition=_b64(fields["executionCondition"]),
            destination=IlpAddress(fields["destination"]),
            data=_b64(fields["data"]),
        )
    if kind == "fulfill":
        return Fulfill(fulfillment=_b64(fields["fulfillment"]), data=_b64(fields["data"]))
    return Reject(
        code=fields["code"],
        triggered_by=IlpAddress(fields["triggeredBy"]) if fields["triggeredBy"] else None,
        message=fields["message"],
        data=_b64(fields["data"]),
    )


@needs_vectors
@pytest.mark.parametrize("vector", V4_VECTORS)
def test_ilpv4_vector_decodes_to_its_fields_and_re_encodes_to_its_bytes(
    vector: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.id.split("_")[1].split("-")[0]
    binary = bytes.fromhex(vector["binary"])
    packet = decode_packet(binary)
    assert packet == _expected_v4(kind, vector["json"])
    assert encode_packet(packet) == binary


@needs_vectors
def test_ilpv4_vectors_check_encoding_only_their_fulfillment_is_not_the_condition() -> None:
    by_kind = {param.id: param.values[0] for param in V4_VECTORS}
    fulfillment = _b64(by_kind["ilp_fulfill-example01"]["json"]["fulfillment"])
    condition = _b64(by_kind["ilp_prepare-example01"]["json"]["executionCondition"])
    assert condition_for(fulfillment) != condition


# --- ILPv1 vectors (ilp-packet v2.2.0) ---------------------------------------------


def _expected_v1(kind: str, fields: dict[str, Any]) -> V1Packet:
    if kind == "payment":
        return Payment(int(fields["amount"]), fields["account"], _b64(fields["data"]))
    if kind == "forwarded_payment":
        return ForwardedPayment(fields["account"], _b64(fields["data"]))
    if kind == "fulfillment":
        return Fulfillment(_b64(fields["data"]))
    if kind == "rejection":
        return Rejection(
            fields["code"], fields["triggeredBy"], fields["message"], _b64(fields["data"])
        )
    return ErrorPacket(
        code=fields["code"],
        name=fields["name"],
        triggered_by=fields["triggeredBy"],
        forwarded_by=tuple(fields["forwardedBy"]),
        triggered_at=datetime.fromtimestamp(fields["triggeredAt"] / 1000, UTC),
        data=fields["data"].encode("utf-8"),  # the error's data is text in this vector
    )


@needs_vectors
@pytest.mark.parametrize("vector", V1_VECTORS)
def test_ilpv1_vector_decodes_to_its_fields_and_re_encodes_to_its_bytes(
    vector: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.id.removeprefix("ilp_").rsplit("-", 1)[0]
    binary = bytes.fromhex(vector["binary"])
    packet = decode_v1_packet(binary)
    assert packet == _expected_v1(kind, vector["json"])
    assert encode_v1_packet(packet) == binary


def test_a_deployed_2017_address_without_an_allocation_scheme_is_a_valid_v1_account() -> None:
    payment = Payment(1000, "levelone.dfsp1.PerfTest3.NuilFWTj3N8K6uM3EJk3nbdWb_MKBJpkQ", b"PSK")
    assert decode_v1_packet(encode_v1_packet(payment)) == payment


def test_v1_packets_with_extensions_or_quote_types_are_refused() -> None:
    with pytest.raises(IlpCodecError, match="extensions"):
        decode_v1_packet(bytes.fromhex("0902" + "0001"))
    with pytest.raises(IlpCodecError, match="type 2"):
        decode_v1_packet(bytes.fromhex("020100"))


# --- ILPv4 rules --------------------------------------------------------------------

CONDITION = bytes(range(32))
EXPIRY = datetime(2017, 12, 23, 1, 21, 40, 549000, tzinfo=UTC)
ALICE = IlpAddress("example.alice")


def test_amounts_beyond_u64_are_refused() -> None:
    Prepare(UINT64_MAX, EXPIRY, CONDITION, ALICE)
    with pytest.raises(IlpPacketError, match="amount"):
        Prepare(UINT64_MAX + 1, EXPIRY, CONDITION, ALICE)
    with pytest.raises(IlpPacketError, match="amount"):
        Prepare(-1, EXPIRY, CONDITION, ALICE)


def test_expiry_must_be_aware_and_whole_milliseconds_and_is_written_in_utc() -> None:
    with pytest.raises(IlpPacketError, match="timezone"):
        Prepare(1, EXPIRY.replace(tzinfo=None), CONDITION, ALICE)
    with pytest.raises(IlpPacketError, match="milliseconds"):
        Prepare(1, EXPIRY.replace(microsecond=1), CONDITION, ALICE)
    in_nairobi = EXPIRY.astimezone(timezone(timedelta(hours=3)))
    encoded = encode_packet(Prepare(1, in_nairobi, CONDITION, ALICE))
    assert b"20171223012140549" in encoded
    assert decode_packet(encoded) == Prepare(1, EXPIRY, CONDITION, ALICE)


@pytest.mark.parametrize(
    "stamp", [b"20171332012140549", b"2017122301214054Z", b"20170230000000000"]
)
def test_bad_expiry_dates_are_refused(stamp: bytes) -> None:
    encoded = bytearray(encode_packet(Prepare(1, EXPIRY, CONDITION, ALICE)))
    encoded[10:27] = stamp
    with pytest.raises(IlpPacketError, match="timestamp"):
        decode_packet(bytes(encoded))


def test_conditions_and_fulfillments_must_be_32_octets() -> None:
    with pytest.raises(IlpPacketError, match="execution_condition"):
        Prepare(1, EXPIRY, CONDITION[:31], ALICE)
    with pytest.raises(IlpPacketError, match="fulfillment"):
        Fulfill(bytes(33))


@pytest.mark.parametrize("code", ["F9", "X01", "f01", "F001"])
def test_reject_codes_are_three_characters_of_class_f_t_or_r(code: str) -> None:
    with pytest.raises(IlpPacketError, match="code"):
        Reject(code, None)


def test_a_reject_without_a_triggering_address_round_trips() -> None:
    reject = Reject("T04", None, "insufficient liquidity", b"")
    assert (
        encode_packet(reject)
        == bytes.fromhex("0e1c543034") + b"\x00\x16" + (b"insufficient liquidity") + b"\x00"
    )
    assert decode_packet(encode_packet(reject)) == reject


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("0f0100", "an unknown type"),
        ("0d20" + "00" * 32, "a fulfill without its data field"),
        ("0d21" + "00" * 33 + "00", "trailing bytes after the envelope"),
        ("0d22" + "00" * 33 + "00", "trailing bytes inside the envelope"),
        ("0d8121" + "00" * 33, "a non-canonical envelope length"),
    ],
)
def test_malformed_packets_are_refused(encoded: str, reason: str) -> None:
    with pytest.raises(IlpCodecError):
        decode_packet(bytes.fromhex(encoded))


def test_a_destination_outside_the_allocation_schemes_is_refused() -> None:
    fields = (
        (1).to_bytes(8, "big")
        + b"20171223012140549"
        + CONDITION
        + encode_var_octet_string(b"levelone.dfsp1.alice")
        + b"\x00"
    )
    with pytest.raises(InvalidIlpAddress):
        decode_packet(b"\x0c" + encode_var_octet_string(fields))


# --- addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "g.acme.bob",
        "private.l1p.ZZZ.dfsp1.849702568",
        "example.alice",
        "peer.config",
        "self.4",
        "test.a",
        "test3.x_y~z-1",
        "local.host",
        "g." + "a" * 1021,
    ],
)
def test_valid_addresses(address: str) -> None:
    assert IlpAddress(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "g",
        "g.",
        "g..bob",
        "levelone.dfsp1.alice",
        "test4.alice",
        "G.acme",
        "g.acme bob",
        "g.acme/bob",
        "g.ácme",
        "g." + "a" * 1022,
    ],
)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(InvalidIlpAddress):
        IlpAddress(address)


def test_dfsp_account_addresses_follow_the_scheme_layout() -> None:
    assert dfsp_account_address("dfsp1", "849702568") == "private.l1p.ZZZ.dfsp1.849702568"
    assert dfsp_account_address("dfsp1", "849702568.medical", country="KEN") == (
        "private.l1p.KEN.dfsp1.849702568.medical"
    )
    assert isinstance(dfsp_account_address("dfsp1", "1"), IlpAddress)
    for dfsp, account, country in [
        ("dfsp 1", "1", "ZZZ"),
        ("dfsp1", "", "ZZZ"),
        ("dfsp1", "1", "ke"),
        ("d" * 33, "1", "ZZZ"),
    ]:
        with pytest.raises(InvalidIlpAddress):
            dfsp_account_address(dfsp, account, country=country)


# --- properties ---------------------------------------------------------------------

SEGMENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~-",
    min_size=1,
    max_size=12,
)
ADDRESSES = st.builds(
    lambda scheme, segments: IlpAddress(".".join([scheme, *segments])),
    st.sampled_from(["g", "private", "example", "peer", "self", "test", "test2", "local"]),
    st.lists(SEGMENT, min_size=1, max_size=6),
)
MOMENTS = st.datetimes(timezones=st.just(UTC)).map(
    lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)
)
CODES = st.from_regex(r"\A[FTR][0-9A-Z]{2}\Z")
DATA = st.binary(max_size=300)
PACKETS = st.one_of(
    st.builds(
        Prepare,
        st.integers(min_value=0, max_value=UINT64_MAX),
        MOMENTS,
        st.binary(min_size=32, max_size=32),
        ADDRESSES,
        DATA,
    ),
    st.builds(Fulfill, st.binary(min_size=32, max_size=32), DATA),
    st.builds(Reject, CODES, st.none() | ADDRESSES, st.text(max_size=100), DATA),
)
V1_ACCOUNTS = st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=40)
V1_PACKETS = st.one_of(
    st.builds(Payment, st.integers(min_value=0, max_value=UINT64_MAX), V1_ACCOUNTS, DATA),
    st.builds(ForwardedPayment, V1_ACCOUNTS, DATA),
    st.builds(Fulfillment, DATA),
    st.builds(Rejection, CODES, V1_ACCOUNTS, st.text(max_size=100), DATA),
    st.builds(
        ErrorPacket,
        CODES,
        st.text(alphabet=st.characters(max_codepoint=127), max_size=30),
        V1_ACCOUNTS,
        st.lists(V1_ACCOUNTS, max_size=5).map(tuple),
        MOMENTS,
        DATA,
    ),
)


@given(PACKETS)
def test_ilpv4_packets_round_trip(packet: Packet) -> None:
    assert decode_packet(encode_packet(packet)) == packet


@given(V1_PACKETS)
def test_ilpv1_packets_round_trip(packet: V1Packet) -> None:
    assert decode_v1_packet(encode_v1_packet(packet)) == packet


ENVELOPES = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda kind, body: bytes([kind]) + encode_var_octet_string(body),
        st.sampled_from([1, 8, 9, 10, 11, 12, 13, 14]),
        st.binary(max_size=200),
    ),
)


@given(ENVELOPES)
def test_random_bytes_raise_only_codec_errors(data: bytes) -> None:
    for decode in (decode_packet, decode_v1_packet):
        with contextlib.suppress(IlpCodecError):
            decode(data)


@given(PACKETS, st.data())
def test_corrupted_packets_raise_only_codec_errors(packet: Packet, data: st.DataObject) -> None:
    encoded = bytearray(encode_packet(packet))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    with contextlib.suppress(IlpCodecError):
        decode_packet(bytes(encoded[:cut]))
