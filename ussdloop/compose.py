"""Composition: turn the network configuration into running services.

Each piece starts alone (``ussdloop simulator``, ``ussdloop dfsp --dfsp NAME``,
``ussdloop gateway --dfsp NAME``) or together (``ussdloop up``); the same objects and
wire protocols either way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from central.client import CentralHttp, ParticipantsClient
from central.service import CentralService
from dfsp.client import DfspClient
from dfsp.interledger import CentralLink
from dfsp.service import DfspService, listener_url
from gateway.smpp.dialects import DIALECTS
from gateway.smpp.esme import BindMode, EsmeConfig
from gateway.ussd.records import SessionTimers
from gateway.ussd.service import GatewayConfig, UssdGateway
from gateway.ussd.stores import RedisSessionStore, SessionStore
from gateway.ussd_menus.demo import demo_menu
from gateway.ussd_menus.dfsp_menu import dfsp_menu
from gateway.ussd_menus.engine import MenuEngine
from gateway.ussd_menus.journeys.common import MenuContext
from gateway.ussd_menus.screens import Menu
from simulators.modem.at_modem import AtModemServer
from simulators.modem.control_api import ControlServer
from simulators.modem.service import EsmeAccount, Simulator, SimulatorConfig
from ussdloop.config import ConfigError, DfspSettings, Listener, NetworkConfig

DFSP_CALL_TIMEOUT = 10.0  # seconds for one DFSP API call (the menu's application timer is 15)


def simulator_config(network: NetworkConfig, *, any_port: bool = False) -> SimulatorConfig:
    """The SMSC plays the carrier of every DFSP: one ESME account per DFSP gateway."""
    sim = network.simulator
    accounts = tuple(
        EsmeAccount(
            system_id=dfsp.gateway.smpp.system_id,
            password=dfsp.gateway.smpp.password,
            short_codes=(dfsp.short_code,),
            dialect=dfsp.gateway.dialect,
            window=dfsp.gateway.smpp.window,
        )
        for dfsp in network.dfsps.values()
    )
    return SimulatorConfig(
        smpp_host=sim.smpp.host,
        smpp_port=0 if any_port else sim.smpp.port,
        accounts=accounts,
        dialogue_timeout=sim.dialogue_timeout,
        screen_timeout=sim.screen_timeout,
        application_timeout=sim.application_timeout,
        tls_cert_file=sim.tls_cert_file or None,
        tls_key_file=sim.tls_key_file or None,
    )


def gateway_config(
    network: NetworkConfig, name: str, *, smpp_port: int | None = None, any_port: bool = False
) -> GatewayConfig:
    """The gateway of DFSP ``name``; ``smpp_port`` overrides the configured SMSC port."""
    dfsp = _dfsp(network, name)
    gateway = dfsp.gateway
    smpp = gateway.smpp
    key = f"dfsps.{name}.gateway"
    if gateway.dialect not in DIALECTS:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigError(f"{key}.dialect", f"unknown dialect {gateway.dialect!r} (known: {known})")
    esme = EsmeConfig(
        host=smpp.host,
        port=smpp.port if smpp_port is None else smpp_port,
        system_id=smpp.system_id,
        password=smpp.password,
        system_type=smpp.system_type,
        bind_mode=BindMode(smpp.bind_mode),
        window=smpp.window,
        enquire_link_interval=smpp.enquire_link_interval,
        response_timeout=smpp.response_timeout,
        reconnect_initial=smpp.reconnect_initial,
        reconnect_max=smpp.reconnect_max,
        rate_limit=smpp.rate_limit or None,
        tls=smpp.tls,
        tls_ca_file=smpp.tls_ca_file or None,
    )
    timers = gateway.timers
    return GatewayConfig(
        esme=esme,
        dialect=gateway.dialect,
        short_codes=(f"*{dfsp.short_code}#",),
        max_sessions=gateway.max_sessions,
        http_host=gateway.ussd_http.host,
        http_port=0 if any_port else gateway.ussd_http.port,
        timers=SessionTimers(timers.dialogue, timers.screen, timers.application),
    )


def check(network: NetworkConfig, dfsps: list[str] | None = None) -> None:
    """Build every service's settings without starting anything, so a mistake is found
    at start-up and named, not at the first dialogue."""
    _named("simulator", lambda: simulator_config(network))
    for name in network.dfsps if dfsps is None else dfsps:
        _named(f"dfsps.{name}.gateway", lambda name=name: gateway_config(network, name))  # type: ignore[misc]
        _named(f"dfsps.{name}", lambda name=name: dfsp_service(network, name))  # type: ignore[misc]


def dfsp_service(
    network: NetworkConfig,
    name: str,
    *,
    any_port: bool = False,
    data_dir: str | Path | None = None,
    central: CentralLink | None = None,
) -> DfspService:
    """The DFSP service ``name`` (not started): its database is the configured one or the
    SQLite file ``<data_dir>/<name>.db`` (``data_dir`` defaults to ``network.data_dir``)."""
    settings = _dfsp(network, name)
    if any_port:
        settings = replace(settings, api=replace(settings.api, port=0))
    directory = network.network.data_dir if data_dir is None else data_dir
    return DfspService(
        name,
        settings,
        database_url=settings.database_url(name, directory),
        opening_balance=settings.opening_money(),
        central=central,
    )


def _named(key: str, build: Callable[[], object]) -> None:
    try:
        build()
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(key, str(error)) from None


def build_gateway(config: GatewayConfig, menu: Menu | None = None, **kwargs: Any) -> UssdGateway:
    """A gateway serving ``menu`` (the engine's demo menu when none is given)."""
    engine = MenuEngine(menu or demo_menu(), limits=config.carrier_dialect.limits)
    return UssdGateway(config, engine, **kwargs)


def dfsp_menu_of(network: NetworkConfig, name: str, dfsp_url: str, running: Running) -> Menu:
    """The DFSP menu of ``name``'s gateway, calling the DFSP API at ``dfsp_url``; its HTTP
    client session is closed when ``running`` stops (after the gateway)."""
    settings = _dfsp(network, name)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DFSP_CALL_TIMEOUT))
    running.started(http.close)
    context = MenuContext(
        DfspClient(dfsp_url, http), dfsp_name=name, short_code=settings.short_code
    )
    return dfsp_menu(context)


def _session_store(setting: str, dfsp: str) -> SessionStore | None:
    """None for the gateway's own in-memory store; a shared Redis store otherwise."""
    if setting == "memory":
        return None
    from twisted.internet import reactor

    clock: Any = reactor
    prefix = f"ussdloop:{dfsp}:{{sessions}}:"  # one hash tag per DFSP: its keys share a slot
    return RedisSessionStore.from_url(setting, clock.seconds, prefix=prefix)


def _dfsp(network: NetworkConfig, name: str) -> DfspSettings:
    try:
        return network.dfsps[name]
    except KeyError:
        known = ", ".join(sorted(network.dfsps))
        raise ConfigError("dfsps", f"no DFSP named {name!r} (known: {known})") from None


Stop = Callable[[], Awaitable[None]]


@dataclass
class Running:
    """Services started so far, stopped in reverse order."""

    endpoints: list[str] = field(default_factory=list)
    _stops: list[Stop] = field(default_factory=list)

    def started(self, stop: Stop, endpoint: str = "") -> None:
        self._stops.append(stop)
        if endpoint:
            self.endpoints.append(endpoint)

    async def stop(self) -> None:
        while self._stops:
            await self._stops.pop()()


@dataclass
class SimulatorServices:
    """The simulated mobile network and the ways to drive its handsets."""

    simulator: Simulator
    control: ControlServer
    modems: AtModemServer | None


@dataclass
class CarrierNetwork:
    """The simulator (SMSC, control API, AT modems) and one gateway per DFSP, and with
    ``start_network`` each DFSP's service too."""

    sim: SimulatorServices
    gateways: dict[str, UssdGateway]
    running: Running
    dfsps: dict[str, DfspService] = field(default_factory=dict)
    central: CentralService | None = None

    @property
    def simulator(self) -> Simulator:
        return self.sim.simulator


async def start_simulator(
    network: NetworkConfig, running: Running, *, any_port: bool = False
) -> SimulatorServices:
    sim = network.simulator
    simulator = Simulator(simulator_config(network, any_port=any_port))
    await simulator.start()
    running.started(
        simulator.stop, f"simulator SMPP    smpp://{sim.smpp.host}:{simulator.smpp_port}"
    )
    control = ControlServer(simulator, sim.control.host, 0 if any_port else sim.control.port)
    await control.start()
    running.started(control.stop, f"simulator control http://{sim.control.host}:{control.port}")
    settings = sim.at_modems
    modems = None
    if settings.msisdns:
        base_port = 0 if any_port else settings.base_port
        modems = AtModemServer(simulator.network, settings.host, base_port, settings.msisdns)
        await modems.start()
        running.started(modems.stop)
        for msisdn, port in modems.ports.items():
            running.endpoints.append(f"AT modem {msisdn}  socket://{settings.host}:{port}")
    return SimulatorServices(simulator, control, modems)


async def start_gateway(
    network: NetworkConfig,
    name: str,
    running: Running,
    *,
    smpp_port: int | None = None,
    any_port: bool = False,
    dfsp_url: str | None = None,
    demo: bool = False,
) -> UssdGateway:
    """The gateway of DFSP ``name``, serving its DFSP menu (the DFSP API at ``dfsp_url``,
    by default the configured one), or the engine's demo menu when ``demo`` or when its
    settings say ``menu = "demo"``."""
    config = gateway_config(network, name, smpp_port=smpp_port, any_port=any_port)
    menu = None
    if not demo and network.dfsps[name].gateway.menu == "dfsp":
        url = dfsp_url or listener_url(_dfsp(network, name).api)
        if url is None:
            raise ConfigError(f"dfsps.{name}.api.port", "the gateway needs the DFSP API's port")
        menu = dfsp_menu_of(network, name, url, running)
    store = _session_store(network.dfsps[name].gateway.session_store, name)
    if store is not None:
        running.started(store.close)
    gateway = build_gateway(config, menu, store=store)
    await gateway.start()
    running.started(gateway.stop)
    host = config.http_host
    running.endpoints.append(
        f"{name} gateway USSD-over-HTTP http://{host}:{gateway.http_port}/ussd"
    )
    return gateway


async def start_central(
    network: NetworkConfig,
    running: Running,
    *,
    any_port: bool = False,
    data_dir: str | Path | None = None,
) -> CentralService:
    settings = network.central
    if any_port:
        settings = replace(settings, http=replace(settings.http, port=0))
    directory = network.network.data_dir if data_dir is None else data_dir
    service = CentralService(settings, database_url=settings.database_url(directory))
    await service.start()
    running.started(
        service.stop, f"central         {service.base_url}  (console {service.base_url}/console/)"
    )
    return service


async def central_link(
    network: NetworkConfig,
    name: str,
    central_url: str | None = None,
    data_dir: str | Path | None = None,
) -> CentralLink:
    """How DFSP ``name`` reaches the centre: the configured credentials, else those kept
    in ``<data_dir>/<name>.central.json``, else new ones from registering it with the
    operator's credentials (then kept there, readable by this user only)."""
    settings = _dfsp(network, name)
    url = central_url or listener_url(network.central.http)
    if url is None:
        raise ConfigError("central.http.port", "the DFSPs need the centre's port")
    await _reachable(url)
    if settings.central_key and settings.central_secret:
        return CentralLink(url, settings.central_key, settings.central_secret)
    directory = Path(network.network.data_dir if data_dir is None else data_dir)
    kept = directory / f"{name}.central.json"
    if kept.exists():
        saved = json.loads(kept.read_text("utf-8"))
        return CentralLink(url, saved["key"], saved["secret"])
    operator = network.central
    if not operator.operator_secret:
        raise ConfigError(
            f"dfsps.{name}.central_key", "set the credentials the switch operator issued"
        )
    async with aiohttp.ClientSession() as session:
        http = CentralHttp(url, session, operator.operator_key, operator.operator_secret)
        registered = await ParticipantsClient(http).register(name)
    directory.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(json.dumps({"key": registered.key, "secret": registered.secret}), "utf-8")
    return CentralLink(url, registered.key, registered.secret)


async def _reachable(url: str) -> None:
    """The centre answers at ``url``, or a ConfigError that says what to do."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{url}/health") as response,
        ):
            if response.status == 200:
                return
            problem = f"it answered HTTP {response.status}"
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        problem = str(error) or type(error).__name__
    raise ConfigError(
        "central.http",
        f"the centre does not answer at {url} ({problem}): start it first"
        " (ussdloop central) or point central.http at it",
    )


def writable_data_dir(network: NetworkConfig, data_dir: str | Path | None = None) -> Path:
    """The data directory, made if missing, or a ConfigError naming it."""
    directory = Path(network.network.data_dir if data_dir is None else data_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".ussdloop-write-check"
        probe.write_text("ok", "utf-8")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            "network.data_dir", f"cannot write to {directory}: {error.strerror or error}"
        ) from None
    return directory


async def start_dfsp(
    network: NetworkConfig,
    name: str,
    running: Running,
    *,
    any_port: bool = False,
    data_dir: str | Path | None = None,
    central: CentralLink | None = None,
) -> DfspService:
    service = dfsp_service(network, name, any_port=any_port, data_dir=data_dir, central=central)
    await service.start()
    running.started(
        service.stop, f"{name} API {service.base_url}  (back office {service.base_url}/admin/)"
    )
    return service


async def start_network(
    network: NetworkConfig, *, any_port: bool = False, data_dir: str | Path | None = None
) -> CarrierNetwork:
    """The whole network of SPEC section 7 in this process (``ussdloop up``): the
    centre, the simulator, then each DFSP's service (registered with the centre at its
    first start) before its gateway (to which its notifications are then pointed)."""
    writable_data_dir(network, data_dir)
    running = Running()
    try:
        central = await start_central(network, running, any_port=any_port, data_dir=data_dir)
        sim = await start_simulator(network, running, any_port=any_port)
        port = sim.simulator.smpp_port
        dfsps: dict[str, DfspService] = {}
        gateways: dict[str, UssdGateway] = {}
        for name in network.dfsps:
            link = await central_link(network, name, central.base_url, data_dir)
            dfsps[name] = await start_dfsp(
                network, name, running, any_port=any_port, data_dir=data_dir, central=link
            )
            gateways[name] = await start_gateway(
                network,
                name,
                running,
                smpp_port=port,
                any_port=any_port,
                dfsp_url=dfsps[name].base_url,
            )
            http_port = gateways[name].http_port  # its real port (any_port: a free one)
            url = http_port and listener_url(Listener(gateways[name].config.http_host, http_port))
            if url:
                dfsps[name].use_gateway(url)
    except BaseException:
        await running.stop()
        raise
    return CarrierNetwork(sim, gateways, running, dfsps, central)


async def start_carrier_network(
    network: NetworkConfig, *, any_port: bool = False
) -> CarrierNetwork:
    """The carrier side of SPEC section 7 alone (simulator and gateways serving the demo
    menu), in this process."""
    running = Running()
    try:
        sim = await start_simulator(network, running, any_port=any_port)
        port = sim.simulator.smpp_port
        gateways = {
            name: await start_gateway(
                network, name, running, smpp_port=port, any_port=any_port, demo=True
            )
            for name in network.dfsps
        }
    except BaseException:
        await running.stop()
        raise
    return CarrierNetwork(sim, gateways, running)
