"""``ussdloop phone``: a feature phone in the terminal, driving the simulator's control API.

Type a dial string (``*123#``) to start a dialogue and then the answers the screens ask
for; each screen is shown as the handset shows it. ``/sms`` shows the inbox, ``/cancel``
ends the dialogue, an empty line shows the phone's current screen (a pushed prompt, say),
``/quit`` (or end of input) leaves.

A thin client on purpose: the standard library's ``urllib`` only, so it runs anywhere
the package is installed, and every rule lives in the simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

DEFAULT_CONTROL = "http://127.0.0.1:8000"
CONTROL_ENV = "USSDLOOP_CONTROL_URL"
RULE = "-" * 32
HELP = (
    "Type a code such as *123# to dial, then your answers. "
    "Commands: /sms inbox, /cancel end the dialogue, /screen (or an empty line) show the"
    " screen, /help, /quit."
)


class ControlError(Exception):
    """The control API answered with an error, or could not be reached (``id`` "Unreachable")."""

    def __init__(self, error_id: str, message: str) -> None:
        super().__init__(f"{error_id}: {message}")
        self.id = error_id
        self.message = message


@dataclass(frozen=True)
class PhoneView:
    msisdn: str
    screen: str | None
    expects_reply: bool
    state: str
    ended_reason: str | None
    network_initiated: bool

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> PhoneView:
        return cls(
            msisdn=str(body.get("msisdn", "")),
            screen=body.get("screen"),
            expects_reply=bool(body.get("expectsReply")),
            state=str(body.get("state", "idle")),
            ended_reason=body.get("endedReason"),
            network_initiated=bool(body.get("networkInitiated")),
        )


class ControlClient:
    """The few control API calls a phone makes (blocking; one HTTP request each)."""

    def __init__(self, base_url: str, msisdn: str, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        self._phone = f"{self._base}/phones/{urllib.parse.quote(msisdn, safe='')}"
        self._timeout = timeout

    def phone(self) -> PhoneView:
        return PhoneView.from_json(self._call("GET", self._phone))

    def dial(self, code: str) -> PhoneView:
        return PhoneView.from_json(self._call("POST", f"{self._phone}/dial", {"code": code}))

    def reply(self, text: str) -> PhoneView:
        return PhoneView.from_json(self._call("POST", f"{self._phone}/reply", {"text": text}))

    def cancel(self) -> PhoneView:
        return PhoneView.from_json(self._call("POST", f"{self._phone}/cancel"))

    def inbox(self) -> list[dict[str, Any]]:
        return list(self._call("GET", f"{self._phone}/sms").get("sms", []))

    def _call(self, method: str, url: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as error:
            raise _control_error(error) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ControlError("Unreachable", f"{self._base}: {reason}") from None


def _control_error(error: urllib.error.HTTPError) -> ControlError:
    try:
        body = json.loads(error.read())
        return ControlError(str(body["id"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        return ControlError(f"HTTP{error.code}", str(error.reason))


class Phone:
    """The terminal loop: one input line at a time, one screen at a time."""

    def __init__(self, client: ControlClient, out: TextIO) -> None:
        self._client = client
        self._out = out
        self._shown: PhoneView | None = None

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the person quits."""
        text = line.strip()
        try:
            if text in ("/quit", "/exit"):
                return False
            if text in ("", "/screen"):
                self.show(self._client.phone())
            elif text == "/sms":
                self._show_inbox(self._client.inbox())
            elif text == "/cancel":
                self.show(self._client.cancel())
            elif text == "/help":
                self._print(HELP)
            elif text.startswith("/"):
                self._print(f"unknown command {text}; {HELP}")
            else:
                self._send(text)
        except ControlError as error:
            self._print(f"! {error.message} ({error.id})")
        return True

    def _send(self, text: str) -> None:
        current = self._client.phone()
        if current.network_initiated and current != self._shown and current.state == "open":
            self._print("A new screen arrived; your input was not sent:")
            self.show(current)
            return
        view = self._client.reply(text) if current.state == "open" else self._client.dial(text)
        self.show(view)

    def show(self, view: PhoneView) -> None:
        self._shown = view
        if view.screen is None:
            self._print(f"[{view.state}] no screen; dial a code such as *123#")
            return
        lines = [RULE, view.screen, RULE]
        if view.expects_reply:
            lines.append("(answer, or /cancel)")
        elif view.state == "waiting":
            lines.append("(notification; waiting for the network)")
        elif view.ended_reason not in (None, "released"):
            lines.append(f"(dialogue ended: {view.ended_reason})")
        else:
            lines.append("(dialogue ended)")
        self._print("\n".join(lines))

    def _show_inbox(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            self._print("no messages")
            return
        for number, sms in enumerate(messages, start=1):
            when = sms.get("receivedAt", "")
            self._print(
                f"[{number}] from {sms.get('sender', '?')} at {when}:\n{sms.get('text', '')}"
            )

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ussdloop phone", description="A feature phone on the simulated mobile network."
    )
    parser.add_argument("--msisdn", required=True, help="the phone's number, e.g. 256700000001")
    parser.add_argument(
        "--control",
        default=os.environ.get(CONTROL_ENV, DEFAULT_CONTROL),
        help=f"the simulator's control API (default {DEFAULT_CONTROL}, or ${CONTROL_ENV})",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for one screen (default 60)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= 600:
        parser.error("--timeout must be between 0 and 600 seconds")
    return args


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the phone until ``/quit`` or end of input; 0 on a normal exit, 1 if unusable."""
    args = _arguments(argv)
    source = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    client = ControlClient(args.control, args.msisdn, args.timeout)
    phone = Phone(client, out)
    try:
        first = client.phone()
    except ControlError as error:
        out.write(f"cannot use phone {args.msisdn}: {error.message} ({error.id})\n")
        return 1
    out.write(f"Phone {first.msisdn} on {args.control}. {HELP}\n")
    if first.screen is not None:
        phone.show(first)
    interactive = source.isatty()
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = source.readline()
        if not line or not phone.handle(line):
            return 0
