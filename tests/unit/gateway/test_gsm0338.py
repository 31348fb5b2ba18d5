"""GSM 03.38 / 3GPP TS 23.038 text coding: the tables, packing, coding choice and limits."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.gsm0338 import (
    DataCoding,
    EncodedText,
    ScreenLimits,
    TextCodingError,
    TextTooLong,
    UnencodableText,
    choose_coding,
    decode_gsm7,
    decode_text,
    encode_gsm7,
    encode_text,
    fits_screen,
    gsm7_length,
    pack_septets,
    screen_room,
    unpack_septets,
)

# The default alphabet of TS 23.038 6.2.1 as Unicode code points, written out
# independently of the module's table (row = high nibble). None marks 0x1B, the escape.
SPEC_DEFAULT_ALPHABET: list[int | None] = [
    *(0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5),
    0xE5,
    *(0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, None, 0xC6),
    *(0xE6, 0xDF, 0xC9),
    *(0x20, 0x21, 0x22, 0x23, 0xA4, *range(0x25, 0x30)),
    *range(0x30, 0x40),
    *(0xA1, *range(0x41, 0x50)),
    *(*range(0x50, 0x5B), 0xC4, 0xD6, 0xD1, 0xDC, 0xA7),
    *(0xBF, *range(0x61, 0x70)),
    *(*range(0x70, 0x7B), 0xE4, 0xF6, 0xF1, 0xFC, 0xE0),
]
# TS 23.038 6.2.1.1: the characters reached through 0x1B.
SPEC_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\N{EURO SIGN}",
}
GSM_DEFAULT_CHARS = [chr(cp) for cp in SPEC_DEFAULT_ALPHABET if cp is not None]
GSM_CHARS = GSM_DEFAULT_CHARS + list(SPEC_EXTENSION.values())

gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS))
septet_strings = st.lists(st.integers(0, 0x7F)).map(bytes)
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]))
# Arbitrary text, with enough GSM-only and Latin-1-only cases to reach every coding.
screen_text = st.one_of(gsm_text, st.text(alphabet=st.characters(max_codepoint=0xFF)), any_text)


def septets_needed(text: str) -> int:
    return sum(2 if char in SPEC_EXTENSION.values() else 1 for char in text)


def utf16_units(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


# --- the tables -------------------------------------------------------------------------


def test_the_spec_table_written_here_has_128_positions() -> None:
    assert len(SPEC_DEFAULT_ALPHABET) == 128


@pytest.mark.parametrize(
    ("septet", "char"),
    [
        (0x00, "@"),
        (0x01, "£"),
        (0x02, "$"),
        (0x09, "Ç"),
        (0x0A, "\n"),
        (0x0D, "\r"),
        (0x10, "Δ"),
        (0x11, "_"),
        (0x1F, "É"),
        (0x24, "¤"),
        (0x40, "¡"),
        (0x5F, "§"),
        (0x60, "¿"),
        (0x7F, "à"),
    ],
)
def test_default_alphabet_positions_match_23038(septet: int, char: str) -> None:
    assert encode_gsm7(char) == bytes([septet])
    assert decode_gsm7(bytes([septet])) == char


def test_every_default_alphabet_position_matches_23038() -> None:
    for septet, code_point in enumerate(SPEC_DEFAULT_ALPHABET):
        if code_point is not None:
            assert decode_gsm7(bytes([septet])) == chr(code_point), hex(septet)
            assert encode_gsm7(chr(code_point)) == bytes([septet]), hex(septet)


@pytest.mark.parametrize(("code", "char"), sorted(SPEC_EXTENSION.items()))
def test_extension_characters_are_escape_plus_their_code(code: int, char: str) -> None:
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == char
    assert gsm7_length(char) == 2


def test_euro_sign_is_escape_0x65() -> None:
    assert encode_gsm7("€") == b"\x1b\x65"


def test_all_137_characters_round_trip_in_one_message() -> None:
    text = "".join(GSM_CHARS)  # 128 positions less the escape, plus the 10 extension ones
    assert len(set(text)) == 137
    assert decode_gsm7(encode_gsm7(text)) == text
    assert gsm7_length(text) == 128 - 1 + 2 * 10


@pytest.mark.parametrize("char", ["ç", "`", "\t", "\x1b", "\x00", "Ж", "😀", "\u00a0"])
def test_characters_outside_gsm_are_refused(char: str) -> None:
    assert gsm7_length("ok" + char) is None
    with pytest.raises(UnencodableText, match=f"U\\+{ord(char):04X}"):
        encode_gsm7("ok" + char)


def test_an_undefined_escape_shows_the_default_character() -> None:
    assert decode_gsm7(b"\x1b\x41\x1b\x0d") == "A\r"


def test_a_double_escape_shows_a_space_and_decoding_goes_on() -> None:
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"
    assert decode_gsm7(b"a\x1b\x1b\x1b\x65") == "a €"


def test_a_trailing_escape_shows_a_space() -> None:
    assert decode_gsm7(b"ab\x1b") == "ab "


def test_an_octet_with_the_high_bit_set_is_not_a_septet() -> None:
    assert decode_gsm7(b"a\x80\xff") == "a\ufffd\ufffd"
    assert decode_gsm7(b"\x1b\xe5") == "\ufffd"


@given(gsm_text)
def test_gsm_text_round_trips_through_septets(text: str) -> None:
    assert decode_gsm7(encode_gsm7(text)) == text
    assert gsm7_length(text) == len(encode_gsm7(text)) == septets_needed(text)


@given(st.binary())
def test_decoding_septets_never_raises(data: bytes) -> None:
    assert isinstance(decode_gsm7(data), str)


# --- packing -------------------------------------------------------------------------


def test_hellohello_packs_as_in_23038() -> None:
    assert pack_septets(encode_gsm7("hellohello")).hex() == "e8329bfd4697d9ec37"
    assert decode_gsm7(unpack_septets(bytes.fromhex("e8329bfd4697d9ec37"))) == "hellohello"


def test_a_ussd_service_code_packs_as_handsets_send_it() -> None:
    assert pack_septets(encode_gsm7("*100#")).hex() == "aa180c3602"


def test_seven_septets_are_padded_with_cr_not_zeros() -> None:
    packed = pack_septets(b"1234567")
    assert len(packed) == 7
    assert packed[-1] >> 1 == 0x0D
    assert unpack_septets(packed) == b"1234567"


def test_eight_septets_fill_seven_octets_without_padding() -> None:
    packed = pack_septets(b"12345678")
    assert len(packed) == 7
    assert unpack_septets(packed) == b"12345678"


def test_a_wanted_cr_in_seventh_place_survives_padding_removal() -> None:
    assert unpack_septets(pack_septets(b"123456\r")) == b"123456\r"


def test_a_wanted_cr_ending_on_an_octet_boundary_gets_a_second_cr() -> None:
    packed = pack_septets(b"1234567\r")
    assert len(packed) == 8
    assert unpack_septets(packed) == b"1234567\r\r"


def test_unpacking_with_a_known_count_keeps_the_padding_cr() -> None:
    assert unpack_septets(pack_septets(b"1234567"), count=8) == b"1234567\r"
    assert unpack_septets(pack_septets(b"1234567"), count=3) == b"123"


def test_a_count_beyond_the_data_returns_only_the_septets_there() -> None:
    assert unpack_septets(pack_septets(b"ab"), count=5) == b"ab"


def test_zero_padding_bits_are_not_read_as_septets() -> None:
    assert unpack_septets(pack_septets(b"ab")) == b"ab"
    assert unpack_septets(b"") == b""


def test_packing_refuses_octets_that_are_not_septets() -> None:
    with pytest.raises(ValueError, match="septet"):
        pack_septets(b"\x80")


def test_unpacking_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="count"):
        unpack_septets(b"\x00", count=-1)


@given(septet_strings)
def test_unpack_inverts_pack_up_to_the_double_cr_rule(septets: bytes) -> None:
    double_cr = len(septets) % 8 == 0 and septets.endswith(b"\r")
    assert unpack_septets(pack_septets(septets)) == septets + (b"\r" if double_cr else b"")
    assert unpack_septets(pack_septets(septets), len(septets)) == septets


# --- choosing the coding --------------------------------------------------------------

LATIN1_FIRST = ScreenLimits(codings=(DataCoding.SMSC_DEFAULT, DataCoding.LATIN1, DataCoding.UCS2))


def test_balance_text_is_sent_in_gsm() -> None:
    assert choose_coding("Balance: 975 USD") is DataCoding.SMSC_DEFAULT


def test_cyrillic_is_sent_in_ucs2() -> None:
    assert choose_coding("Алиса") is DataCoding.UCS2


def test_lowercase_c_cedilla_is_not_gsm_so_french_goes_ucs2() -> None:
    assert choose_coding("Ça") is DataCoding.SMSC_DEFAULT
    assert choose_coding("ça") is DataCoding.UCS2


def test_latin1_is_chosen_before_ucs2_when_the_carrier_allows_it() -> None:
    assert choose_coding("ça", LATIN1_FIRST) is DataCoding.LATIN1
    assert choose_coding("Алиса", LATIN1_FIRST) is DataCoding.UCS2


def test_codings_are_tried_in_the_carriers_order_of_preference() -> None:
    ucs2_first = ScreenLimits(codings=(DataCoding.UCS2, DataCoding.SMSC_DEFAULT))
    assert choose_coding("hello", ucs2_first) is DataCoding.UCS2


def test_the_ussd_scheme_is_written_as_unpacked_septets() -> None:
    ussd = ScreenLimits(codings=(DataCoding.USSD_GSM7, DataCoding.UCS2))
    encoded = encode_text("1. Send €", ussd)
    assert encoded == EncodedText(DataCoding.USSD_GSM7, b"1. Send \x1b\x65", 10)
    assert decode_text(encoded.data_coding, encoded.payload) == "1. Send €"


def test_coding_choice_ignores_length() -> None:
    assert choose_coding("a" * 1000) is DataCoding.SMSC_DEFAULT


def test_text_no_accepted_coding_can_write_is_refused() -> None:
    gsm_only = ScreenLimits(codings=(DataCoding.SMSC_DEFAULT,))
    with pytest.raises(UnencodableText):
        choose_coding("Алиса", gsm_only)
    with pytest.raises(UnencodableText):
        encode_text("lone \ud800 surrogate")
    assert not fits_screen("Алиса", gsm_only)


def test_ia5_is_not_a_coding_to_write() -> None:
    with pytest.raises(ValueError, match=r"ScreenLimits\.codings"):
        ScreenLimits(codings=(DataCoding.IA5,))


@pytest.mark.parametrize("key", ["gsm7", "latin1", "ucs2"])
def test_a_screen_limit_must_be_positive(key: str) -> None:
    with pytest.raises(ValueError, match=rf"ScreenLimits\.{key}"):
        ScreenLimits(**{key: 0})  # type: ignore[arg-type]


def test_codings_from_configuration_are_normalised() -> None:
    limits = ScreenLimits(codings=[0, 8])  # type: ignore[arg-type]
    assert limits.codings == (DataCoding.SMSC_DEFAULT, DataCoding.UCS2)
    assert all(isinstance(coding, DataCoding) for coding in limits.codings)
    with pytest.raises(ValueError, match=r"ScreenLimits\.codings"):
        ScreenLimits(codings=(0x42,))  # type: ignore[arg-type]


# --- one screen's limit --------------------------------------------------------------------


def test_182_septets_fit_and_183_do_not() -> None:
    assert encode_text("a" * 182).length == 182
    with pytest.raises(TextTooLong) as raised:
        encode_text("a" * 183)
    assert (raised.value.length, raised.value.limit) == (183, 182)
    assert raised.value.coding is DataCoding.SMSC_DEFAULT


def test_an_extension_character_costs_two_septets() -> None:
    assert fits_screen("€" * 91)
    assert not fits_screen("a" * 181 + "€")


def test_80_ucs2_units_fit_and_81_do_not() -> None:
    assert encode_text("Ж" * 80).length == 80
    assert not fits_screen("Ж" * 81)


def test_a_character_outside_the_bmp_costs_two_ucs2_units() -> None:
    assert encode_text("😀" * 40).length == 80
    with pytest.raises(TextTooLong) as raised:
        encode_text("😀" * 40 + "Ж")
    assert (raised.value.length, raised.value.coding) == (81, DataCoding.UCS2)


def test_latin1_is_limited_in_octets() -> None:
    assert fits_screen("ç" * 160, LATIN1_FIRST)
    assert not fits_screen("ç" * 161, LATIN1_FIRST)


def test_screen_room_counts_in_the_coding_the_text_needs() -> None:
    assert screen_room("") == 182
    assert screen_room("€") == 180
    assert screen_room("a" * 183) == -1
    assert screen_room("Алиса") == 75
    assert screen_room("😀") == 78
    with pytest.raises(UnencodableText):
        screen_room("\udc00")


def test_too_long_names_length_limit_and_coding_and_survives_pickling() -> None:
    error = TextTooLong(183, 182, DataCoding.SMSC_DEFAULT)
    assert str(error) == "text needs 183 units in SMSC_DEFAULT, a screen holds 182"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.length, copy.limit, copy.coding) == (183, 182, DataCoding.SMSC_DEFAULT)
    assert isinstance(error, TextCodingError)
    assert isinstance(error, ValueError)


@given(st.lists(st.sampled_from(GSM_CHARS), min_size=170, max_size=200).map("".join))
def test_gsm_text_is_too_long_exactly_when_over_182_septets(text: str) -> None:
    needed = septets_needed(text)
    assert fits_screen(text) == (needed <= 182)
    assert screen_room(text) == 182 - needed
    if needed > 182:
        with pytest.raises(TextTooLong):
            encode_text(text)
    else:
        assert encode_text(text).length == needed


@given(st.lists(st.characters(min_codepoint=0x400, exclude_categories=["Cs"]), min_size=35))
def test_ucs2_text_is_too_long_exactly_when_over_80_units(chars: list[str]) -> None:
    text = "".join(chars[:90])
    needed = utf16_units(text)
    assert fits_screen(text) == (needed <= 80)
    if needed > 80:
        with pytest.raises(TextTooLong):
            encode_text(text)
    else:
        assert encode_text(text).length == needed


@given(limits=st.sampled_from([ScreenLimits(), LATIN1_FIRST]), text=screen_text)
def test_any_text_that_fits_round_trips_in_the_smallest_allowed_coding(
    limits: ScreenLimits, text: str
) -> None:
    if not fits_screen(text, limits):
        return
    encoded = encode_text(text, limits)
    assert decode_text(encoded.data_coding, encoded.payload) == text
    if gsm7_length(text) is not None:
        assert encoded.data_coding is DataCoding.SMSC_DEFAULT
    elif DataCoding.LATIN1 in limits.codings and max(text) <= "\xff":
        assert encoded.data_coding is DataCoding.LATIN1
    else:
        assert encoded.data_coding is DataCoding.UCS2


# --- decoding what USSD centres send --------------------------------------------------------


def test_smsc_default_is_read_as_unpacked_gsm() -> None:
    assert decode_text(0x00, b"\x00\x02\x11\x1b\x65") == "@$_€"


def test_ia5_and_latin1_are_read_as_such() -> None:
    assert decode_text(0x01, b"Menu") == "Menu"
    assert decode_text(0x03, "ça coûte".encode("latin-1")) == "ça coûte"


def test_ucs2_is_big_endian_utf16() -> None:
    assert decode_text(0x08, "Алиса 😀".encode("utf-16-be")) == "Алиса 😀"


def test_ucs2_ignores_an_odd_trailing_octet() -> None:
    assert decode_text(0x08, b"\x00A\x00") == "A"


def test_ucs2_replaces_lone_surrogates() -> None:
    assert decode_text(0x08, b"\xd8\x00\x00A") == "\ufffdA"
    assert decode_text(0x08, b"\x00A\xdc\x00") == "A\ufffd"


def test_ussd_scheme_0x0f_is_read_unpacked_when_no_high_bit_is_set() -> None:
    assert decode_text(0x0F, b"*100#") == "*100#"


def test_ussd_scheme_0x0f_is_read_packed_when_a_high_bit_is_set() -> None:
    assert decode_text(0x0F, bytes.fromhex("aa180c3602")) == "*100#"
    assert decode_text(0x0F, pack_septets(encode_gsm7("Balance: 975 €"))) == "Balance: 975 €"


def test_ussd_scheme_0x0f_drops_the_cr_padding() -> None:
    assert decode_text(0x0F, pack_septets(b"1234567")) == "1234567"


def test_gsm_with_language_prefix_skips_the_language_and_cr() -> None:
    assert decode_text(0x10, b"en\rHello") == "Hello"
    assert decode_text(0x10, pack_septets(b"en\rHello world")) == "Hello world"


def test_ucs2_with_language_prefix_skips_the_two_packed_language_letters() -> None:
    payload = pack_septets(b"ru") + "Привет".encode("utf-16-be")
    assert decode_text(0x11, payload) == "Привет"


@pytest.mark.parametrize(
    ("data_coding", "payload", "text"),
    [
        (0xF0, b"Hi \x1b\x65", "Hi €"),
        (0xF3, bytes.fromhex("aa180c3602"), "*100#"),
        (0xF4, b"caf\xe9", "café"),
        (0xF7, b"\x00\x01", "\x00\x01"),
        (0x48, "Жук".encode("utf-16-be"), "Жук"),
        (0x18, "Жук".encode("utf-16-be"), "Жук"),
        (0x44, b"caf\xe9", "café"),
        (0x40, b"Hi", "Hi"),
        (0x20, bytes.fromhex("aa180c3602"), "*100#"),
    ],
)
def test_23038_coding_groups_are_read_by_their_alphabet_bits(
    data_coding: int, payload: bytes, text: str
) -> None:
    assert decode_text(data_coding, payload) == text


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0x05, 0x0E, 0x30, 0x68, 0x4C, 0xC0, 0xFF])
def test_unknown_codings_are_read_as_latin1(data_coding: int) -> None:
    assert decode_text(data_coding, b"caf\xe9") == "café"


def test_a_data_coding_outside_one_octet_is_read_as_latin1() -> None:
    assert decode_text(-1, b"caf\xe9") == "café"
    assert decode_text(0x100, b"caf\xe9") == "café"


@given(st.integers(0, 255), st.binary(max_size=400))
def test_decoding_never_raises(data_coding: int, payload: bytes) -> None:
    assert isinstance(decode_text(data_coding, payload), str)
