"""The network configuration: typed, loaded from TOML, validated at start-up.

``load_network()`` reads the shipped default network (``default_network.toml``), merges a
user file over it, then environment overrides ``USSDLOOP__SECTION__KEY=value`` (values
parsed as TOML, falling back to a plain string). Every mistake is a ``ConfigError`` that
names the key, e.g. ``dfsps.dfsp1.gateway.smpp.window: expected an integer, got 'ten'``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from ussdloop.db import sqlite_url
from ussdloop.money import Money, MoneyError

ENV_PREFIX = "USSDLOOP__"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration mistake; the message starts with the dotted key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key


@dataclass(frozen=True)
class Listener:
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} outside 0..65535")


@dataclass(frozen=True)
class SmppAccount:
    """How a gateway binds to its carrier's SMSC (SPEC section 6)."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_mode: Literal["transceiver", "pair"] = "transceiver"
    window: int = 10
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    rate_limit: float = 0.0  # requests per second; 0 = unlimited
    tls: bool = False
    tls_ca_file: str = ""

    def __post_init__(self) -> None:
        if not 1 <= len(self.system_id) <= 15:
            raise ValueError("system_id must be 1..15 characters (SMPP v3.4)")
        if len(self.password) > 8:
            raise ValueError("password must be at most 8 characters (SMPP v3.4)")
        if self.window < 1:
            raise ValueError("window must be at least 1")


@dataclass(frozen=True)
class UssdTimers:
    dialogue: float = 180.0
    screen: float = 30.0
    application: float = 15.0


@dataclass(frozen=True)
class GatewaySettings:
    smpp: SmppAccount
    ussd_http: Listener = field(default_factory=Listener)
    dialect: str = "standard"
    max_sessions: int = 100_000
    timers: UssdTimers = field(default_factory=UssdTimers)
    # "memory", or a redis:// URL so several gateway nodes of this DFSP share sessions.
    session_store: str = "memory"
    # "dfsp": the DFSP's menus (calling its API); "demo": the engine's demo menu, for
    # testing a carrier link or benchmarking the gateway without a DFSP behind it.
    menu: Literal["dfsp", "demo"] = "dfsp"

    def __post_init__(self) -> None:
        if self.session_store != "memory" and not self.session_store.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("session_store must be 'memory' or a redis:// URL")


@dataclass(frozen=True)
class DfspSettings:
    short_code: str
    currency: str
    gateway: GatewaySettings
    api: Listener = field(default_factory=Listener)
    # "" = the SQLite file <network.data_dir>/<dfsp name>.db; else a postgresql:// URL.
    database: str = ""
    # Credited to every new customer from the DFSP's float (decimal string); "0" = none.
    opening_balance: str = "0"
    # The fee table (``[dfsps.X.fees]``, see dfsp.domain.fees; empty: no fees) and the
    # tiers with their limits (``[[dfsps.X.tiers]]``, lowest first, see
    # dfsp.domain.tiers). The DFSP service checks both when it is built.
    fees: dict[str, Any] = field(default_factory=dict)
    tiers: tuple[Any, ...] = ()
    # Bulk payments (``[dfsps.X.bulk]``, see dfsp.bulk.BulkSettings): rows_per_second,
    # rows_in_flight, retry_seconds, default_hours, makers and checkers (user numbers
    # given the roles).
    bulk: dict[str, Any] = field(default_factory=dict)
    # User numbers given the auditor role (the back office's customer desk,
    # dfsp.auditing); more are granted in the DFSP's database.
    auditors: tuple[str, ...] = ()
    # The credentials the switch operator issued for this DFSP at the centre. Empty: in
    # one process (``ussdloop up``) the DFSP is registered at first start and they are
    # kept in <network.data_dir>/<dfsp name>.central.json.
    central_key: str = ""
    central_secret: str = ""

    def __post_init__(self) -> None:
        if not self.short_code.isdigit():
            raise ValueError(f"short_code must be digits (dialled as *{self.short_code}#)")
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError("currency must be an ISO 4217 code such as USD")
        if self.database and not self.database.startswith(
            ("postgresql://", "postgres://", "postgresql+asyncpg://", "sqlite")
        ):
            raise ValueError("database must be '' (SQLite under data_dir) or a postgresql:// URL")
        try:
            opening = Money.parse(self.opening_balance, self.currency)
        except MoneyError as error:
            raise ValueError(f"opening_balance: {error}") from None
        if opening.minor < 0:
            raise ValueError("opening_balance must not be negative")

    def opening_money(self) -> Money | None:
        """The opening balance as money; None when it is zero."""
        opening = Money.parse(self.opening_balance, self.currency)
        return opening if opening.minor else None

    def database_url(self, name: str, data_dir: str | Path) -> str:
        """The configured database, or the SQLite file ``<data_dir>/<name>.db``."""
        return self.database or sqlite_url(data_dir, name)


@dataclass(frozen=True)
class AtModems:
    host: str = "127.0.0.1"
    base_port: int = 7000
    msisdns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimulatorSettings:
    smpp: Listener = field(default_factory=lambda: Listener(port=2775))
    control: Listener = field(default_factory=lambda: Listener(port=8000))
    at_modems: AtModems = field(default_factory=AtModems)
    dialogue_timeout: float = 180.0
    screen_timeout: float = 30.0
    application_timeout: float = 15.0
    tls_cert_file: str = ""  # serve SMPP over TLS when both are set (PEM)
    tls_key_file: str = ""

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")


@dataclass(frozen=True)
class CentralSettings:
    http: Listener = field(default_factory=lambda: Listener(port=8088))
    # "" = the SQLite file <network.data_dir>/central.db; or a postgresql:// URL.
    database: str = ""
    currency: str = "USD"  # the settlement currency of the central ledger
    # The switch operator's credentials (HTTP Basic) for the operator's routes.
    operator_key: str = "operator"
    operator_secret: str = ""
    # The scheme (central) fee on transfers across DFSPs: a stair-step schedule
    # ``{ bands = [{ up_to?, flat, percent? }] }`` (see central.rules.fees; empty: none).
    scheme_fee: dict[str, Any] = field(default_factory=dict)
    # The largest single transfer the scheme allows (decimal string), or "none".
    max_transfer: str = "none"

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError("currency must be an ISO 4217 code such as USD")
        if self.max_transfer != "none":
            try:
                positive = Money.parse(self.max_transfer, self.currency).is_positive
            except MoneyError as error:
                raise ConfigError("central.max_transfer", str(error)) from None
            if not positive:
                raise ConfigError("central.max_transfer", 'must be positive, or "none"')
        if self.database and not self.database.startswith(
            ("postgresql://", "postgres://", "postgresql+asyncpg://", "sqlite")
        ):
            raise ValueError("database must be '' (SQLite under data_dir) or a postgresql:// URL")
        if self.operator_secret and len(self.operator_secret) < 12:
            raise ValueError("operator_secret must have at least 12 characters")

    def database_url(self, data_dir: str | Path) -> str:
        """The configured database, or the SQLite file ``<data_dir>/central.db``."""
        return self.database or sqlite_url(data_dir, "central")


@dataclass(frozen=True)
class NetworkInfo:
    name: str = "ussdloop network"
    data_dir: str = "./var"


@dataclass(frozen=True)
class NetworkConfig:
    network: NetworkInfo
    central: CentralSettings
    simulator: SimulatorSettings
    dfsps: dict[str, DfspSettings]

    def __post_init__(self) -> None:
        codes: dict[str, str] = {}
        for name, dfsp in self.dfsps.items():
            if dfsp.short_code in codes:
                other = codes[dfsp.short_code]
                raise ValueError(f"dfsps.{name}.short_code *{dfsp.short_code}# is also {other}'s")
            codes[dfsp.short_code] = name


# --- loading ------------------------------------------------------------------------------


def load_network(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> NetworkConfig:
    """The default network, with ``path`` merged over it and then the environment."""
    data = tomllib.loads(
        resources.files("ussdloop").joinpath("default_network.toml").read_text("utf-8")
    )
    if path is not None:
        data = merge(data, read_toml(Path(path)))
    data = merge(data, env_overrides(os.environ if environ is None else environ))
    return build(NetworkConfig, data)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError("", f"cannot read {path}: {error.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("", f"{path} is not valid TOML: {error}") from None


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``USSDLOOP__A__B=v`` becomes ``{"a": {"b": v}}`` (v read as a TOML value when it is one)."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(cls: type[T], data: Any, key: str = "") -> T:
    """Build dataclass ``cls`` from TOML data, naming the key of the first mistake."""
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(_join(key, unknown[0]), f"unknown key (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], _join(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(key, name), "missing")
    try:
        return cls(**values)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(key, str(error)) from None


def _convert(hint: Any, value: Any, key: str) -> Any:
    if hint is Any:  # checked by the service the value configures
        return value
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(c) for c in get_args(hint))
            raise ConfigError(key, f"expected one of {choices}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a table, got {value!r}")
        _, item = get_args(hint)
        return {k: _convert(item, v, _join(key, k)) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {value!r}")
        (item, _) = get_args(hint)
        return tuple(_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(key, "internal: unions are not configurable")
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    raise ConfigError(key, f"internal: unsupported type {hint!r}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name
