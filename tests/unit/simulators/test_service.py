"""The Simulator service over real sockets: start, stop, restart, TLS, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Protocol

from gateway.smpp.constants import CommandId
from gateway.smpp.pdu import Pdu, PduStream, encode, request
from simulators.modem import service
from simulators.modem.handsets import HandsetState
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig
from tests.pki import write_pki
from ussdloop.aio import as_deferred

C = CommandId
ACCOUNT = EsmeAccount("dfsp1", "secret", ("*123#",))


class EsmeClient(Protocol):
    """A minimal ESME on our own codec; answers unbind when ``answers_unbind``."""

    def __init__(self, answers_unbind: bool = True) -> None:
        self.answers_unbind = answers_unbind
        self.received: DeferredQueue[Pdu] = DeferredQueue()
        self.lost: Deferred[None] = Deferred()
        self._stream = PduStream()

    def dataReceived(self, data: bytes) -> None:
        for pdu in self._stream.feed(data):
            assert isinstance(pdu, Pdu)
            if pdu.command_id is C.UNBIND and self.answers_unbind:
                self.send(pdu.response())
            self.received.put(pdu)

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)

    def send(self, pdu: Pdu) -> None:
        assert self.transport is not None
        self.transport.write(encode(pdu))  # type: ignore[misc]

    async def bind(self) -> Pdu:
        self.send(request(C.BIND_TRANSCEIVER, 1, system_id="dfsp1", password="secret"))
        return await self.received.get()


async def connect(port: int, tls: ssl.CertificateOptions | None = None, **kw: bool) -> EsmeClient:
    if tls is None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    else:
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, tls)
    return await connectProtocol(endpoint, EsmeClient(**kw))


def simulator(**settings: object) -> Simulator:
    config = SimulatorConfig(smpp_port=0, accounts=(ACCOUNT,), **settings)  # type: ignore[arg-type]
    return Simulator(config)


@pytest_twisted.ensureDeferred
async def test_stop_unbinds_every_esme_and_closes_the_listener() -> None:
    sim = simulator()
    await as_deferred(sim.start())
    port = sim.smpp_port
    assert port != 0 and sim.running
    client = await connect(port)
    assert (await client.bind()).status_ok
    assert sim.bound_accounts() == ["dfsp1"]

    await as_deferred(sim.stop())
    assert (await client.received.get()).command_id is C.UNBIND
    await client.lost
    assert not sim.running and sim.bound_accounts() == []
    with pytest.raises(ConnectionRefusedError):
        await connect(port)


@pytest_twisted.ensureDeferred
async def test_stop_does_not_wait_long_for_a_silent_esme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "UNBIND_WAIT", 0.05)
    sim = simulator()
    await as_deferred(sim.start())
    client = await connect(sim.smpp_port, answers_unbind=False)
    await client.bind()
    await as_deferred(sim.stop())
    await client.lost
    assert sim.smsc.connections == set()


@pytest_twisted.ensureDeferred
async def test_restart_drops_the_links_ends_dialogues_and_listens_again_on_the_port() -> None:
    sim = simulator()
    await as_deferred(sim.start())
    port = sim.smpp_port
    client = await connect(port)
    await client.bind()
    alice = sim.network.handset("256700000001")
    alice.dial_nowait("*123#")
    assert (await client.received.get()).command_id is C.DELIVER_SM

    await as_deferred(sim.restart())
    await client.lost
    assert alice.state is HandsetState.IDLE
    assert alice.screen is not None and alice.screen.ended_reason == "network_error"
    assert sim.smpp_port == port and sim.bound_accounts() == []

    again = await connect(port)
    assert (await again.bind()).status_ok
    await as_deferred(sim.stop())


@pytest_twisted.ensureDeferred
async def test_the_disconnect_fault_drops_connections_but_keeps_listening() -> None:
    sim = simulator()
    await as_deferred(sim.start())
    client = await connect(sim.smpp_port)
    await client.bind()
    assert sim.faults.disconnect() == 1
    await client.lost
    again = await connect(sim.smpp_port)
    assert (await again.bind()).status_ok
    await as_deferred(sim.stop())


# Twisted's CertificateOptions still hands pyOpenSSL objects to pyOpenSSL, which warns.
@pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_smpp_is_served_over_tls_when_a_certificate_is_configured(tmp_path: Path) -> None:
    ca_file, cert_file, key_file = write_pki(tmp_path)
    sim = simulator(tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    await as_deferred(sim.start())
    trust_root = ssl.Certificate.loadPEM(ca_file.read_bytes())
    trust = ssl.optionsForClientTLS("localhost", trustRoot=trust_root)
    client = await connect(sim.smpp_port, tls=trust)
    assert (await client.bind()).status_ok
    await as_deferred(sim.stop())
    await client.lost


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"accounts": (ACCOUNT, EsmeAccount("dfsp2", "x", ("*123#",)))}, "short_codes"),
        ({"accounts": (ACCOUNT, ACCOUNT)}, "system_id"),
        ({"accounts": (EsmeAccount("dfsp1", "x", ("1",), dialect="klingon"),)}, "dialect"),
        ({"screen_timeout": 0}, "screen_timeout"),
        ({"smpp_port": 70000}, "smpp_port"),
        ({"tls_cert_file": "a.pem"}, "tls_key_file"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_key(
    settings: dict[str, object], key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        SimulatorConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("account", "key"),
    [
        ({"system_id": "a-very-long-system-id"}, "system_id"),
        ({"short_codes": ("*12a#",)}, "short_codes"),
        ({"bind_types": frozenset({"outbind"})}, "bind_types"),
        ({"window": 0}, "window"),
    ],
)
def test_a_bad_account_is_refused_naming_the_key(account: dict[str, object], key: str) -> None:
    settings: dict[str, object] = {"system_id": "dfsp1", "password": "x", "short_codes": ("1",)}
    settings.update(account)
    with pytest.raises(ValueError, match=key):
        EsmeAccount(**settings)  # type: ignore[arg-type]


def test_short_codes_are_kept_without_star_and_hash() -> None:
    assert EsmeAccount("dfsp1", "x", ("*123#", "456")).short_codes == ("123", "456")
