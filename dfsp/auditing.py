"""The auditor's desk (SPEC section 3, "Fraud and blacklists", "Limits and tiers"): the
use cases behind the back office's ``/admin/customers`` pages (``dfsp.web.desk``).

An auditor is a customer the DFSP named: by user number in ``[dfsps.X] auditors``, or
with ``grant_auditor`` (a row of ``bulk_roles``, which holds every back-office role).
They may:

- look a customer up by user number, MSISDN or national ID and read their profile:
  identity, identifiers, accounts with balances, tier and its history, recent activity,
  fraud checks, and the centre's fraud standing (``profile``);
- list customers never checked, or not checked for N days (``unchecked``);
- record a fraud check with a comment, and a score that is shared with the central
  fraud service (``record_check``);
- blacklist or unblacklist with a reason (``blacklist`` / ``unblacklist``): the centre
  is told first (so no other DFSP pays a blacklisted user), then the customer's row;
  a blacklisted customer can neither send nor receive (``dfsp.payments``,
  ``dfsp.clearing_ledger``);
- change a tier (``change_tier``, recorded by ``dfsp.customers``).

Every change is recorded in ``fraud_checks`` or ``tier_changes`` with the auditor's
name, and written to the forensic log with who made it; while that log is unavailable
no change is taken. No auditor changes their own record: separation of duties.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.client import CentralError
from central.fraud.client import FraudClient, FraudUser
from dfsp import audit_store, bulk_store, customer_store
from dfsp.audit_store import CheckAction, FraudCheck
from dfsp.customers import Customers
from dfsp.domain.customers import Customer, CustomerAccount, UnknownCustomer
from dfsp.domain.identifiers import (
    IdentifierError,
    normalise_msisdn,
    normalise_national_id,
)
from dfsp.domain.payments import StatementRow
from dfsp.domain.tiers import RecordedTierChange, Tier, TierChange
from dfsp.forensic import DfspForensic
from dfsp.ledger import Ledger
from dfsp.payments import Payments
from ussdloop.money import Money

AUDITOR: Final = "auditor"  # the role's name in ``bulk_roles``
MAX_REASON: Final = 200  # the central fraud service's bound on a reason
MAX_QUERY: Final = 64
MAX_FOUND: Final = 50
MAX_LISTED: Final = 200
MAX_DAYS: Final = 36_500
RECENT_ROWS: Final = 8
RECENT_CHECKS: Final = 20
USER_NUMBER_DIGITS: Final = 8

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# The forensic event of each change, and its action in ``fraud_checks``.
CHECK_ACTIONS: Final = {
    "fraud.checked": CheckAction.CHECK,
    "customer.blacklisted": CheckAction.BLACKLIST,
    "customer.unblacklisted": CheckAction.UNBLACKLIST,
}


class AuditError(Exception):
    """A refusal of the auditor's desk; nothing was changed."""


class NotAuditor(AuditError):
    def __init__(self) -> None:
        super().__init__("the DFSP has not given you the auditor role")


class OwnRecord(AuditError):
    def __init__(self) -> None:
        super().__init__("an auditor cannot check or change their own record")


class BadAuditInput(AuditError):
    """A search, comment, reason or score the desk cannot use."""


class FraudSharingUnavailable(AuditError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the central fraud service did not take the change ({detail})")


@dataclass(frozen=True)
class AccountStanding:
    account: CustomerAccount
    balance: Money
    available: Money
    recent: tuple[StatementRow, ...]  # newest first


@dataclass(frozen=True)
class CustomerProfile:
    customer: Customer
    accounts: tuple[AccountStanding, ...]
    tier: Tier
    tier_history: tuple[RecordedTierChange, ...]  # oldest first
    checks: tuple[FraudCheck, ...]  # newest first
    central: FraudUser | None  # None: never reported, or no centre
    central_problem: str | None  # why the centre's standing is not shown

    @property
    def last_check(self) -> FraudCheck | None:
        return self.checks[0] if self.checks else None


@dataclass(frozen=True)
class Unchecked:
    customer: Customer
    last_checked: datetime | None  # None: never


class Auditing:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        customers: Customers,
        ledger: Ledger,
        payments: Payments,
        *,
        clock: Clock,
        auditors: Sequence[str] = (),  # user numbers given the role by configuration
        fraud: FraudClient | None = None,  # None: a DFSP without a centre
        forensic: DfspForensic | None = None,
    ) -> None:
        self._sessions = sessions
        self._customers = customers
        self._ledger = ledger
        self._payments = payments
        self._clock = clock
        self._configured = frozenset(auditors)
        self._fraud = fraud
        self._forensic = forensic

    # --- the role ------------------------------------------------------------------

    async def is_auditor(self, customer: Customer) -> bool:
        number = str(customer.user_number)
        return await bulk_store.has_role(
            self._sessions, customer.id, number, AUDITOR, self._configured
        )

    async def grant_auditor(self, customer_id: str) -> None:
        """Give a customer the auditor role; again is a no-op."""
        await self._customers.customer(customer_id)
        await bulk_store.grant_role(self._sessions, customer_id, AUDITOR, self._clock())

    # --- reading ---------------------------------------------------------------------

    async def find(self, auditor: Customer, query: str) -> list[Customer]:
        """Customers by user number (8 digits), MSISDN (``+`` or more digits) or
        national ID (anything else)."""
        await self._require_auditor(auditor)
        text = query.strip()
        if not text or len(text) > MAX_QUERY:
            raise BadAuditInput(f"enter a user number, MSISDN or national ID ({MAX_QUERY} max)")
        digits = text.replace(" ", "")
        try:
            if digits.isdigit() and len(digits) == USER_NUMBER_DIGITS:
                found = await self._customers.by_user_number(digits)
                return [found] if found is not None else []
            if digits.startswith("+") or (digits.isdigit() and len(digits) > USER_NUMBER_DIGITS):
                found = await self._customers.by_msisdn(normalise_msisdn(digits))
                return [found] if found is not None else []
            national_id = normalise_national_id(text)
        except IdentifierError as error:
            raise BadAuditInput(str(error)) from None
        async with self._sessions() as session:
            rows = await audit_store.customers_by_national_id(session, national_id, MAX_FOUND)
        return [customer_store.customer_value(row) for row in rows]

    async def profile(self, auditor: Customer, customer_id: str) -> CustomerProfile:
        await self._require_auditor(auditor)
        customer = await self._customers.customer(customer_id)
        accounts = []
        for account in await self._customers.accounts_of(customer.id):
            balance, available = await self._ledger.balance(account.ledger_account_id)
            recent = await self._payments.statement(account.ledger_account_id, RECENT_ROWS)
            accounts.append(AccountStanding(account, balance, available, tuple(recent)))
        async with self._sessions() as session:
            checks = await audit_store.checks_of(session, customer.id, RECENT_CHECKS)
        central, problem = await self._central_standing(customer)
        return CustomerProfile(
            customer=customer,
            accounts=tuple(accounts),
            tier=await self._customers.tier_of(customer.id),
            tier_history=await self._customers.tier_history(customer.id),
            checks=tuple(checks),
            central=central,
            central_problem=problem,
        )

    async def unchecked(self, auditor: Customer, days: int | None) -> list[Unchecked]:
        """Customers never checked, then (with ``days``) those last checked more than
        ``days`` days ago; the longest unchecked first."""
        await self._require_auditor(auditor)
        if days is not None and not 0 <= days <= MAX_DAYS:
            raise BadAuditInput(f"the number of days is 0 to {MAX_DAYS}")
        cutoff = None if days is None else self._clock() - timedelta(days=days)
        async with self._sessions() as session:
            rows = await audit_store.unchecked_since(session, cutoff, MAX_LISTED)
        return [Unchecked(customer_store.customer_value(row), at) for row, at in rows]

    # --- changes ---------------------------------------------------------------------

    async def record_check(
        self, auditor: Customer, customer_id: str, comment: str, score: int | None = None
    ) -> None:
        """A fraud check with its comment; a score (0-100) is reported to the centre
        first, where 100 blocks the user at every DFSP."""
        customer = await self._target(auditor, customer_id)
        comment = _words(comment, "comment")
        if score is not None and not 0 <= score <= 100:
            raise BadAuditInput("a score is a whole number from 0 to 100")
        if score is not None and self._fraud is not None:
            fraud = self._fraud
            await _shared(lambda: fraud.report(str(customer.user_number), score, comment))
        await self._write("fraud.checked", customer, auditor, comment, score=score)

    async def blacklist(self, auditor: Customer, customer_id: str, reason: str) -> None:
        await self._set_blacklisted(auditor, customer_id, reason, blacklisted=True)

    async def unblacklist(self, auditor: Customer, customer_id: str, reason: str) -> None:
        await self._set_blacklisted(auditor, customer_id, reason, blacklisted=False)

    async def change_tier(
        self, auditor: Customer, customer_id: str, tier: str, reason: str
    ) -> TierChange:
        """Recorded in ``tier_changes`` and the forensic log (``tier.changed``) by
        ``dfsp.customers`` with the auditor's name."""
        await self._target(auditor, customer_id)
        return await self._customers.change_tier(
            customer_id, tier, actor=actor(auditor), reason=_words(reason, "reason")
        )

    # --- helpers ---------------------------------------------------------------------

    async def _require_auditor(self, auditor: Customer) -> None:
        if not await self.is_auditor(auditor):
            raise NotAuditor()

    async def _target(self, auditor: Customer, customer_id: str) -> Customer:
        """The customer an auditor may change now: not themselves, and only while the
        forensic log takes records (``ForensicLogUnavailable``)."""
        await self._require_auditor(auditor)
        if customer_id == auditor.id:
            raise OwnRecord()
        customer = await self._customers.customer(customer_id)
        if self._forensic is not None:
            await self._forensic.require()
        return customer

    async def _set_blacklisted(
        self, auditor: Customer, customer_id: str, reason: str, *, blacklisted: bool
    ) -> None:
        """The centre first (so no other DFSP pays the user meanwhile), then here."""
        customer = await self._target(auditor, customer_id)
        reason = _words(reason, "reason")
        if self._fraud is not None:
            fraud, number = self._fraud, str(customer.user_number)
            change = fraud.blacklist if blacklisted else fraud.unblacklist
            await _shared(lambda: change(number, reason))
        event = "customer.blacklisted" if blacklisted else "customer.unblacklisted"
        await self._write(event, customer, auditor, reason, blacklisted=blacklisted)

    async def _write(
        self,
        event: str,
        customer: Customer,
        auditor: Customer,
        comment: str,
        *,
        score: int | None = None,
        blacklisted: bool | None = None,
    ) -> None:
        """The change and its ``fraud_checks`` row, committed only once the forensic log
        took its record (who, why, the score)."""
        action = CHECK_ACTIONS[event]
        data: dict[str, object] = {"by": actor(auditor), "reason": comment}
        if score is not None:
            data["score"] = score
        async with self._sessions.begin() as session:
            row = await customer_store.find_customer(session, customer.id, lock=True)
            if row is None:
                raise UnknownCustomer(customer.id)
            if blacklisted is not None:
                row.blacklisted = blacklisted
            audit_store.add_check(
                session,
                customer.id,
                action,
                actor=actor(auditor),
                comment=comment,
                score=score,
                at=self._clock(),
            )
            if self._forensic is not None:
                await self._forensic.record_before_commit(event, str(customer.user_number), data)
        log.info(
            "event=customer_audited customer=%s action=%s auditor=%s",
            customer.user_number,
            action.value,
            auditor.user_number,
        )

    async def _central_standing(self, customer: Customer) -> tuple[FraudUser | None, str | None]:
        if self._fraud is None:
            return None, "this DFSP has no central fraud service"
        try:
            return await self._fraud.user(str(customer.user_number)), None
        except CentralError as error:
            if error.status == 404:
                return None, None  # never reported or blacklisted at the centre
            return None, f"the central fraud service refused ({error.id})"
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return None, f"the central fraud service did not answer ({type(error).__name__})"


async def _shared(change: Callable[[], Awaitable[object]]) -> None:
    """Make a change at the central fraud service; refuse the auditor's change if the
    centre did not take it (nothing is changed here then)."""
    try:
        await change()
    except CentralError as error:
        raise FraudSharingUnavailable(f"{error.status} {error.id}: {error}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise FraudSharingUnavailable(type(error).__name__) from None


def actor(auditor: Customer) -> str:
    """The auditor as change records name them: user number and name, at most 64."""
    return f"{auditor.user_number} {auditor.name}"[:64]


def _words(text: str, what: str) -> str:
    text = " ".join(text.split())
    if not 0 < len(text) <= MAX_REASON:
        raise BadAuditInput(f"a {what} is 1 to {MAX_REASON} characters")
    return text
