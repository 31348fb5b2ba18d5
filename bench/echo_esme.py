"""A bare echo ESME: the baseline the gateway is measured against.

It binds as a transceiver with the same codec and dialect as the gateway, answers every
USSD unit at once with a screen echoing it, and ends each dialogue after ``--screens``
screens. No session store, no menu engine, no window or throttling machinery: what is
left is the cost of SMPP itself on this machine.

    python bench/echo_esme.py --port 2775 --system-id dfsp1 --password dfsp1pw --screens 5
"""

from __future__ import annotations

import argparse
import itertools
import sys

from twisted.internet import protocol

from ussdloop.aio import install_asyncio_reactor

install_asyncio_reactor()  # the gateway's runtime, so the comparison isolates its own work

from twisted.internet import reactor  # noqa: E402

from gateway.smpp.constants import CommandId  # noqa: E402
from gateway.smpp.dialects import (  # noqa: E402
    DIALECTS,
    Dialect,
    DialectError,
    UssdAction,
    UssdMessage,
    build_mobile_terminated,
    parse_mobile_originated,
)
from gateway.smpp.pdu import Pdu, PduError, PduStream, encode, request  # noqa: E402


class EchoEsme(protocol.Protocol):
    def __init__(self, args: argparse.Namespace, dialect: Dialect) -> None:
        self.args = args
        self.dialect = dialect
        self.stream = PduStream()
        self.sequence = itertools.count(1)
        self.screens: dict[tuple[str, int | None], int] = {}

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
        bind = request(
            CommandId.BIND_TRANSCEIVER,
            next(self.sequence),
            system_id=self.args.system_id,
            password=self.args.password,
            interface_version=0x34,
        )
        self.transport.write(encode(bind))  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        out = bytearray()
        for item in self.stream.feed(data):
            if isinstance(item, PduError):
                continue
            out += self.answer(item)
        if out:
            self.transport.write(bytes(out))  # type: ignore[attr-defined]

    def answer(self, pdu: Pdu) -> bytes:
        if pdu.command_id is CommandId.BIND_TRANSCEIVER_RESP:
            print("bound", flush=True)
            return b""
        if pdu.command_id is CommandId.ENQUIRE_LINK:
            return encode(pdu.response())
        if pdu.command_id is not CommandId.DELIVER_SM:
            return b""
        try:
            unit = parse_mobile_originated(self.dialect, pdu)
        except DialectError as error:
            return encode(pdu.response(error.status))
        return encode(pdu.response()) + self.screen_for(unit)

    def screen_for(self, unit: UssdMessage) -> bytes:
        key = (unit.msisdn, unit.session_id)
        if unit.action is UssdAction.ABORT:
            self.screens.pop(key, None)
            return b""
        count = 1 if unit.action is UssdAction.BEGIN else self.screens.get(key, 0) + 1
        last = count >= self.args.screens
        if last:
            self.screens.pop(key, None)
        else:
            self.screens[key] = count
        reply = UssdMessage(
            action=UssdAction.END if last else UssdAction.CONTINUE,
            msisdn=unit.msisdn,
            service_code=unit.service_code,
            text=f"Echo {count}: {unit.text}\n1. Next",
            session_id=unit.session_id,
        )
        return encode(build_mobile_terminated(self.dialect, reply, next(self.sequence)))


class EchoFactory(protocol.ClientFactory):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def buildProtocol(self, addr: object) -> EchoEsme:
        return EchoEsme(self.args, DIALECTS[self.args.dialect])

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        print(f"connection failed: {reason}", file=sys.stderr, flush=True)
        reactor.stop()  # type: ignore[attr-defined]

    def clientConnectionLost(self, connector: object, reason: object) -> None:
        reactor.stop()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--system-id", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--dialect", default="standard", choices=sorted(DIALECTS))
    parser.add_argument("--screens", type=int, default=5)
    args = parser.parse_args()
    reactor.connectTCP(args.host, args.port, EchoFactory(args))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
