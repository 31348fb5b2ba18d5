"""Text coding for USSD and SMS over SMPP: GSM 03.38 (3GPP TS 23.038), Latin-1 and UCS-2.

Sans-I/O: plain ``str`` in, plain ``bytes`` out, so the screen engine and the SMPP codec
can be tested without a socket. The gateway encodes every screen it sends, so the tables
are built once at import and the hot paths run in C (``str.translate``, ``bytes.decode``).

Outgoing text is written in the first coding the carrier accepts that can represent it
(``ScreenLimits.codings``) and refused when it does not fit one screen. Incoming text is
decoded leniently: a USSD centre's odd data coding must never break a session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final


class DataCoding(IntEnum):
    """SMPP ``data_coding`` values the gateway writes (and the common ones it reads)."""

    SMSC_DEFAULT = 0x00  # treated as GSM 03.38 default alphabet, unpacked (one septet per octet)
    IA5 = 0x01  # IA5 / ASCII
    LATIN1 = 0x03
    UCS2 = 0x08
    USSD_GSM7 = 0x0F  # USSD data coding scheme: GSM 7-bit, language unspecified (TS 23.038)


_GSM7_CODINGS: Final = frozenset({DataCoding.SMSC_DEFAULT, DataCoding.USSD_GSM7})
_WRITABLE_CODINGS: Final = _GSM7_CODINGS | {DataCoding.LATIN1, DataCoding.UCS2}


@dataclass(frozen=True)
class ScreenLimits:
    """How much text one screen holds in each coding, and which codings the carrier takes.

    ``codings`` is in order of preference; text is written in the first one that can
    represent it. IA5 is never written: GSM 7-bit covers the same text at the same cost.
    """

    gsm7: int = 182  # septets (an extension-table character costs 2)
    latin1: int = 160  # octets
    ucs2: int = 80  # UTF-16 code units
    codings: tuple[DataCoding, ...] = (DataCoding.SMSC_DEFAULT, DataCoding.UCS2)

    def __post_init__(self) -> None:
        for key in ("gsm7", "latin1", "ucs2"):
            if getattr(self, key) <= 0:
                raise ValueError(f"ScreenLimits.{key} must be positive, got {getattr(self, key)}")
        try:
            codings = tuple(DataCoding(coding) for coding in self.codings)
        except ValueError as exc:
            raise ValueError(f"ScreenLimits.codings: {exc}") from None
        unwritable = [coding.name for coding in codings if coding not in _WRITABLE_CODINGS]
        if not codings or unwritable:
            raise ValueError(
                "ScreenLimits.codings must list one or more of SMSC_DEFAULT, USSD_GSM7, LATIN1,"
                f" UCS2; got {self.codings!r}"
            )
        object.__setattr__(self, "codings", codings)  # normalise ints and lists from config

    def limit_for(self, coding: DataCoding) -> int:
        """The screen size in ``coding``'s own unit (septets, octets or UTF-16 code units)."""
        if coding in _GSM7_CODINGS:
            return self.gsm7
        return self.ucs2 if coding is DataCoding.UCS2 else self.latin1


_DEFAULT_LIMITS: Final = ScreenLimits()


@dataclass(frozen=True)
class EncodedText:
    """Text ready for ``short_message``: the coding, the octets and the length counted."""

    data_coding: DataCoding
    payload: bytes
    length: int  # in the unit the limit is counted in (septets / octets / code units)


class TextCodingError(ValueError):
    """Base of the text coding errors, so a caller can map them to one screen."""


class UnencodableText(TextCodingError):
    """The text cannot be written in the requested coding (or any the carrier accepts)."""


class TextTooLong(TextCodingError):
    """The text needs more than one screen in the coding it has to be written in."""

    def __init__(self, length: int, limit: int, coding: DataCoding) -> None:
        super().__init__(length, limit, coding)  # args stay picklable
        self.length = length
        self.limit = limit
        self.coding = coding

    def __str__(self) -> str:
        return f"text needs {self.length} units in {self.coding.name}, a screen holds {self.limit}"


# --- GSM 03.38 tables (3GPP TS 23.038, 6.2.1 and 6.2.1.1) ------------------------------

_ESC: Final = 0x1B

# The default alphabet, indexed by septet. Position 0x1B is the escape to the extension
# table, not a character; the "\x1b" there is a placeholder that is never encoded.
_DEFAULT_ALPHABET: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10: Greek capitals (U+0394 ...), ESC at 0x1B
    " !\"#¤%&'()*+,-./"  # 0x20: currency sign ¤ (U+00A4) at 0x24, not $
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)

# The extension table: characters written as 0x1B followed by this septet.
_EXTENSION: Final[dict[int, str]] = {
    0x0A: "\f",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\u20ac",  # €
}

assert len(_DEFAULT_ALPHABET) == 0x80 and len(set(_DEFAULT_ALPHABET)) == 0x80

_NOT_GSM: Final = "\x80"  # any non-ASCII marker: translate() leaves it, isascii() catches it


def _build_encode_table() -> dict[int, str]:
    """Map every GSM character to its septet string; ASCII outside GSM to a marker.

    Characters beyond ASCII that are not GSM are not in the table, so ``translate``
    leaves them unchanged and the ``isascii`` check after it finds them.
    """
    table = {code: _NOT_GSM for code in range(0x80)}
    for septet, char in enumerate(_DEFAULT_ALPHABET):
        if septet != _ESC:
            table[ord(char)] = chr(septet)
    for septet, char in _EXTENSION.items():
        table[ord(char)] = chr(_ESC) + chr(septet)
    return table


def _build_escaped_table() -> str:
    """What ``ESC`` followed by each octet decodes to, per the fallbacks of 23.038 6.2.1.1.

    An undefined extension code shows the default alphabet's character at that position;
    ``ESC ESC`` (reserved for a further extension table) shows a space.
    """
    chars = []
    for code in range(0x100):
        if code in _EXTENSION:
            chars.append(_EXTENSION[code])
        elif code == _ESC:
            chars.append(" ")
        else:
            chars.append(_DEFAULT_ALPHABET[code] if code < 0x80 else "\ufffd")
    return "".join(chars)


_ENCODE_TABLE: Final = _build_encode_table()
# One septet per octet; octets with the high bit set are not septets at all.
_DECODE_TABLE: Final = _DEFAULT_ALPHABET + "\ufffd" * 0x80
_ESCAPED_TABLE: Final = _build_escaped_table()
_ESCAPE_SEQUENCE: Final = re.compile(rb"\x1b(.?)", re.DOTALL)


def _to_septet_chars(text: str) -> str | None:
    """The septets of ``text`` as a str of chr(septet), or None if it is not all GSM."""
    septets = text.translate(_ENCODE_TABLE)
    return septets if septets.isascii() else None


def gsm7_length(text: str) -> int | None:
    """Septets ``text`` needs (extension characters cost 2); None when it is not GSM."""
    septets = _to_septet_chars(text)
    return None if septets is None else len(septets)


def encode_gsm7(text: str) -> bytes:
    """Write ``text`` as unpacked septets, ``0x1B`` escaping extension-table characters."""
    septets = _to_septet_chars(text)
    if septets is None:
        bad = next(char for char in text if _to_septet_chars(char) is None)
        raise UnencodableText(f"{bad!r} (U+{ord(bad):04X}) is not in the GSM 03.38 alphabet")
    return septets.encode("ascii")


def decode_gsm7(data: bytes) -> str:
    """Read unpacked septets; never raises, as the fallbacks of 23.038 ask of a receiver.

    An undefined escape shows the default character, ``ESC ESC`` or a trailing ``ESC``
    shows a space, and an octet with the high bit set (not a septet) shows U+FFFD.
    """
    if _ESC not in data:
        return data.decode("latin-1").translate(_DECODE_TABLE)
    parts = _ESCAPE_SEQUENCE.split(data)  # runs of plain septets around each escaped one
    pieces = [parts[0].decode("latin-1").translate(_DECODE_TABLE)]
    for escaped, run in zip(parts[1::2], parts[2::2], strict=True):
        pieces.append(_ESCAPED_TABLE[escaped[0]] if escaped else " ")
        pieces.append(run.decode("latin-1").translate(_DECODE_TABLE))
    return "".join(pieces)


# --- Packing (23.038 6.1.2.1 and the USSD padding rule of 6.1.2.3.1) ---------------------


def pack_septets(septets: bytes) -> bytes:
    """Pack septets eight to seven octets, least significant bit first.

    USSD rule: when 7 bits would be left spare they are filled with ``<CR>`` rather than
    zeros (which read as ``@``), and a wanted final ``<CR>`` that ends on an octet
    boundary gets a second ``<CR>``, so the receiver's padding removal cannot eat it.
    """
    if not septets.isascii():
        raise ValueError("a septet is 7 bits (0x00-0x7F)")
    if len(septets) % 8 == 7 or (len(septets) % 8 == 0 and septets.endswith(b"\r")):
        septets += b"\r"
    packed = bytearray()
    for start in range(0, len(septets), 8):
        chunk = septets[start : start + 8]
        value = 0
        for index, septet in enumerate(chunk):
            value |= septet << (7 * index)
        packed += value.to_bytes(7, "little")[: (7 * len(chunk) + 7) // 8]
    return bytes(packed)


def unpack_septets(data: bytes, count: int | None = None) -> bytes:
    """Unpack octets into septets (one per octet).

    With ``count`` (known from elsewhere, as in SMS) return at most that many septets.
    Without it, every whole septet is returned, except that a final ``<CR>`` ending on
    an octet boundary is USSD padding and is removed (23.038 6.1.2.3.1).
    """
    if count is not None and count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    septets = bytearray()
    for start in range(0, len(data), 7):
        value = int.from_bytes(data[start : start + 7], "little")
        septets += bytes((value >> shift) & 0x7F for shift in range(0, 56, 7))
    available = len(data) * 8 // 7
    del septets[available if count is None else min(count, available) :]
    if count is None and len(data) % 7 == 0 and septets.endswith(b"\r"):
        del septets[-1]
    return bytes(septets)


# --- Choosing and enforcing a coding for outgoing screens --------------------------------


def _encode_latin1(text: str) -> bytes | None:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _encode_ucs2(text: str) -> bytes | None:
    """UTF-16 big-endian, as carriers read "UCS-2"; None for lone surrogates."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError:
        return None


def _encode_gsm7(text: str) -> bytes | None:
    septets = _to_septet_chars(text)
    return None if septets is None else septets.encode("ascii")


# USSD_GSM7 is written unpacked like SMSC_DEFAULT: SMPP centres take one septet per octet,
# and decode_text reads 0x0F without the high bit set as unpacked.
_ENCODERS: Final[dict[DataCoding, Callable[[str], bytes | None]]] = {
    DataCoding.SMSC_DEFAULT: _encode_gsm7,
    DataCoding.USSD_GSM7: _encode_gsm7,
    DataCoding.LATIN1: _encode_latin1,
    DataCoding.UCS2: _encode_ucs2,
}


def _encode_unchecked(text: str, limits: ScreenLimits) -> EncodedText:
    """Encode in the first accepted coding that can represent ``text``, at any length."""
    for coding in limits.codings:
        payload = _ENCODERS[coding](text)
        if payload is not None:
            unit = 2 if coding is DataCoding.UCS2 else 1
            return EncodedText(coding, payload, len(payload) // unit)
    accepted = ", ".join(coding.name for coding in limits.codings)
    raise UnencodableText(f"text cannot be written in any coding the carrier accepts ({accepted})")


def choose_coding(text: str, limits: ScreenLimits = _DEFAULT_LIMITS) -> DataCoding:
    """The first coding in ``limits.codings`` that can represent ``text``, whatever its length.

    With codings listed smallest first (the default) this is the smallest that fits:
    GSM 7-bit, then Latin-1, then UCS-2. Raises UnencodableText when none can.
    """
    return _encode_unchecked(text, limits).data_coding


def encode_text(text: str, limits: ScreenLimits = _DEFAULT_LIMITS) -> EncodedText:
    """Encode ``text`` for one screen; raises UnencodableText or TextTooLong."""
    encoded = _encode_unchecked(text, limits)
    limit = limits.limit_for(encoded.data_coding)
    if encoded.length > limit:
        raise TextTooLong(encoded.length, limit, encoded.data_coding)
    return encoded


def fits_screen(text: str, limits: ScreenLimits = _DEFAULT_LIMITS) -> bool:
    """Whether ``encode_text`` would succeed, for paging decisions without try/except."""
    try:
        encode_text(text, limits)
    except TextCodingError:
        return False
    return True


def screen_room(text: str, limits: ScreenLimits = _DEFAULT_LIMITS) -> int:
    """Units left on the screen in the coding ``text`` needs (negative when over).

    Raises UnencodableText when no accepted coding can represent ``text``.
    """
    encoded = _encode_unchecked(text, limits)
    return limits.limit_for(encoded.data_coding) - encoded.length


# --- Decoding what USSD centres send --------------------------------------------------------


def _decode_latin1(payload: bytes) -> str:
    return payload.decode("latin-1")


def _decode_ucs2(payload: bytes) -> str:
    """UTF-16 big-endian; an odd trailing octet is dropped, lone surrogates become U+FFFD."""
    return payload[: len(payload) & ~1].decode("utf-16-be", errors="replace")


def _gsm7_septets(payload: bytes) -> bytes:
    """USSD centres send GSM 7-bit packed or unpacked; only packed data has high bits set."""
    return payload if payload.isascii() else unpack_septets(payload)


def _decode_gsm7_any(payload: bytes) -> str:
    return decode_gsm7(_gsm7_septets(payload))


def _decode_gsm7_after_language(payload: bytes) -> str:
    """CBS/USSD DCS 0x10: two language letters and a <CR> come before the text."""
    return decode_gsm7(_gsm7_septets(payload)[3:])


def _decode_ucs2_after_language(payload: bytes) -> str:
    """CBS/USSD DCS 0x11: two GSM 7-bit language letters (two octets) precede the UCS-2."""
    return _decode_ucs2(payload[2:])


def _general_group_decoder(dcs: int) -> Callable[[bytes], str]:
    """23.038 groups 00xx/01xx: bits 3-2 give the alphabet; compressed text is not read."""
    compressed = dcs & 0x20
    alphabet = (dcs >> 2) & 0x03
    if compressed or alphabet == 0b11:
        return _decode_latin1
    return (_decode_gsm7_any, _decode_latin1, _decode_ucs2)[alphabet]


_SINGLE_VALUE_DECODERS: Final[dict[int, Callable[[bytes], str]]] = {
    0x00: decode_gsm7,
    0x08: _decode_ucs2,
    0x0F: _decode_gsm7_any,
    0x10: _decode_gsm7_after_language,
    0x11: _decode_ucs2_after_language,
}


def _decoder_for(dcs: int) -> Callable[[bytes], str]:
    """Pick the decoder for one ``data_coding`` value; Latin-1 for anything unknown.

    0x00-0x0F carry SMPP's meanings (plus 0x0F, the USSD GSM 7-bit scheme); above that,
    the data coding schemes of 23.038 that USSD centres pass through.
    """
    if dcs in _SINGLE_VALUE_DECODERS:
        return _SINGLE_VALUE_DECODERS[dcs]
    if 0x12 <= dcs <= 0x1F or 0x40 <= dcs <= 0x7F:
        return _general_group_decoder(dcs)
    if 0x20 <= dcs <= 0x2F:  # CBS/USSD language groups, all GSM 7-bit
        return _decode_gsm7_any
    if 0xF0 <= dcs <= 0xF7:  # data coding / message class: bit 2 says 8-bit data
        return _decode_latin1 if dcs & 0x04 else _decode_gsm7_any
    return _decode_latin1  # IA5 (ASCII is Latin-1's lower half), Latin-1, and the unknown


_DECODERS: Final = tuple(_decoder_for(dcs) for dcs in range(0x100))


def decode_text(data_coding: int, payload: bytes) -> str:
    """Decode a ``short_message`` or ``message_payload``; never raises on any input."""
    decoder = _DECODERS[data_coding] if 0 <= data_coding <= 0xFF else _decode_latin1
    return decoder(bytes(payload))
