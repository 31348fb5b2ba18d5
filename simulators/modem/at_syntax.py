"""AT command-line syntax (V.250 5.2-5.4) and the errors commands answer with.

``parse_command_line`` turns what follows ``AT`` into ``Command`` values; the parameter
readers check a command's arguments; ``AtError`` is a failed command and
``error_result`` its final result code under ``AT+CMEE``. Plain bytes in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

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


def error_result(error: AtError, cmee: int) -> bytes:
    """The final result code for ``error`` as ``AT+CMEE=<cmee>`` asks it to read."""
    if not error.kind or cmee == 0:
        return b"\r\nERROR\r\n"
    detail = str(error.code)
    if cmee == 2:
        detail = _ERROR_TEXT.get((error.kind, error.code), detail)
    return f"\r\n+{error.kind} ERROR: {detail}\r\n".encode("ascii")


# --- parsing a command line ------------------------------------------------------------------


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


# --- reading a command's parameters ------------------------------------------------------------


def int_parameter(
    args: tuple[Arg, ...], index: int, allowed: Iterable[int], default: int | None
) -> int:
    """Parameter ``index`` as a number in ``allowed``; ``default`` when omitted (None: required)."""
    value = args[index] if index < len(args) else None
    if value is None:
        if default is None:
            raise SYNTAX
        return default
    if isinstance(value, Quoted) or not value.isdigit() or int(value) not in allowed:
        raise SYNTAX
    return int(value)


def string_parameter(args: tuple[Arg, ...], index: int) -> Quoted | None:
    """Parameter ``index`` as a string constant, or None when omitted."""
    value = args[index] if index < len(args) else None
    if value is not None and not isinstance(value, Quoted):
        raise SYNTAX
    return value


def require_form(command: Command, *forms: Form) -> None:
    """A syntax error unless ``command`` is written in one of ``forms``."""
    if command.form not in forms:
        raise SYNTAX
