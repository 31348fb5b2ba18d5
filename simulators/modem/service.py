"""The simulator as a service: an SMPP listener, the network behind it, the faults.

``Simulator(config).start()`` listens for ESMEs (our gateway) on ``smpp_host`` and
``smpp_port`` (0: any free port, then ``smpp_port`` gives the real one), over TLS when a
certificate and key are configured. ``network`` is the in-process mobile network
(handsets), ``faults`` the fault injection of every connection.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred

from gateway.smpp.dialects import DIALECTS
from simulators.modem.faults import Faults
from simulators.modem.network import MobileNetwork
from simulators.modem.smsc import EsmeAccount, SmscFactory
from simulators.modem.ussd_centre import NETWORK_ERROR
from ussdloop.aio import wait_deferred

__all__ = ["EsmeAccount", "Simulator", "SimulatorConfig"]

log = logging.getLogger(__name__)

UNBIND_WAIT = 2.0  # seconds stop() waits for the ESMEs' unbind_resp
CLOSE_WAIT = 2.0  # seconds restart() waits for dropped connections to close


@dataclass(frozen=True)
class SimulatorConfig:
    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    accounts: tuple[EsmeAccount, ...] = ()
    dialogue_timeout: float = 180.0
    screen_timeout: float = 30.0
    application_timeout: float = 15.0
    tls_cert_file: str | None = None  # serve SMPP over TLS when both are set
    tls_key_file: str | None = None
    response_timeout: float = 10.0  # for the ESME's deliver_sm_resp
    retry_pause: float = 1.0  # after ESME_RTHROTTLED / ESME_RMSGQFUL
    system_id: str = "USSDLOOP"  # the SMSC's system_id in bind responses

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", tuple(self.accounts))
        if not 0 <= self.smpp_port <= 65535:
            raise ValueError(f"simulator.smpp_port must be 0-65535, got {self.smpp_port}")
        for key in (
            "dialogue_timeout",
            "screen_timeout",
            "application_timeout",
            "response_timeout",
            "retry_pause",
        ):
            value = getattr(self, key)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"simulator.{key} must be a positive number, got {value!r}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("simulator.tls_cert_file and simulator.tls_key_file go together")
        owners: dict[str, str] = {}
        seen: set[str] = set()
        for account in self.accounts:
            if account.system_id in seen:
                raise ValueError(f"simulator.accounts: system_id {account.system_id!r} twice")
            seen.add(account.system_id)
            if account.dialect not in DIALECTS:
                raise ValueError(
                    f"simulator.accounts[{account.system_id!r}].dialect: unknown"
                    f" {account.dialect!r} (known: {', '.join(sorted(DIALECTS))})"
                )
            for code in account.short_codes:
                if code in owners:
                    raise ValueError(
                        f"simulator.accounts[{account.system_id!r}].short_codes: {code} is"
                        f" already served by {owners[code]!r}"
                    )
                owners[code] = account.system_id


class Simulator:
    """The mobile network's SMSC / USSD centre, handsets and faults, as one service."""

    def __init__(
        self, config: SimulatorConfig, *, reactor: Any = None, rng: random.Random | None = None
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self._reactor = reactor
        self.faults = Faults(rng)
        self.smsc = SmscFactory(
            config.accounts,
            reactor,
            self.faults,
            system_id=config.system_id,
            response_timeout=config.response_timeout,
            retry_pause=config.retry_pause,
        )
        self.network = MobileNetwork(
            clock=reactor,
            links=self.smsc,
            accounts=config.accounts,
            dialogue_timeout=config.dialogue_timeout,
            screen_timeout=config.screen_timeout,
            application_timeout=config.application_timeout,
        )
        self.smsc.centre = self.network
        self.faults.attach(self.smsc.drop_all)
        self._port: Any = None

    @property
    def smpp_port(self) -> int:
        """The port listened on (the configured one before ``start``)."""
        if self._port is not None:
            return int(self._port.getHost().port)
        return self.config.smpp_port

    @property
    def running(self) -> bool:
        return self._port is not None

    def bound_accounts(self) -> list[str]:
        return self.smsc.bound_accounts()

    def inject_raw(self, system_id: str, data: bytes) -> int:
        """Fault injection: write raw bytes to every bound connection of the account."""
        return self.smsc.inject_raw(system_id, data)

    async def start(self) -> None:
        if self._port is None:
            self._listen(self.config.smpp_port)

    async def stop(self) -> None:
        """Unbind every ESME (waiting briefly for unbind_resp), then close everything."""
        if self._port is None:
            return
        port, self._port = self._port, None
        await wait_deferred(maybeDeferred(port.stopListening))
        self.network.end_dialogues(NETWORK_ERROR)
        await self._wait(self.smsc.unbind_all(), UNBIND_WAIT)
        await self._drop_connections()
        log.info("event=simulator_stopped")

    async def restart(self) -> None:
        """Drop every ESME connection and the listener, and listen again on the same port.

        Dialogues in progress end with ``network_error`` (the applications are not told).
        """
        number = self.smpp_port
        if self._port is not None:
            port, self._port = self._port, None
            await wait_deferred(maybeDeferred(port.stopListening))
        self.network.end_dialogues(NETWORK_ERROR)
        await self._drop_connections()
        self._listen(number)
        log.info("event=simulator_restarted port=%d", number)

    def _listen(self, port: int) -> None:
        config = self.config
        if config.tls_cert_file and config.tls_key_file:
            from twisted.internet import ssl

            pem = Path(config.tls_cert_file).read_bytes() + Path(config.tls_key_file).read_bytes()
            options = ssl.PrivateCertificate.loadPEM(pem).options()
            self._port = self._reactor.listenSSL(
                port, self.smsc, options, interface=config.smpp_host
            )
        else:
            self._port = self._reactor.listenTCP(port, self.smsc, interface=config.smpp_host)
        log.info(
            "event=simulator_listening host=%s port=%d tls=%s",
            config.smpp_host,
            self.smpp_port,
            bool(config.tls_cert_file),
        )

    async def _drop_connections(self) -> None:
        closing = [protocol.when_closed() for protocol in self.smsc.connections]
        self.smsc.drop_all()
        await self._wait(closing, CLOSE_WAIT)

    async def _wait(self, closing: list[Deferred[None]], seconds: float) -> None:
        if not closing:
            return
        everything: Deferred[Any] = DeferredList(closing, consumeErrors=True)
        everything.addTimeout(seconds, self._reactor)
        try:
            await wait_deferred(everything)
        except Exception:  # timed out: whatever is left is dropped next
            log.info("event=simulator_close_wait_expired seconds=%s", seconds)
