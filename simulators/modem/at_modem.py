"""A GSM modem's AT command interface to a virtual handset, one TCP port per handset.

Modem tools (pyserial's ``socket://host:port``, minicom over a TCP bridge, gammu-style
scripts) talk to a handset the way they talk to a USB modem: 3GPP TS 27.007 for USSD
(``AT+CUSD`` and the unsolicited ``+CUSD:``), TS 27.005 text mode for SMS (``AT+CMGF=1``,
``+CMTI:``, ``AT+CMGL``/``CMGR``/``CMGD``), V.250 for the rest (command lines ended by
CR, echo, ``OK``/``ERROR``).

``AtSession`` is the sans-I/O command interpreter: bytes in, bytes out, USSD commands
calling the handset's synchronous actions (``dial_nowait``...). ``AtModemServer`` is the
thin Twisted edge: it listens, feeds each connection's session, and turns the handset's
events (every screen, solicited or not, and every SMS) into unsolicited result codes.

Behaviour a tool may notice, chosen as common modems do:
- Echo is on and errors are numbered (``AT+CMEE=1``) after a reset; ``AT+CMEE=0`` gives
  a bare ``ERROR``. Unknown commands and syntax errors are always a bare ``ERROR``.
- ``+CUSD`` result codes are presented after ``AT+CUSD=1`` (TS 27.007 default: off).
- Text is written in the character set of ``AT+CSCS``: "GSM" as GSM 03.38 octets (one
  septet per octet, as modems do), "IRA" as ASCII, "UCS2" as hex of UTF-16BE (dcs 72).
  Text that the GSM/IRA set cannot hold is written as UCS2 hex with dcs 72. In quoted
  strings ``"`` and ``\\`` are written as V.250 escapes ``\\22`` and ``\\5C``.
- Only SMS text mode exists (``AT+CMGF=0`` is ``+CMS ERROR: 303``); it is the default.
- Messages live in the modem's own storage ("ME", lowest free index first, shared by
  every connection to the handset's port); a full store drops new arrivals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from gateway.smpp.gsm0338 import UnencodableText, decode_gsm7, encode_gsm7
from simulators.modem.handsets import (
    Handset,
    HandsetError,
    HandsetEvent,
    HandsetState,
    InvalidInput,
    Screen,
    Sms,
    SmsEvent,
    UssdScreenEvent,
    mask,
)
from simulators.modem.network import MobileNetwork
from ussdloop.aio import wait_deferred

log = logging.getLogger(__name__)

MAX_LINE = 512  # characters of one command line, "AT" included
MAX_USSD_STRING = 182  # characters of one USSD string (TS 23.038: 160 octets of 7-bit)
INBOX_CAPACITY = 255  # messages in the modem's "ME" storage
MAX_CONNECTIONS_PER_MODEM = 8

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


class UssdHandset(TypingProtocol):
    """The handset's synchronous USSD actions (``Handset`` has them): screens come back
    later as events, so a command can answer ``OK`` before the network does."""

    @property
    def state(self) -> HandsetState: ...

    def dial_nowait(self, code: str) -> None: ...

    def reply_nowait(self, text: str) -> None: ...

    def cancel_nowait(self) -> None: ...


# --- errors --------------------------------------------------------------------------------


class AtError(Exception):
    """A command that fails; ``kind`` is "" (bare ERROR), "CME" or "CMS"."""

    def __init__(self, kind: str = "", code: int = 0) -> None:
        super().__init__(f"+{kind} ERROR: {code}" if kind else "ERROR")
        self.kind = kind
        self.code = code


_ERROR_TEXT = {
    ("CME", 3): "operation not allowed",
    ("CME", 4): "operation not supported",
    ("CME", 24): "text string too long",
    ("CME", 25): "invalid characters in text string",
    ("CMS", 302): "operation not allowed",
    ("CMS", 303): "operation not supported",
    ("CMS", 321): "invalid memory index",
}
SYNTAX = AtError()
NOT_ALLOWED = AtError("CME", 3)
TOO_LONG = AtError("CME", 24)
BAD_TEXT = AtError("CME", 25)
PDU_MODE = AtError("CMS", 303)
BAD_INDEX = AtError("CMS", 321)


# --- the modem's message storage ----------------------------------------------------------


@dataclass
class StoredSms:
    sms: Sms
    read: bool = False

    @property
    def stat(self) -> str:
        return "REC READ" if self.read else "REC UNREAD"


class Inbox:
    """Indexed message storage, lowest free index first (as SIM and ME storage are)."""

    def __init__(self, capacity: int = INBOX_CAPACITY) -> None:
        assert capacity >= 1
        self.capacity = capacity
        self._slots: dict[int, StoredSms] = {}

    def add(self, sms: Sms) -> int | None:
        """Store ``sms``; its index, or None when the storage is full."""
        free = next((i for i in range(1, self.capacity + 1) if i not in self._slots), None)
        if free is not None:
            self._slots[free] = StoredSms(sms)
        return free

    def get(self, index: int) -> StoredSms | None:
        return self._slots.get(index)

    def delete(self, index: int) -> bool:
        return self._slots.pop(index, None) is not None

    def delete_read(self) -> None:
        for index in [i for i, stored in self._slots.items() if stored.read]:
            del self._slots[index]

    def delete_all(self) -> None:
        self._slots.clear()

    def listing(self, stat: str) -> list[tuple[int, StoredSms]]:
        return [
            (index, self._slots[index])
            for index in sorted(self._slots)
            if stat == "ALL" or self._slots[index].stat == stat
        ]

    def __len__(self) -> int:
        return len(self._slots)


# --- parsing a command line (V.250 5.2-5.4) ------------------------------------------------


class Form(Enum):
    ACTION = "action"  # AT+CGMI, ATE0
    READ = "read"  # AT+CSCS?
    TEST = "test"  # AT+CUSD=?
    SET = "set"  # AT+CUSD=1,"*123#",15


@dataclass(frozen=True)
class Quoted:
    """A string constant's octets, with ``\\HH`` escapes resolved."""

    raw: bytes


Arg = str | Quoted | None  # None: an omitted parameter


@dataclass(frozen=True)
class Command:
    name: str  # "E", "I", "&F", "+CUSD" (upper case)
    form: Form
    args: tuple[Arg, ...] = ()


_BASIC = frozenset("EIZVQ")


def parse_command_line(body: bytes) -> list[Command]:
    """The commands after the ``AT`` prefix; raises ``AtError`` on a syntax error."""
    commands: list[Command] = []
    pos, end = 0, len(body)
    while pos < end:
        char = chr(body[pos]).upper()
        if char in " ;":
            pos += 1
        elif char == "+":
            stop = pos + 1
            while stop < end and (chr(body[stop]).isalnum() or body[stop] in b"_"):
                stop += 1
            name = body[pos:stop].decode("ascii").upper()
            if len(name) < 2:
                raise SYNTAX
            form, args, pos = _parse_extended_rest(body, stop)
            commands.append(Command(name, form, args))
        elif char in _BASIC or (char == "&" and pos + 1 < end):
            name = char if char != "&" else "&" + chr(body[pos + 1]).upper()
            pos += len(name)
            stop = pos
            while stop < end and body[stop : stop + 1].isdigit():
                stop += 1
            value = body[pos:stop].decode("ascii")
            pos = stop
            commands.append(Command(name, Form.ACTION, (value,) if value else ()))
        else:
            raise SYNTAX
    return commands


def _parse_extended_rest(body: bytes, pos: int) -> tuple[Form, tuple[Arg, ...], int]:
    end = len(body)
    if body[pos : pos + 2] == b"=?":
        return Form.TEST, (), _after_command(body, pos + 2)
    if body[pos : pos + 1] == b"?":
        return Form.READ, (), _after_command(body, pos + 1)
    if body[pos : pos + 1] != b"=":
        return Form.ACTION, (), _after_command(body, pos)
    pos += 1
    args: list[Arg] = []
    while True:
        while pos < end and body[pos] == 0x20:
            pos += 1
        if pos < end and body[pos] == 0x22:
            raw, pos = _parse_quoted(body, pos + 1)
            args.append(Quoted(raw))
        else:
            stop = pos
            while stop < end and body[stop] not in b",;":
                stop += 1
            token = body[pos:stop].decode("latin-1").strip()
            args.append(token or None)
            pos = stop
        while pos < end and body[pos] == 0x20:
            pos += 1
        if pos < end and body[pos] == 0x2C:
            pos += 1
            continue
        return Form.SET, tuple(args), _after_command(body, pos)


def _parse_quoted(body: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    end = len(body)
    while pos < end:
        octet = body[pos]
        if octet == 0x22:
            return bytes(out), pos + 1
        if octet == 0x5C:
            try:
                out.append(int(body[pos + 1 : pos + 3].decode("ascii"), 16))
            except ValueError:
                raise SYNTAX from None
            pos += 3
            continue
        out.append(octet)
        pos += 1
    raise SYNTAX  # no closing quote


def _after_command(body: bytes, pos: int) -> int:
    """Past the ``;`` that ends an extended command (or at the end of the line)."""
    while pos < len(body) and body[pos] == 0x20:
        pos += 1
    if pos == len(body):
        return pos
    if body[pos] != 0x3B:
        raise SYNTAX
    return pos + 1


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
HANDLERS: dict[str, Handler] = {}


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
        if not error.kind or self.settings.cmee == 0:
            return b"\r\nERROR\r\n"
        detail = str(error.code)
        if self.settings.cmee == 2:
            detail = _ERROR_TEXT.get((error.kind, error.code), detail)
        return f"\r\n+{error.kind} ERROR: {detail}\r\n".encode("ascii")

    # -- unsolicited result codes ------------------------------------------------------------

    def ussd_screen(self, screen: Screen) -> bytes:
        """``+CUSD: <m>[,"<str>",<dcs>]`` for a screen, or nothing when not presented."""
        if not self.settings.cusd_presentation:
            return b""
        status = cusd_status(screen)
        if not screen.text and status is not CusdStatus.FURTHER_ACTION_REQUIRED:
            return b"\r\n+CUSD: %d\r\n" % status
        text, dcs = self.to_te(screen.text)
        return b'\r\n+CUSD: %d,"%s",%d\r\n' % (status, text, dcs)

    def sms_arrived(self, index: int) -> bytes:
        """``+CMTI`` (or ``+CMT`` with the message) as ``AT+CNMI`` asked."""
        mode, mt = self.settings.cnmi[:2]
        stored = self.inbox.get(index)
        if mode == 0 or mt == 0 or stored is None:
            return b""
        if mt == 1:
            return b'\r\n+CMTI: "ME",%d\r\n' % index
        stored.read = True
        return b"\r\n+CMT: %s\r\n%s\r\n" % (
            self._sms_header(stored, with_stat=False),
            self._body(stored),
        )

    # -- character sets ---------------------------------------------------------------------

    def to_te(self, text: str, *, quoted: bool = True) -> tuple[bytes, int]:
        """``text`` in the current character set and its dcs (escaped for a quoted string)."""
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
            return text.encode("utf-16-be").hex().upper().encode("ascii"), DCS_UCS2
        if quoted:
            plain = plain.replace(b"\\", b"\\5C").replace(b'"', b"\\22")
        return plain, DCS_GSM

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

    # -- SMS formatting ----------------------------------------------------------------------

    def _sms_header(self, stored: StoredSms, *, with_stat: bool) -> bytes:
        sender, _ = self.to_te(stored.sms.sender)
        stamp = time.strftime("%y/%m/%d,%H:%M:%S", time.gmtime(stored.sms.received_at))
        stat = b'"%s",' % stored.stat.encode("ascii") if with_stat else b""
        return b'%s"%s",,"%s+00"' % (stat, sender, stamp.encode("ascii"))

    def _body(self, stored: StoredSms) -> bytes:
        return self.to_te(stored.sms.text, quoted=False)[0]


def _info_block(lines: Sequence[bytes]) -> bytes:
    return b"\r\n" + b"\r\n".join(lines) + b"\r\n" if lines else b""


# --- parameter helpers ----------------------------------------------------------------------


def _int(args: tuple[Arg, ...], index: int, allowed: Iterable[int], default: int | None) -> int:
    value = args[index] if index < len(args) else None
    if value is None:
        if default is None:
            raise SYNTAX
        return default
    if isinstance(value, Quoted) or not value.isdigit() or int(value) not in allowed:
        raise SYNTAX
    return int(value)


def _quoted(args: tuple[Arg, ...], index: int) -> Quoted | None:
    value = args[index] if index < len(args) else None
    if value is not None and not isinstance(value, Quoted):
        raise SYNTAX
    return value


def _only(command: Command, *forms: Form) -> None:
    if command.form not in forms:
        raise SYNTAX


# --- commands ----------------------------------------------------------------------------


@_command("E")
def _echo(session: AtSession, command: Command) -> list[bytes]:
    session.settings.echo = _int(command.args, 0, (0, 1), 0) == 1
    return []


@_command("V", "Q")
def _verbose_quiet(session: AtSession, command: Command) -> list[bytes]:
    wanted = 1 if command.name == "V" else 0  # only verbose, non-quiet result codes
    default = 0 if command.name == "Q" else None
    _int(command.args, 0, (wanted,), default)
    return []


@_command("Z", "&F")
def _reset(session: AtSession, command: Command) -> list[bytes]:
    _int(command.args, 0, (0,), 0)
    session.settings = ModemSettings()
    return []


@_command("I")
def _identify(session: AtSession, command: Command) -> list[bytes]:
    _int(command.args, 0, (0,), 0)
    ident = session.identity
    return [
        f"Manufacturer: {ident.manufacturer}".encode(),
        f"Model: {ident.model}".encode(),
        f"Revision: {ident.revision}".encode(),
        f"IMEI: {imei_for(session.msisdn)}".encode(),
    ]


@_command("+CGMI", "+GMI")
def _manufacturer(session: AtSession, command: Command) -> list[bytes]:
    _only(command, Form.ACTION)
    return [session.identity.manufacturer.encode()]


@_command("+CGMM", "+GMM")
def _model(session: AtSession, command: Command) -> list[bytes]:
    _only(command, Form.ACTION)
    return [session.identity.model.encode()]


@_command("+CGMR", "+GMR")
def _revision(session: AtSession, command: Command) -> list[bytes]:
    _only(command, Form.ACTION)
    return [session.identity.revision.encode()]


@_command("+CGSN", "+GSN")
def _serial(session: AtSession, command: Command) -> list[bytes]:
    _only(command, Form.ACTION)
    return [imei_for(session.msisdn).encode()]


@_command("+CNUM")
def _number(session: AtSession, command: Command) -> list[bytes]:
    _only(command, Form.ACTION)
    return [b'+CNUM: "","%s",145' % session.msisdn.encode("ascii")]


@_command("+CMEE")
def _error_mode(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CMEE: %d" % session.settings.cmee]
    if command.form is Form.TEST:
        return [b"+CMEE: (0-2)"]
    _only(command, Form.SET)
    session.settings.cmee = _int(command.args, 0, (0, 1, 2), 0)
    return []


@_command("+CSCS")
def _charset(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b'+CSCS: "%s"' % session.settings.charset.value.encode()]
    if command.form is Form.TEST:
        return [b'+CSCS: ("GSM","IRA","UCS2")']
    _only(command, Form.SET)
    name = _quoted(command.args, 0)
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
    _only(command, Form.SET)
    args = command.args
    if len(args) > 3:
        raise SYNTAX
    n = _int(args, 0, (0, 1, 2), 0)
    raw = _quoted(args, 1)
    if len(args) > 2:
        _int(args, 2, range(256), 15)
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


@_command("+CMGF")
def _message_format(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CMGF: 1"]
    if command.form is Form.TEST:
        return [b"+CMGF: (1)"]
    _only(command, Form.SET)
    if _int(command.args, 0, (0, 1), 0) == 0:
        raise PDU_MODE
    return []


@_command("+CNMI")
def _new_message_indication(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CNMI: %d,%d,%d,%d,%d" % session.settings.cnmi]
    if command.form is Form.TEST:
        return [b"+CNMI: (0-2),(0-2),(0),(0),(0,1)"]
    _only(command, Form.SET)
    if len(command.args) > 5:
        raise SYNTAX
    current = session.settings.cnmi
    allowed = ((0, 1, 2), (0, 1, 2), (0,), (0,), (0, 1))
    values = tuple(_int(command.args, i, allowed[i], current[i]) for i in range(5))
    session.settings.cnmi = values  # type: ignore[assignment]
    return []


_STATS = ("REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL")


@_command("+CMGL")
def _list_messages(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.TEST:
        return [b"+CMGL: (" + b",".join(b'"%s"' % s.encode() for s in _STATS) + b")"]
    _only(command, Form.ACTION, Form.SET)
    if len(command.args) > 1:
        raise SYNTAX
    wanted = _quoted(command.args, 0)
    stat = wanted.raw.decode("latin-1").upper() if wanted else "REC UNREAD"
    if stat not in _STATS:
        raise SYNTAX
    lines: list[bytes] = []
    for index, stored in session.inbox.listing(stat):
        lines.append(b"+CMGL: %d,%s" % (index, session._sms_header(stored, with_stat=True)))
        lines.append(session._body(stored))
        stored.read = True
    return lines


@_command("+CMGR")
def _read_message(session: AtSession, command: Command) -> list[bytes]:
    if command.form is Form.TEST:
        return []
    _only(command, Form.SET)
    index = _int(command.args, 0, range(1, session.inbox.capacity + 1), None)
    stored = session.inbox.get(index)
    if stored is None or len(command.args) > 1:
        raise BAD_INDEX
    line = b"+CMGR: %s" % session._sms_header(stored, with_stat=True)
    stored.read = True
    return [line, session._body(stored)]


@_command("+CMGD")
def _delete_message(session: AtSession, command: Command) -> list[bytes]:
    inbox = session.inbox
    if command.form is Form.TEST:
        used = ",".join(str(i) for i, _ in inbox.listing("ALL"))
        return [f"+CMGD: ({used}),(0-4)".encode()]
    _only(command, Form.SET)
    if len(command.args) > 2:
        raise SYNTAX
    flag = _int(command.args, 1, range(5), 0)
    if flag == 0:
        if not inbox.delete(_int(command.args, 0, range(1, inbox.capacity + 1), None)):
            raise BAD_INDEX
    elif flag == 4:
        inbox.delete_all()
    else:  # 1-3: read messages (and sent or unsent ones, of which a handset has none here)
        inbox.delete_read()
    return []


def imei_for(msisdn: str) -> str:
    """A stable, Luhn-valid IMEI for a handset (type allocation code 35 + its digits)."""
    body = ("35" + msisdn[-12:].rjust(12, "0"))[:14]
    total = 0
    for position, char in enumerate(body):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


# --- the Twisted edge ----------------------------------------------------------------------


class _ModemProtocol(Protocol):
    """One TCP connection to a handset's modem: bytes to the session and back.

    An unsolicited result code raised while a command line runs (a screen shown at once
    for an unknown code) is written after that line's result code, as a modem does.
    """

    def __init__(self, modem: _HandsetModem) -> None:
        self._modem = modem
        self.session = modem.new_session()
        self._open = False
        self._held: list[bytes] | None = None
        self._transport: Any = None  # Twisted's zope interfaces do not type-check here
        self._closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self._transport = self.transport
        if not self._modem.attach(self):
            self._transport.loseConnection()
            return
        self._open = True

    def dataReceived(self, data: bytes) -> None:
        self._held = []
        try:
            answer = self.session.receive(data)
        finally:
            held, self._held = self._held, None
        self.write(answer + b"".join(held))

    def unsolicited(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            self.write(data)

    def write(self, data: bytes) -> None:
        if data and self._open:
            self._transport.write(data)

    def close(self) -> Deferred[None]:
        """Hang up; fires once the connection is closed."""
        if self._open:
            self._transport.loseConnection()
        return self._closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._open = False
        self._modem.detach(self)
        if not self._closed.called:
            self._closed.callback(None)


@dataclass
class _HandsetModem:
    """One handset's modem: its message storage and the connections to it."""

    handset: Handset
    inbox: Inbox
    identity: ModemIdentity
    connections: set[_ModemProtocol] = field(default_factory=set)
    unsubscribe: Callable[[], None] | None = None

    def new_session(self) -> AtSession:
        return AtSession(self.handset.msisdn, self.inbox, self.handset, identity=self.identity)

    def attach(self, connection: _ModemProtocol) -> bool:
        if len(self.connections) >= MAX_CONNECTIONS_PER_MODEM:
            log.warning("event=at_modem_connection_refused msisdn=%s", mask(self.handset.msisdn))
            return False
        self.connections.add(connection)
        return True

    def detach(self, connection: _ModemProtocol) -> None:
        self.connections.discard(connection)

    def on_event(self, event: HandsetEvent) -> None:
        """Screens and messages reach every connection as unsolicited result codes."""
        if isinstance(event, UssdScreenEvent):
            for connection in list(self.connections):
                connection.unsolicited(connection.session.ussd_screen(event.screen))
        elif isinstance(event, SmsEvent):
            index = self.inbox.add(event.sms)
            if index is None:
                log.warning("event=at_modem_storage_full msisdn=%s", mask(self.handset.msisdn))
                return
            for connection in list(self.connections):
                connection.unsolicited(connection.session.sms_arrived(index))


class _ModemFactory(Factory):
    def __init__(self, modem: _HandsetModem) -> None:
        self._modem = modem

    def buildProtocol(self, addr: Any) -> _ModemProtocol:
        return _ModemProtocol(self._modem)


class AtModemServer:
    """AT modems for ``msisdns``: handset ``i`` listens on ``base_port + i``.

    With ``base_port`` 0 every modem takes a free port; ``ports`` maps MSISDN to port.
    """

    def __init__(
        self,
        network: MobileNetwork,
        host: str = "127.0.0.1",
        base_port: int = 7000,
        msisdns: Sequence[str] = (),
        *,
        reactor: Any = None,
        identity: ModemIdentity | None = None,
        inbox_capacity: int = INBOX_CAPACITY,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if len(set(msisdns)) != len(msisdns):
            raise ValueError("AtModemServer: each MSISDN may have one modem")
        self._network = network
        self._host = host
        self._base_port = base_port
        self._msisdns = tuple(msisdns)
        self._reactor = reactor
        self._identity = identity or ModemIdentity()
        self._inbox_capacity = inbox_capacity
        self._modems: dict[str, _HandsetModem] = {}
        self._listening: list[Any] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        try:
            for offset, msisdn in enumerate(self._msisdns):
                self._start_modem(offset, msisdn)
        except Exception:
            await self.stop()
            raise

    def _start_modem(self, offset: int, msisdn: str) -> None:
        handset = self._network.handset(msisdn)
        modem = _HandsetModem(handset, Inbox(self._inbox_capacity), self._identity)
        for sms in handset.sms:
            modem.inbox.add(sms)
        modem.unsubscribe = handset.subscribe(modem.on_event)
        self._modems[msisdn] = modem
        port_number = self._base_port + offset if self._base_port else 0
        port = self._reactor.listenTCP(port_number, _ModemFactory(modem), interface=self._host)
        self._listening.append(port)
        self.ports[msisdn] = port.getHost().port
        log.info("event=at_modem_listening msisdn=%s port=%d", mask(msisdn), self.ports[msisdn])

    async def stop(self) -> None:
        listening, self._listening = self._listening, []
        for port in listening:
            await wait_deferred(maybeDeferred(port.stopListening))
        closing: list[Deferred[None]] = []
        for modem in self._modems.values():
            if modem.unsubscribe is not None:
                modem.unsubscribe()
            closing.extend(connection.close() for connection in list(modem.connections))
        if closing:
            await wait_deferred(DeferredList(closing, consumeErrors=True))
        self._modems.clear()
        self.ports.clear()
