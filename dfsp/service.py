"""The DFSP as a running service: its database, ledger accounts, services and HTTP API.

``DfspService`` is started alone (``ussdloop dfsp --dfsp NAME``) or with the rest of the
network (``ussdloop up``). ``start()`` opens the database engine, brings the schema to
the latest migration, makes sure the DFSP's float and fee ledger accounts exist (opening
them again on a restart is a no-op), builds ``Customers`` (with the configured tier
table), ``Payments`` (with the fee table), ``Invoices`` and ``Cash`` and serves
``dfsp_app`` (with ``GET /metrics``: ``dfsp.metrics``) on the configured API listener
(port 0 picks a free port: see ``port``), and starts ``Notifications``
(``notifications``: the notice outbox and its delivery loop), which delivers through the
DFSP's gateway at ``gateway_url``: by default the settings' ``gateway.ussd_http``
listener; ``use_gateway`` points it elsewhere (a gateway started on a free port). The
DFSP starts before its gateway: notices wait, retried, until the gateway answers.

A sweep (one asyncio task, every ``expire_every`` seconds) expires the ledger's prepared
transfers whose time is up, releasing what they held: an invoice approval abandoned
between its hold and its execution (a crash, a dropped request) frees the buyer's funds
after ``dfsp.invoices.APPROVAL_HOLD``.

With ``central`` (the centre's URL and the credentials the operator issued), the DFSP
also pays and is paid across DFSPs (``dfsp.interledger``): it serves the interledger
routes other DFSPs call, announces them to the central directory (retried until the
centre answers), and runs the clearing connector, which reconciles every transfer in
flight with the centre at start and after each reconnect. Such a DFSP also keeps a
forensic log (``dfsp.forensic``: ``forensic``), started once the API is up and retried
until the centre answers; until then, and during any outage of the log, new transfers
are refused (``ForensicLogUnavailable``); what it records is in
``dfsp.forensic_events``. ``stop()`` stops the sweep,
the connector and delivery, closes the listener, then disposes of the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime, timedelta
from functools import partial

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from central.client import CentralError
from central.directory.client import DirectoryClient
from central.fraud.client import FraudClient
from clearing.connector import OUTCOME_WAIT
from dfsp.api import dfsp_app
from dfsp.api_bulk import BulkRoutes
from dfsp.auditing import Auditing
from dfsp.bulk import BulkSettings
from dfsp.bulk_runner import BulkRunner, build_bulk
from dfsp.cash import Cash
from dfsp.customer_store import LocalUserNumbers
from dfsp.customers import Customers
from dfsp.domain.customers import UserNumbers
from dfsp.domain.fees import FeeTable
from dfsp.domain.pins import PinPolicy
from dfsp.domain.tiers import TierTable
from dfsp.domain.transfers import AccountKind
from dfsp.forensic import DfspForensic, rules_record
from dfsp.forensic_events import ForensicCustomers, ForensicInvoices, ForensicLedger
from dfsp.interledger import (
    PAYMENT_WINDOW,
    CentralLink,
    DirectoryUserNumbers,
    Interledger,
    build_interledger,
    central_http,
)
from dfsp.invoices import Invoices
from dfsp.ledger import MAX_EXPIRE_BATCH, Ledger
from dfsp.metrics import DfspMetrics
from dfsp.migrate import migrate
from dfsp.notifications import Notifications
from dfsp.payments import Payments
from dfsp.rule_book import RuleBook
from dfsp.store import create_store_engine
from dfsp.web.back_office import BackOffice
from dfsp.web.desk import AuditorDesk
from ussdloop.config import DfspSettings, Listener
from ussdloop.db import session_factory
from ussdloop.metrics import Metric, counters
from ussdloop.money import Money

log = logging.getLogger(__name__)

CENTRAL_TIMEOUT = 10.0  # seconds for one call to the centre or another DFSP
ANNOUNCE_MAX_DELAY = 5.0
FLOAT_ACCOUNT = "float"
FEE_ACCOUNT = "fees"
EXPIRE_EVERY = 5.0  # seconds between sweeps of the ledger's expired holds
MAX_EXPIRE_ROUNDS = 20  # full batches expired in one sweep before waiting again


def _now() -> datetime:
    return datetime.now(UTC)


def listener_url(listener: Listener) -> str | None:
    """The base URL of a gateway's USSD-over-HTTP listener; None for port 0 (not known
    until that gateway has started)."""
    if listener.port == 0:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listener.host, listener.host)
    return f"http://[{host}]:{listener.port}" if ":" in host else f"http://{host}:{listener.port}"


class DfspService:
    """One DFSP: its database and its HTTP API on ``settings.api``."""

    def __init__(
        self,
        name: str,
        settings: DfspSettings,
        *,
        database_url: str,
        opening_balance: Money | None,
        gateway_url: str | None = None,
        central: CentralLink | None = None,
        expire_every: float = EXPIRE_EVERY,
        payment_window: timedelta = PAYMENT_WINDOW,  # a payment request's central expiry
        outcome_wait: float = OUTCOME_WAIT,  # seconds a send waits for the central outcome
    ) -> None:
        if expire_every <= 0:
            raise ValueError("expire_every must be above zero seconds")
        if opening_balance is not None and opening_balance.currency != settings.currency:
            raise ValueError(f"opening_balance must be in {settings.currency}")
        self.name = name
        self.settings = settings
        self.database_url = database_url
        self.opening_balance = opening_balance
        self.gateway_url = gateway_url or listener_url(settings.gateway.ussd_http)
        self.expire_every = expire_every
        self.payment_window, self.outcome_wait = payment_window, outcome_wait
        # Checked now, so a mistake in them is named before anything starts (in force
        # once started: ``rule_book``, where an auditor may have changed them).
        FeeTable.from_toml(settings.fees, settings.currency, f"dfsps.{name}.fees")
        TierTable.from_toml(list(settings.tiers), settings.currency, f"dfsps.{name}.tiers")
        self._engine: AsyncEngine | None = None
        self._runner: web.AppRunner | None = None
        self._port = settings.api.port
        self.ledger: Ledger | None = None
        self.customers: Customers | None = None
        self.payments: Payments | None = None
        self.invoices: Invoices | None = None
        self.cash: Cash | None = None
        self.notifications: Notifications | None = None
        self.holds_expired = 0  # prepared transfers the sweep expired since start
        self._sweep: asyncio.Task[None] | None = None
        self.central = central  # None: a DFSP on its own, without payments to others
        self.interledger: Interledger | None = None
        self._http: aiohttp.ClientSession | None = None
        self.forensic: DfspForensic | None = None
        self.bulk: BulkRunner | None = None  # bulk payments (``bulk.bulk``) and their runner
        self.auditing: Auditing | None = None  # the auditor's desk
        self.rule_book: RuleBook | None = None  # the fees and tiers in force
        self._announce: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The API's port (the one chosen by the system once started, for port 0)."""
        return self._port

    @property
    def host(self) -> str:
        return self.settings.api.host

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use_gateway(self, url: str) -> None:
        """Deliver notices through the gateway at ``url`` from now on."""
        self.gateway_url = url
        if self.notifications is not None:
            self.notifications.gateway_url = url

    async def start(self) -> None:
        engine = create_store_engine(self.database_url)
        try:
            await migrate(engine)
            sessions = session_factory(engine)
            currency = self.settings.currency
            rule_book = RuleBook(
                sessions,
                currency=currency,
                fees=self.settings.fees,
                tiers=list(self.settings.tiers),
                clock=_now,
            )
            await rule_book.load()  # an auditor's tables over the configuration's
            rng = random.SystemRandom()
            central = None
            forensic = DfspForensic(self.name)
            user_numbers: UserNumbers = LocalUserNumbers(sessions, rng)
            if self.central is not None:
                http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CENTRAL_TIMEOUT))
                self._http = http
                central = central_http(self.central, http)
                user_numbers = DirectoryUserNumbers(DirectoryClient(central))
                rules = rules_record(rule_book.fees_document, rule_book.tiers_document, currency)
                forensic = await DfspForensic.for_central(self.name, central, sessions, _now, rules)
            logged = forensic.writer is not None
            ledger = (
                ForensicLedger(sessions, _now, forensic=forensic, fee_account=FEE_ACCOUNT)
                if logged
                else Ledger(sessions, _now)
            )
            for account_id, kind in (
                (FLOAT_ACCOUNT, AccountKind.FLOAT),
                (FEE_ACCOUNT, AccountKind.FEE),
            ):
                await ledger.open_account(
                    account_id,
                    currency=currency,
                    kind=kind,
                    owner=self.name,
                    allow_negative=kind == AccountKind.FLOAT,
                )
            customers_of = partial(ForensicCustomers, forensic=forensic) if logged else Customers
            customers = customers_of(
                sessions,
                ledger,
                clock=_now,
                rng=rng,
                user_numbers=user_numbers,
                pin_policy=PinPolicy(),
                opening_balance=self.opening_balance,
                float_account=FLOAT_ACCOUNT,
                currency=currency,
                tiers=rule_book.tiers,
            )
            if isinstance(ledger, ForensicLedger):
                ledger.name_parties_with(customers)
            notifications = Notifications(
                sessions,
                customers,
                gateway_url=self.gateway_url,
                short_code=f"*{self.settings.short_code}#",
            )
            interledger = None
            if central is not None and self._http is not None:
                interledger = await build_interledger(
                    self.name,
                    currency,
                    central,
                    self._http,
                    sessions,
                    ledger,
                    customers,
                    rule_book.fees,
                    notifications,
                    fee_account=FEE_ACCOUNT,
                    clock=_now,
                    payment_window=self.payment_window,
                    outcome_wait=self.outcome_wait,
                )
            payments = Payments(
                sessions,
                ledger,
                customers,
                fees=rule_book.fees,
                clock=_now,
                fee_account=FEE_ACCOUNT,
                notices=notifications,
                interledger=interledger,
                forensic=forensic,
            )
            invoices_of = partial(ForensicInvoices, forensic=forensic) if logged else Invoices
            invoices = invoices_of(
                sessions,
                ledger,
                customers,
                payments,
                clock=_now,
                notices=notifications,
                interledger=interledger,
            )
            if interledger is not None and interledger.clearing_notices is not None:
                interledger.clearing_notices.invoices = invoices.across  # invoices paid
            cash = Cash(customers, payments, invoices)
            metrics = DfspMetrics(sessions, extra=lambda: self._counters(notifications))
            app = dfsp_app(customers, payments, invoices, cash, metrics, interledger=interledger)
            # --- bulk payments (dfsp.bulk, dfsp.bulk_runner): routes, runner started below
            bulk = build_bulk(
                sessions,
                customers,
                payments,
                ledger,
                notifications,
                currency=currency,
                short_code=f"*{self.settings.short_code}#",
                settings=BulkSettings.from_toml(self.settings.bulk, f"dfsps.{self.name}.bulk"),
                clock=_now,
            )
            BulkRoutes(bulk.bulk).add_to(app)
            auditing = Auditing(
                sessions,
                customers,
                ledger,
                payments,
                clock=_now,
                auditors=self.settings.auditors,
                fraud=None if central is None else FraudClient(central),
                forensic=forensic,
            )
            office = BackOffice(bulk.bulk, customers, sessions, auditing=auditing)
            office.add_to(app)  # dfsp.web: /admin/
            AuditorDesk(office, auditing, customers, rule_book).add_to(app)  # /admin/customers
            rule_book.forensic = forensic if logged else None
            rule_book.on_change = partial(_apply_rules, payments, interledger, customers)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, self.settings.api.host, self.settings.api.port)
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            if self._http is not None:
                await self._http.close()
            await engine.dispose()
            raise
        self._engine, self._runner = engine, runner
        self.ledger, self.customers, self.payments = ledger, customers, payments
        self.invoices, self.cash = invoices, cash
        self.notifications = notifications
        self.forensic = forensic
        forensic.start()
        notifications.start()
        self.bulk = bulk  # bulk payments: paid by its runner from now on
        self.auditing = auditing
        self.rule_book = rule_book
        bulk.start()
        self._sweep = asyncio.get_running_loop().create_task(self._expire_holds(ledger))
        self._port = int(runner.addresses[0][1])
        self.interledger = interledger
        if interledger is not None:
            interledger.connector.start()
            self._announce = asyncio.get_running_loop().create_task(
                _announce(interledger, f"{self.base_url}/interledger")
            )
        log.info("event=dfsp_started dfsp=%s api=%s", self.name, self.base_url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        engine, self._engine = self._engine, None
        notifications, self.notifications = self.notifications, None
        bulk, self.bulk = self.bulk, None
        sweep, self._sweep = self._sweep, None
        announce, self._announce = self._announce, None
        interledger, self.interledger = self.interledger, None
        http, self._http = self._http, None
        forensic, self.forensic = self.forensic, None
        self.ledger = self.customers = self.payments = None
        self.auditing, self.rule_book = None, None
        self.invoices, self.cash = None, None
        try:
            for task in (sweep, announce):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if interledger is not None:
                await interledger.connector.stop()
            if forensic is not None:
                await forensic.stop()
            if bulk is not None:
                await bulk.stop()
            if notifications is not None:
                await notifications.stop()
            if runner is not None:
                await runner.cleanup()
            if http is not None:
                await http.close()
        finally:
            if engine is not None:
                await engine.dispose()
                log.info("event=dfsp_stopped dfsp=%s", self.name)

    async def _expire_holds(self, ledger: Ledger) -> None:
        """Every ``expire_every`` seconds, expire the prepared transfers whose time is up
        (an invoice approval abandoned between its hold and its execution) and so
        release the funds they held."""
        while True:
            try:
                for _ in range(MAX_EXPIRE_ROUNDS):
                    expired = await ledger.expire_due()
                    self.holds_expired += len(expired)
                    for transfer_id in expired:
                        log.info(
                            "event=hold_expired dfsp=%s transfer_id=%s", self.name, transfer_id
                        )
                    if len(expired) < MAX_EXPIRE_BATCH:
                        break
            except Exception:
                log.exception("event=expire_sweep_failed dfsp=%s", self.name)
            try:
                if self.invoices is not None:  # invoices and rejections for other DFSPs
                    await self.invoices.retry_peers()
            except Exception:
                log.exception("event=invoice_retry_failed dfsp=%s", self.name)
            try:
                if self.rule_book is not None:  # a change made by another process
                    await self.rule_book.load()
            except Exception:
                log.exception("event=rules_refresh_failed dfsp=%s", self.name)
            await asyncio.sleep(self.expire_every)

    def _counters(self, notifications: Notifications) -> list[Metric]:
        """The in-process counters shown with the tables' figures on ``/metrics``."""
        expired = Metric(
            "dfsp_holds_expired_total",
            "counter",
            "prepared transfers expired by the sweep since start",
            self.holds_expired,
        )
        notices = counters("dfsp_notifications", notifications.counters.as_dict(), "notices")
        return [*notices, expired]


def _apply_rules(
    payments: Payments,
    interledger: Interledger | None,
    customers: Customers,
    fees: FeeTable,
    tiers: TierTable,
) -> None:
    """Put an auditor's fees and tiers in force (``RuleBook.on_change``)."""
    payments.use_fees(fees)
    if interledger is not None:
        interledger.use_fees(fees)
    customers.use_tiers(tiers)


async def _announce(interledger: Interledger, url: str) -> None:
    """Tell the central directory where this DFSP's interledger routes are, retrying
    while the centre cannot be reached."""
    delay = 0.2
    while True:
        try:
            await interledger.announce(url)
            return
        except (CentralError, aiohttp.ClientError, OSError) as error:
            log.info("event=directory_endpoint_retry error=%s", error)
        await asyncio.sleep(delay)
        delay = min(delay * 2, ANNOUNCE_MAX_DELAY)
