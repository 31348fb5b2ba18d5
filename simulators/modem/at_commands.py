"""The AT modem's command interpreter, sans-I/O: bytes in, bytes out.

``AtSession`` is one connection's session: it edits and echoes the command line, runs
its commands (TS 27.007 for USSD, V.250 for the rest; the SMS commands are in
``at_sms``, the line syntax in ``at_syntax``) and formats the unsolicited ``+CUSD:``
and ``+CMTI:``/``+CMT:`` result codes. USSD commands call the handset's synchronous
actions (``dial_nowait``...); the screens come back later as events.

Behaviour a tool may notice, chosen as common modems do:
- Echo is on and errors are numbered (``AT+CMEE=1``) after a reset; ``AT+CMEE=0`` gives
  a bare ``ERROR``. Unknown commands and syntax errors are always a bare ``ERROR``.
- ``+CUSD`` result codes are presented after ``AT+CUSD=1`` (TS 27.007 default: off).
- Text is written in the character set of ``AT+CSCS``: "GSM" as GSM 03.38 octets (one
  septet per octet, as modems do), "IRA" as ASCII, "UCS2" as hex of UTF-16BE.
  Text that the GSM/IRA set cannot hold is written as UCS2 hex. In quoted strings
  ``"`` and ``\\`` are written as V.250 escapes ``\\22`` and ``\\5C``.
- The ``<dcs>`` of ``+CUSD:`` is how the screen came over the air: 72 (UCS2) when its
  PDU had data_coding 0x08, else 15 (GSM 7-bit); and 72 whenever the text had to be
  written as UCS2 hex because the GSM/IRA set cannot hold it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Protocol

from gateway.smpp.gsm0338 import DataCoding, UnencodableText, decode_gsm7, encode_gsm7
from simulators.modem.at_sms import SMS_COMMANDS, Inbox, new_message_indication
from simulators.modem.at_syntax import (
    BAD_TEXT,
    NOT_ALLOWED,
    SYNTAX,
    TOO_LONG,
    AtError,
    Command,
    Form,
    error_result,
    int_parameter,
    parse_command_line,
    require_form,
    string_parameter,
)
from simulators.modem.handsets import HandsetError, HandsetState, InvalidInput, Screen, mask

log = logging.getLogger(__name__)

MAX_LINE = 512  # characters of one command line, "AT" included
MAX_USSD_STRING = 182  # characters of one USSD string (TS 23.038: 160 octets of 7-bit)

CR, LF, BS = 0x0D, 0x0A, 0x08
DCS_GSM = 15  # USSD data coding: GSM 7-bit, language unspecified
DCS_UCS2 = 72  # UCS2, as modems report it


class Charset(Enum):
    GSM = "GSM"
    IRA = "IRA"
    UCS2 = "UCS2"


class CusdStatus(IntEnum):
    """``<m>`` of the unsolicited ``+CUSD:`` (TS 27.007 7.15)."""

    NO_FURTHER_ACTION = 0
    FURTHER_ACTION_REQUIRED = 1
    TERMINATED_BY_NETWORK = 2
    OTHER_CLIENT_RESPONDED = 3
    NOT_SUPPORTED = 4
    NETWORK_TIMEOUT = 5


_ENDED_STATUS = {
    None: CusdStatus.NO_FURTHER_ACTION,
    "released": CusdStatus.NO_FURTHER_ACTION,
    "aborted": CusdStatus.TERMINATED_BY_NETWORK,
    "timeout": CusdStatus.NETWORK_TIMEOUT,
    "network_error": CusdStatus.NOT_SUPPORTED,
}


def cusd_status(screen: Screen) -> CusdStatus:
    """What a screen means to the modem: answer it, or how the dialogue ended."""
    if screen.expects_reply:
        return CusdStatus.FURTHER_ACTION_REQUIRED
    return _ENDED_STATUS.get(screen.ended_reason, CusdStatus.TERMINATED_BY_NETWORK)


# --- what the session drives ------------------------------------------------------------


class UssdHandset(Protocol):
    """The handset's synchronous USSD actions (``Handset`` has them): screens come back
    later as events, so a command can answer ``OK`` before the network does."""

    @property
    def state(self) -> HandsetState: ...

    def dial_nowait(self, code: str) -> None: ...

    def reply_nowait(self, text: str) -> None: ...

    def cancel_nowait(self) -> None: ...


# --- the session -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModemIdentity:
    manufacturer: str = "ussdloop"
    model: str = "USSD modem simulator"
    revision: str = "1.0"


@dataclass
class ModemSettings:
    """What ``ATZ`` resets."""

    echo: bool = True
    cmee: int = 1
    charset: Charset = Charset.GSM
    cusd_presentation: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)


Handler = Callable[["AtSession", Command], list[bytes]]
HANDLERS: dict[str, Handler] = dict(SMS_COMMANDS)


def _command(*names: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = handler
        return handler

    return register


class AtSession:
    """One connection's command interpreter (sans-I/O).

    ``receive`` takes bytes from the line and returns the bytes to write back (echo,
    information text, result codes). USSD commands call the handset's synchronous
    actions; the screens come back later through ``ussd_screen``, and new messages
    through ``sms_arrived``, as unsolicited result codes.
    """

    def __init__(
        self,
        msisdn: str,
        inbox: Inbox,
        handset: UssdHandset,
        *,
        identity: ModemIdentity | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        self.msisdn = msisdn
        self.inbox = inbox
        self.handset = handset
        self.identity = identity or ModemIdentity()
        self.settings = ModemSettings()
        self._max_line = max_line
        self._line = bytearray()
        self._overflow = False

    # -- input ---------------------------------------------------------------------------

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for octet in data:
            if octet == LF or octet == 0:
                continue
            if self.settings.echo and (len(self._line) < self._max_line or octet in (CR, BS)):
                out.append(octet)
            if octet == CR:
                out += self._end_of_line()
            elif octet == BS:
                if self._line:
                    del self._line[-1]
            elif len(self._line) < self._max_line:
                self._line.append(octet)
            else:
                self._overflow = True
        return bytes(out)

    def _end_of_line(self) -> bytes:
        line, overflow = bytes(self._line).strip(b" "), self._overflow
        self._line.clear()
        self._overflow = False
        if overflow:
            return self._error(SYNTAX)
        if not line:
            return b""
        if line[:2].upper() != b"AT":
            return self._error(SYNTAX)
        return self.execute(line[2:])

    def execute(self, body: bytes) -> bytes:
        """Run the commands of one line (after ``AT``): information text, then the result."""
        info: list[bytes] = []
        try:
            for command in parse_command_line(body):
                handler = HANDLERS.get(command.name)
                if handler is None:
                    raise SYNTAX
                info.extend(handler(self, command))
        except AtError as error:
            return _info_block(info) + self._error(error)
        except Exception:  # a fault of ours must not take the line down
            log.exception("event=at_command_failed msisdn=%s", mask(self.msisdn))
            return _info_block(info) + self._error(SYNTAX)
        return _info_block(info) + b"\r\nOK\r\n"

    def _error(self, error: AtError) -> bytes:
        return error_result(error, self.settings.cmee)

    # -- unsolicited result codes ------------------------------------------------------------

    def ussd_screen(self, screen: Screen) -> bytes:
        """``+CUSD: <m>[,"<str>",<dcs>]`` for a screen, or nothing when not presented."""
        if not self.settings.cusd_presentation:
            return b""
        status = cusd_status(screen)
        if not screen.text and status is not CusdStatus.FURTHER_ACTION_REQUIRED:
            return b"\r\n+CUSD: %d\r\n" % status
        text, fell_back_to_ucs2 = self.to_te(screen.text)
        over_the_air_ucs2 = screen.data_coding == DataCoding.UCS2
        dcs = DCS_UCS2 if over_the_air_ucs2 or fell_back_to_ucs2 else DCS_GSM
        return b'\r\n+CUSD: %d,"%s",%d\r\n' % (status, text, dcs)

    def sms_arrived(self, index: int) -> bytes:
        """``+CMTI`` (or ``+CMT`` with the message) as ``AT+CNMI`` asked."""
        return new_message_indication(self, index)

    # -- character sets ---------------------------------------------------------------------

    def to_te(self, text: str, *, quoted: bool = True) -> tuple[bytes, bool]:
        """``text`` in the current character set (escaped for a quoted string), and
        whether it is UCS2 hex only because the GSM or IRA set cannot hold it."""
        charset = self.settings.charset
        plain: bytes | None = None
        if charset is Charset.IRA and text.isascii():
            plain = text.encode("ascii")
        elif charset is Charset.GSM:
            try:
                plain = encode_gsm7(text)
            except UnencodableText:
                plain = None
        if plain is None:
            hex_text = text.encode("utf-16-be").hex().upper().encode("ascii")
            return hex_text, charset is not Charset.UCS2
        if quoted:
            plain = plain.replace(b"\\", b"\\5C").replace(b'"', b"\\22")
        return plain, False

    def from_te(self, raw: bytes) -> str:
        """A string parameter in the current character set, as text."""
        charset = self.settings.charset
        if charset is Charset.UCS2:
            try:
                return bytes.fromhex(raw.decode("ascii")).decode("utf-16-be")
            except (ValueError, UnicodeDecodeError):
                raise BAD_TEXT from None
        if charset is Charset.IRA:
            if not raw.isascii():
                raise BAD_TEXT
            return raw.decode("ascii")
        return decode_gsm7(raw)


def _info_block(lines: Sequence[bytes]) -> bytes:
    return b"\r\n" + b"\r\n".join(lines) + b"\r\n" if lines else b""


# --- commands ----------------------------------------------------------------------------


@_command("E")
def _echo(session: AtSession, command: Command) -> list[bytes]:
    session.settings.echo = int_parameter(command.args, 0, (0, 1), 0) == 1
    return []


@_command("V", "Q")
def _verbose_quiet(session: AtSession, command: Command) -> list[bytes]:
    wanted = 1 if command.name == "V" else 0  # only verbose, non-quiet result codes
    default = 0 if command.name == "Q" else None
    int_parameter(command.args, 0, (wanted,), default)
    return []


@_command("Z", "&F")
def _reset(session: AtSession, command: Command) -> list[bytes]:
    int_parameter(command.args, 0, (0,), 0)
    session.settings = ModemSettings()
    return []


@_command("I")
def _identify(session: AtSession, command: Command) -> list[bytes]:
    int_parameter(command.args, 0, (0,), 0)
    ident = session.identity
    return [
        f"Manufacturer: {ident.manufacturer}".encode(),
        f"Model: {ident.model}".encode(),
        f"Revision: {ident.revision}".encode(),
        f"IMEI: {imei_for(session.msisdn)}".encode(),
    ]


@_command("+CGMI", "+GMI")
def _manufacturer(session: AtSession, command: Command) -> list[bytes]:
    require_form(command, Form.ACTION)
    return [session.identity.manufacturer.encode()]


@_command("+CGMM", "+GMM")
def _model(session: AtSession, command: Command) -> list[bytes]:
    require_form(command, Form.ACTION)
    return [session.identity.model.encode()]


@_command("+CGMR", "+GMR")
def _revision(session: AtSession, command: Command) -> list[bytes]:
    require_form(command, Form.ACTION)
    return [session.identity.revision.encode()]


@_command("+CGSN", "+GSN")
def _serial(session: AtSession, command: Command) -> list[bytes]:
    require_form(command, Form.ACTION)
    return [imei_for(session.msisdn).encode()]


@_command("+CNUM")
def _number(session: AtSession, command: Command) -> list[bytes]:
    require_form(command, Form.ACTION)
    return [b'+CNUM: "","%s",145' % session.msisdn.encode("ascii")]


@_command("+CMEE")
def _error_mode(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CMEE: %d" % session.settings.cmee]
    if command.form is Form.TEST:
        return [b"+CMEE: (0-2)"]
    require_form(command, Form.SET)
    session.settings.cmee = int_parameter(command.args, 0, (0, 1, 2), 0)
    return []


@_command("+CSCS")
def _charset(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b'+CSCS: "%s"' % session.settings.charset.value.encode()]
    if command.form is Form.TEST:
        return [b'+CSCS: ("GSM","IRA","UCS2")']
    require_form(command, Form.SET)
    name = string_parameter(command.args, 0)
    try:
        session.settings.charset = Charset(name.raw.decode("ascii").upper() if name else "")
    except (ValueError, UnicodeDecodeError):
        raise SYNTAX from None
    return []


@_command("+CUSD")
def _ussd(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CUSD: %d" % session.settings.cusd_presentation]
    if command.form is Form.TEST:
        return [b"+CUSD: (0-2)"]
    require_form(command, Form.SET)
    args = command.args
    if len(args) > 3:
        raise SYNTAX
    n = int_parameter(args, 0, (0, 1, 2), 0)
    raw = string_parameter(args, 1)
    if len(args) > 2:
        int_parameter(args, 2, range(256), 15)
    if n == 2:
        if raw is not None:
            raise SYNTAX
        if session.handset.state is not HandsetState.IDLE:
            _on_handset(session.handset.cancel_nowait)
        return []
    session.settings.cusd_presentation = n
    if raw is None:
        return []
    text = session.from_te(raw.raw)
    if len(text) > MAX_USSD_STRING:
        raise TOO_LONG
    if session.handset.state is HandsetState.IDLE:
        _on_handset(session.handset.dial_nowait, text)
    else:  # answers the open screen; refused while the network has not answered
        _on_handset(session.handset.reply_nowait, text)
    return []


def _on_handset(action: Callable[..., None], *args: str) -> None:
    try:
        action(*args)
    except InvalidInput:
        raise BAD_TEXT from None
    except HandsetError:
        raise NOT_ALLOWED from None


def imei_for(msisdn: str) -> str:
    """A stable, Luhn-valid IMEI for a handset (type allocation code 35 + its digits)."""
    body = ("35" + msisdn[-12:].rjust(12, "0"))[:14]
    total = 0
    for position, char in enumerate(body):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)
