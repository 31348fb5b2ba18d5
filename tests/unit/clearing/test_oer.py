"""OER primitives: canonical var-uints, length prefixes and typed errors on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.ilp.oer import (
    UINT64_MAX,
    OerError,
    Reader,
    Writer,
    encode_length_prefix,
    encode_uint,
    encode_var_octet_string,
    encode_var_uint,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "0100"),
        (127, "017f"),
        (128, "0180"),
        (255, "01ff"),
        (256, "020100"),
        (65535, "02ffff"),
        (65536, "03010000"),
        (UINT64_MAX, "08ffffffffffffffff"),
    ],
)
def test_var_uint_boundaries_encode_and_decode(value: int, encoded: str) -> None:
    assert encode_var_uint(value).hex() == encoded
    reader = Reader(bytes.fromhex(encoded))
    assert reader.read_var_uint() == value
    reader.expect_end()


@pytest.mark.parametrize("value", [-1, UINT64_MAX + 1])
def test_var_uint_outside_u64_is_refused(value: int) -> None:
    with pytest.raises(OerError):
        encode_var_uint(value)


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8180"),
        (255, "81ff"),
        (256, "820100"),
        (65535, "82ffff"),
        (65536, "83010000"),
    ],
)
def test_length_prefix_uses_the_short_form_below_128_and_the_long_form_above(
    length: int, encoded: str
) -> None:
    assert encode_length_prefix(length).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).read_length_prefix() == length


def test_long_form_var_octet_string_round_trips() -> None:
    payload = bytes(range(256)) * 2
    encoded = encode_var_octet_string(payload)
    assert encoded[:3] == bytes.fromhex("820200")
    reader = Reader(encoded)
    assert reader.read_var_octet_string() == payload
    reader.expect_end()


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("8105", "a length below 128 in the long form"),
        ("820080", "a long-form length with a leading zero octet"),
        ("80", "the indefinite length"),
        ("85ffffffffff", "a length of more than four octets"),
    ],
)
def test_non_canonical_length_prefixes_are_refused(encoded: str, reason: str) -> None:
    with pytest.raises(OerError):
        Reader(bytes.fromhex(encoded)).read_length_prefix()


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("020001", "a leading zero value octet"),
        ("00", "no value octets"),
        ("09010000000000000000", "more than 64 bits"),
        ("0201", "a truncated value"),
        ("", "nothing at all"),
    ],
)
def test_bad_var_uints_are_refused(encoded: str, reason: str) -> None:
    with pytest.raises(OerError):
        Reader(bytes.fromhex(encoded)).read_var_uint()


def test_truncated_fixed_fields_and_strings_are_refused() -> None:
    with pytest.raises(OerError, match="truncated"):
        Reader(b"\x00\x00\x00").read_uint(4)
    with pytest.raises(OerError, match="truncated"):
        Reader(b"\x05abc").read_var_octet_string()


def test_trailing_octets_are_refused() -> None:
    reader = Reader(b"\x01\x02")
    reader.read_uint(1)
    with pytest.raises(OerError, match="trailing"):
        reader.expect_end()


def test_fixed_uints_are_big_endian_and_bounded() -> None:
    assert encode_uint(107, 8).hex() == "000000000000006b"
    assert Reader(bytes.fromhex("0102")).read_uint(2) == 0x0102
    with pytest.raises(OerError):
        encode_uint(256, 1)
    with pytest.raises(OerError):
        encode_uint(1, 3)


@given(st.lists(st.integers(min_value=0, max_value=UINT64_MAX)), st.binary(max_size=600))
def test_written_fields_read_back_in_order(values: list[int], payload: bytes) -> None:
    writer = Writer()
    for value in values:
        writer.write_var_uint(value)
    writer.write_var_octet_string(payload)
    reader = Reader(bytes(writer))
    assert [reader.read_var_uint() for _ in values] == values
    assert reader.read_var_octet_string() == payload
    reader.expect_end()


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_oer_errors(data: bytes) -> None:
    reader = Reader(data)
    try:
        while reader.remaining:
            reader.read_var_uint()
            reader.read_var_octet_string()
    except OerError:
        pass
