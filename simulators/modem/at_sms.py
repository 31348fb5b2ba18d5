"""TS 27.005 text-mode SMS on the AT modem: the message storage and its commands.

- Only SMS text mode exists (``AT+CMGF=0`` is ``+CMS ERROR: 303``); it is the default.
- Messages live in the modem's own storage ("ME", lowest free index first, shared by
  every connection to the handset's port); a full store drops new arrivals.
- ``AT+CNMI`` chooses how a new message is announced: ``+CMTI`` with its index, or
  ``+CMT`` with the message itself.

The commands work on any ``SmsTerminal`` (``at_commands.AtSession`` is one), and are
collected in ``SMS_COMMANDS`` for the session's command table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from simulators.modem.at_syntax import (
    BAD_INDEX,
    PDU_MODE,
    SYNTAX,
    Command,
    Form,
    int_parameter,
    require_form,
    string_parameter,
)
from simulators.modem.handsets import Sms

INBOX_CAPACITY = 255  # messages in the modem's "ME" storage

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


# --- what the commands work on ----------------------------------------------------------------


class SmsSettings(Protocol):
    cnmi: tuple[int, int, int, int, int]  # AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>


class SmsTerminal(Protocol):
    """What the SMS commands need of a session: storage, settings, the TE character set."""

    @property
    def inbox(self) -> Inbox: ...

    @property
    def settings(self) -> SmsSettings: ...

    def to_te(self, text: str, *, quoted: bool = True) -> tuple[bytes, bool]: ...


SmsHandler = Callable[[SmsTerminal, Command], list[bytes]]
SMS_COMMANDS: dict[str, SmsHandler] = {}


def _command(*names: str) -> Callable[[SmsHandler], SmsHandler]:
    def register(handler: SmsHandler) -> SmsHandler:
        for name in names:
            SMS_COMMANDS[name] = handler
        return handler

    return register


# --- formatting messages ----------------------------------------------------------------------


def new_message_indication(terminal: SmsTerminal, index: int) -> bytes:
    """``+CMTI`` (or ``+CMT`` with the message) as ``AT+CNMI`` asked; else nothing."""
    mode, mt = terminal.settings.cnmi[:2]
    stored = terminal.inbox.get(index)
    if mode == 0 or mt == 0 or stored is None:
        return b""
    if mt == 1:
        return b'\r\n+CMTI: "ME",%d\r\n' % index
    stored.read = True
    return b"\r\n+CMT: %s\r\n%s\r\n" % (
        _sms_header(terminal, stored, with_stat=False),
        _body(terminal, stored),
    )


def _sms_header(terminal: SmsTerminal, stored: StoredSms, *, with_stat: bool) -> bytes:
    sender, _ = terminal.to_te(stored.sms.sender)
    stamp = time.strftime("%y/%m/%d,%H:%M:%S", time.gmtime(stored.sms.received_at))
    stat = b'"%s",' % stored.stat.encode("ascii") if with_stat else b""
    return b'%s"%s",,"%s+00"' % (stat, sender, stamp.encode("ascii"))


def _body(terminal: SmsTerminal, stored: StoredSms) -> bytes:
    return terminal.to_te(stored.sms.text, quoted=False)[0]


# --- commands ----------------------------------------------------------------------------


@_command("+CMGF")
def _message_format(terminal: SmsTerminal, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CMGF: 1"]
    if command.form is Form.TEST:
        return [b"+CMGF: (1)"]
    require_form(command, Form.SET)
    if int_parameter(command.args, 0, (0, 1), 0) == 0:
        raise PDU_MODE
    return []


@_command("+CNMI")
def _new_message_indication(terminal: SmsTerminal, command: Command) -> list[bytes]:
    if command.form is Form.READ:
        return [b"+CNMI: %d,%d,%d,%d,%d" % terminal.settings.cnmi]
    if command.form is Form.TEST:
        return [b"+CNMI: (0-2),(0-2),(0),(0),(0,1)"]
    require_form(command, Form.SET)
    if len(command.args) > 5:
        raise SYNTAX
    current = terminal.settings.cnmi
    allowed = ((0, 1, 2), (0, 1, 2), (0,), (0,), (0, 1))
    values = tuple(int_parameter(command.args, i, allowed[i], current[i]) for i in range(5))
    terminal.settings.cnmi = values  # type: ignore[assignment]
    return []


_STATS = ("REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL")


@_command("+CMGL")
def _list_messages(terminal: SmsTerminal, command: Command) -> list[bytes]:
    if command.form is Form.TEST:
        return [b"+CMGL: (" + b",".join(b'"%s"' % s.encode() for s in _STATS) + b")"]
    require_form(command, Form.ACTION, Form.SET)
    if len(command.args) > 1:
        raise SYNTAX
    wanted = string_parameter(command.args, 0)
    stat = wanted.raw.decode("latin-1").upper() if wanted else "REC UNREAD"
    if stat not in _STATS:
        raise SYNTAX
    lines: list[bytes] = []
    for index, stored in terminal.inbox.listing(stat):
        lines.append(b"+CMGL: %d,%s" % (index, _sms_header(terminal, stored, with_stat=True)))
        lines.append(_body(terminal, stored))
        stored.read = True
    return lines


@_command("+CMGR")
def _read_message(terminal: SmsTerminal, command: Command) -> list[bytes]:
    if command.form is Form.TEST:
        return []
    require_form(command, Form.SET)
    index = int_parameter(command.args, 0, range(1, terminal.inbox.capacity + 1), None)
    stored = terminal.inbox.get(index)
    if stored is None or len(command.args) > 1:
        raise BAD_INDEX
    line = b"+CMGR: %s" % _sms_header(terminal, stored, with_stat=True)
    stored.read = True
    return [line, _body(terminal, stored)]


@_command("+CMGD")
def _delete_message(terminal: SmsTerminal, command: Command) -> list[bytes]:
    inbox = terminal.inbox
    if command.form is Form.TEST:
        used = ",".join(str(i) for i, _ in inbox.listing("ALL"))
        return [f"+CMGD: ({used}),(0-4)".encode()]
    require_form(command, Form.SET)
    if len(command.args) > 2:
        raise SYNTAX
    flag = int_parameter(command.args, 1, range(5), 0)
    if flag == 0:
        if not inbox.delete(int_parameter(command.args, 0, range(1, inbox.capacity + 1), None)):
            raise BAD_INDEX
    elif flag == 4:
        inbox.delete_all()
    else:  # 1-3: read messages (and sent or unsent ones, of which a handset has none here)
        inbox.delete_read()
    return []
