"""Customers and their accounts: the DFSP's use cases (SPEC section 3, "Customers",
"Accounts and holders"; section 7 for the demo opening balance).

Each call is one database transaction (plus, where a ledger account or money is
involved, the ledger's own idempotent calls before or after it). An account operation
locks the customers it involves and then their accounts (each in id order), loads their
``AccountBook``, applies the pure rule of ``dfsp.domain.accounts`` / ``holders`` and saves
what changed. Refusals are the domain's errors (``AccountRuleViolation``, ``WeakPin``,
``WrongPin``, ``PinLocked``, ``InvalidPersonDetails``...) or a ``CustomerError`` of
``dfsp.domain.customers``.

A new account's ledger account is opened first (idempotent on its id, harmless if the
registration is then refused), the customer's rows next, and the demo opening balance
last, as the idempotent ledger transfer ``opening:<ledger account>`` from the float.
Closing an account sets its ledger account's balance limit to zero in the same
transaction, so no money can arrive in a closed account.

Tiers (SPEC section 3, "Limits and tiers"; the rules are ``dfsp.domain.tiers``): a
customer's tier is stored by name (none stored: the table's first tier). ``upgrade_tier``
applies the automatic upgrade, called where limits are checked (``dfsp.payments``): the
balance of the accounts they own and their days since registering against the rules, a
move up only, never while an auditor's downgrade holds. It is one conditional UPDATE
(``WHERE tier = <the tier read> AND NOT tier_held``) with its history row, so racing
checks upgrade and record once and an auditor's change made meanwhile wins.
``change_tier`` is an auditor's change, made on the locked customer row. Every change is
a row of ``tier_changes`` (``tier_history``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from functools import partial
from typing import Final, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twisted.logger import Logger

from dfsp import customer_store as store
from dfsp import store as ledger_store
from dfsp.domain import accounts as rules
from dfsp.domain import holders as holder_rules
from dfsp.domain.accounts import AccountBook, AccountClosed, AccountKind
from dfsp.domain.customers import (
    AlreadyRegistered,
    ClosedAccount,
    Customer,
    CustomerAccount,
    CustomerRole,
    Payee,
    PersonAlreadyRegistered,
    TryAgain,
    UnknownCustomer,
    UserNumbers,
    UserNumberTaken,
    account_view,
    book_of,
    first_accounts,
)
from dfsp.domain.identifiers import InvalidIdentifier, PersonKey, UserNumber, normalise_msisdn
from dfsp.domain.pins import (
    DEFAULT_MAX_FAILURES,
    Pin,
    PinAttempts,
    PinPolicy,
    hash_pin,
    needs_rehash,
    verify_pin,
)
from dfsp.domain.tiers import (
    RecordedTierChange,
    Tier,
    TierChange,
    TierChangeReason,
    TierTable,
    auditor_words,
)
from dfsp.domain.transfers import AccountKind as LedgerKind
from dfsp.domain.transfers import Posting
from dfsp.ledger import Ledger
from ussdloop.money import Money

MAX_REGISTER_ATTEMPTS = 3  # a user number (or a concurrent twin) taken between check and insert
MAX_LOCK_ROUNDS = 3  # the holders of an account changed while its customers were locked
LANGUAGES: Final = ("en", "fr")  # what the menus speak

_log = Logger()
T = TypeVar("T")
Clock = Callable[[], datetime]


class Customers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        *,
        clock: Clock,
        rng: random.Random,
        user_numbers: UserNumbers,
        pin_policy: PinPolicy,
        opening_balance: Money | None,
        float_account: str,
        currency: str,
        tiers: TierTable,
        max_pin_failures: int = DEFAULT_MAX_FAILURES,
    ) -> None:
        if opening_balance is not None and (
            opening_balance.currency != currency or opening_balance.minor <= 0
        ):
            raise ValueError(f"opening_balance must be a positive amount in {currency}")
        self._sessions = sessions
        self._ledger = ledger
        self._clock = clock
        self._rng = rng
        self._user_numbers = user_numbers
        self._pin_policy = pin_policy
        self._opening_balance = opening_balance
        self._float_account = float_account
        self._currency = currency
        self._tiers = tiers
        self._max_pin_failures = max_pin_failures

    # --- registration and look-up -------------------------------------------------------

    async def register(
        self,
        msisdn: str,
        first_name: str,
        last_name: str,
        date_of_birth: str | date,
        national_id: str,
        account_name: str,
        role: CustomerRole | str,
        pin: Pin | str,
        user_number: str | None = None,
        language: str = "en",
    ) -> Customer:
        """A new customer with their first (primary) account; an agent also gets a
        commission account. The demo opening balance, if any, is paid from the float."""
        self._pin_policy.check(pin)
        msisdn = normalise_msisdn(msisdn)
        key = PersonKey.of(first_name, last_name, date_of_birth, national_id, today=self._today())
        role = CustomerRole(role)
        given = None if user_number is None else UserNumber.parse(user_number)
        async with self._reading() as session:
            await _check_new(session, msisdn, key)
        pin_hash = await asyncio.to_thread(hash_pin, pin)
        customer_id, account_id = self._new_id(), self._new_id()
        commission_id = self._new_id() if role is CustomerRole.AGENT else None
        new = {account_id: await self._open_ledger_account(account_id, customer_id)}
        if commission_id is not None:
            new[commission_id] = await self._open_ledger_account(
                commission_id, customer_id, LedgerKind.COMMISSION
            )
        for attempt in range(MAX_REGISTER_ATTEMPTS):
            name = f"{first_name.strip()} {last_name.strip()}"
            number = await self._user_numbers.allocate(msisdn, name, given)
            row = store.CustomerRow(
                id=customer_id,
                user_number=str(number),
                msisdn=msisdn,
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                person_first_name=key.first_name,
                person_last_name=key.last_name,
                date_of_birth=key.date_of_birth,
                national_id=key.national_id,
                role=role.value,
                pin_hash=pin_hash,
                pin_failures=0,
                pin_locked=False,
                language=language,
                created_at=self._clock(),
                tier=None,
                tier_held=False,
            )
            try:
                async with self._sessions.begin() as session:
                    await _check_new(session, msisdn, key)
                    session.add(row)
                    await session.flush()
                    book = first_accounts(
                        customer_id, account_id, commission_id, account_name, self._currency
                    )
                    await store.save_book(session, AccountBook(), book, new)
                break
            except IntegrityError:
                await self._user_numbers.release(number)
                if given is not None or attempt + 1 == MAX_REGISTER_ATTEMPTS:
                    async with self._reading() as session:
                        await _check_new(session, msisdn, key)
                    raise UserNumberTaken(str(number)) from None
            except BaseException:
                await self._user_numbers.release(number)
                raise
        _log.info("customer_registered customer_id={customer_id}", customer_id=customer_id)
        await self._fund_opening_balance(new[account_id].ledger_account_id)
        return store.customer_value(row)

    async def customer(self, customer_id: str) -> Customer:
        async with self._reading() as session:
            row = await store.find_customer(session, customer_id)
            if row is None:
                raise UnknownCustomer(customer_id)
            return store.customer_value(row)

    async def customers_among(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        """The customers that exist among ``customer_ids``, by id, read at once."""
        async with self._reading() as session:
            rows = await store.names_of(session, sorted(set(customer_ids)))
            return {customer_id: store.customer_value(row) for customer_id, row in rows.items()}

    async def by_msisdn(self, msisdn: str) -> Customer | None:
        async with self._reading() as session:
            row = await store.find_customer_by(session, msisdn=normalise_msisdn(msisdn))
            return None if row is None else store.customer_value(row)

    async def by_user_number(self, user_number: str) -> Customer | None:
        number = UserNumber.parse(user_number)
        async with self._reading() as session:
            row = await store.find_customer_by(session, user_number=str(number))
            return None if row is None else store.customer_value(row)

    async def payees(self, user_numbers: Iterable[str]) -> dict[str, Payee]:
        """The customers with these user numbers, by the number as given (malformed ones
        are nobody's), each with their tier and the account paid: ``quote_send``'s
        receivers, read at once."""
        given: dict[str, str] = {}  # the number as stored -> as given
        for text in user_numbers:
            with contextlib.suppress(InvalidIdentifier):
                given[str(UserNumber.parse(text))] = text
        async with self._reading() as session:
            rows = await store.customers_by_user_numbers(session, given)
            primary = await store.primary_accounts(session, [row.id for row in rows.values()])
        payees = {}
        for number, row in rows.items():
            account = primary.get(row.id)
            if account is not None and account.kind != AccountKind.REGULAR:
                account = None  # not an account others pay into
            payees[given[number]] = Payee(
                customer=store.customer_value(row),
                tier=row.tier or self._tiers.default.name,
                account_id=None if account is None else account.id,
                ledger_account_id=None if account is None else account.ledger_account_id,
                currency=None if account is None else account.currency,
            )
        return payees

    async def set_language(self, customer_id: str, language: str) -> None:
        """Remember the language of the customer's menus (one of ``LANGUAGES``)."""
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        statement = (
            update(store.CustomerRow)
            .where(store.CustomerRow.id == customer_id)
            .values(language=language)
            .returning(store.CustomerRow.id)
        )
        async with self._sessions.begin() as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                raise UnknownCustomer(customer_id)
        _log.info("customer_language_set customer_id={customer_id}", customer_id=customer_id)

    # --- tiers --------------------------------------------------------------------------

    @property
    def tiers(self) -> TierTable:
        """The tiers an auditor may choose from, lowest first."""
        return self._tiers

    def use_tiers(self, tiers: TierTable) -> None:
        """Apply these tiers from now on (an auditor's change: ``dfsp.rule_book``)."""
        self._tiers = tiers

    async def tier_of(self, customer_id: str) -> Tier:
        """The customer's tier as stored (``UnknownTier`` if the configuration no longer
        has it)."""
        async with self._reading() as session:
            row = await store.find_customer(session, customer_id)
            if row is None:
                raise UnknownCustomer(customer_id)
            return self._tiers.tier(row.tier or self._tiers.default.name)

    async def upgrade_tier(self, customer_id: str) -> Tier:
        """The customer's tier once the automatic upgrade rule has been applied: moved up
        (and recorded) when their balance and age now meet a higher tier's rule."""
        return (await self._upgrade_tier(customer_id))[0]

    async def _upgrade_tier(self, customer_id: str) -> tuple[Tier, Tier | None]:
        """``upgrade_tier``'s tier, and the tier this call moved the customer from (None:
        not moved by this call)."""
        async with self._reading() as session:
            row = await store.find_customer(session, customer_id)
            if row is None:
                raise UnknownCustomer(customer_id)
            stored, held, since = row.tier, row.tier_held, row.created_at
            balance = Money(self._currency, await store.owned_balance_minor(session, customer_id))
        now = self._clock()
        age_days = max((now - since).days, 0)
        current = self._tiers.tier(stored or self._tiers.default.name)
        upgraded = self._tiers.next_tier(current.name, balance, age_days, held=held)
        if upgraded == current:
            return current, None
        change = RecordedTierChange(
            customer_id=customer_id,
            from_tier=current.name,
            to_tier=upgraded.name,
            reason=TierChangeReason.AUTOMATIC,
            actor=None,
            note=f"balance {balance} {balance.currency}, age {age_days} days",
            held=False,
            at=now,
        )
        async with self._sessions.begin() as session:
            moved = await store.upgrade_tier(session, customer_id, stored, upgraded.name)
            if moved:
                store.add_tier_change(session, change)
        if not moved:  # changed meanwhile: that change stands
            return await self.tier_of(customer_id), None
        _log.info(
            "customer_tier_upgraded customer_id={customer_id} tier={tier}",
            customer_id=customer_id,
            tier=upgraded.name,
        )
        return upgraded, current

    async def ledger_accounts_held_by(self, customer_id: str) -> list[str]:
        """The ledger accounts of the open accounts the customer holds (what
        ``accounts_of`` would name, without their holders)."""
        async with self._reading() as session:
            return await store.ledger_accounts_held_by(session, customer_id)

    async def change_tier(
        self, customer_id: str, tier_name: str, *, actor: str, reason: str
    ) -> TierChange:
        """An auditor puts the customer in ``tier_name``; a downgrade holds against the
        automatic upgrades until their next change. Recorded with the auditor and reason."""
        actor, reason = auditor_words(actor, reason)
        async with self._sessions.begin() as session:
            row = await self._locked_customer(session, customer_id)
            change = self._tiers.auditor_change(row.tier or self._tiers.default.name, tier_name)
            row.tier, row.tier_held = change.after.name, change.holds
            store.add_tier_change(
                session,
                RecordedTierChange(
                    customer_id=customer_id,
                    from_tier=change.before.name,
                    to_tier=change.after.name,
                    reason=TierChangeReason.AUDITOR,
                    actor=actor,
                    note=reason,
                    held=change.holds,
                    at=self._clock(),
                ),
            )
        _log.info(
            "customer_tier_changed customer_id={customer_id} tier={tier} actor={actor}",
            customer_id=customer_id,
            tier=change.after.name,
            actor=actor,
        )
        return change

    async def tier_history(self, customer_id: str) -> tuple[RecordedTierChange, ...]:
        """Every change of the customer's tier, oldest first."""
        async with self._reading() as session:
            return tuple(await store.tier_changes(session, customer_id))

    # --- PINs ---------------------------------------------------------------------------

    async def check_pin(self, customer_id: str, pin: Pin | str) -> None:
        """Return if the PIN is right; else ``WrongPin(attempts_left)``, and the last
        allowed wrong PIN (and any PIN after it) ``PinLocked``."""
        await self._verify_pin(customer_id, pin, None)

    async def change_pin(self, customer_id: str, old_pin: Pin | str, new_pin: Pin | str) -> None:
        """Replace the PIN after checking the old one (a wrong one counts as a failure)."""
        self._pin_policy.check(new_pin)
        await self._verify_pin(customer_id, old_pin, await asyncio.to_thread(hash_pin, new_pin))

    async def reset_pin_lock(self, customer_id: str) -> None:
        """The DFSP unlocks a customer locked out by wrong PINs."""
        async with self._sessions.begin() as session:
            row = await self._locked_customer(session, customer_id)
            attempts = PinAttempts(row.pin_failures, row.pin_locked).reset()
            row.pin_failures, row.pin_locked = attempts.failures, attempts.locked
        _log.info("customer_pin_unlocked customer_id={customer_id}", customer_id=customer_id)

    async def _verify_pin(self, customer_id: str, pin: Pin | str, new_hash: str | None) -> None:
        async with self._sessions.begin() as session:
            row = await self._locked_customer(session, customer_id)
            attempts = PinAttempts(row.pin_failures, row.pin_locked)
            attempts.ensure_unlocked()
            right = await asyncio.to_thread(verify_pin, pin, row.pin_hash)
            if right:
                attempts = attempts.after_success()
                if new_hash is not None:
                    row.pin_hash = new_hash
                elif needs_rehash(row.pin_hash):
                    row.pin_hash = await asyncio.to_thread(hash_pin, pin)
            else:
                attempts = attempts.after_failure(self._max_pin_failures)
            row.pin_failures, row.pin_locked = attempts.failures, attempts.locked
        if not right:
            _log.info("customer_wrong_pin customer_id={customer_id}", customer_id=customer_id)
            raise attempts.refusal(self._max_pin_failures)

    # --- accounts -----------------------------------------------------------------------

    async def add_account(self, customer_id: str, name: str, *, primary: bool) -> str:
        """Open another account for the customer; its id."""
        account_id = self._new_id()
        new = {account_id: await self._open_ledger_account(account_id, customer_id)}
        rule = partial(rules.open_account, owner_id=customer_id, account_id=account_id)
        await self._change(
            customer_id, partial(rule, name=name, currency=self._currency, primary=primary), new=new
        )
        return account_id

    async def rename_account(self, customer_id: str, account_id: str, name: str) -> None:
        rule = partial(rules.rename_account, actor_id=customer_id, account_id=account_id)
        await self._change(customer_id, partial(rule, name=name), account_id=account_id)

    async def make_primary(self, customer_id: str, account_id: str) -> None:
        rule = partial(rules.make_primary, customer_id=customer_id, account_id=account_id)
        await self._change(customer_id, rule, account_id=account_id)

    async def close_account(self, customer_id: str, account_id: str) -> ClosedAccount:
        """Close an empty account (by the ledger's balance, money on its way included);
        closing the customer's last account removes the customer."""
        rule = partial(rules.close_account, actor_id=customer_id, account_id=account_id)
        closed = await self._change(customer_id, rule, account_id=account_id, closing=True)
        return ClosedAccount(closed.customer_removed, closed.left_without_account)

    async def add_holder(
        self, customer_id: str, account_id: str, holder_user_number: str, *, signatory: bool
    ) -> Customer:
        """Add the customer with this user number (of this DFSP) as a holder; them."""
        holder = await self.by_user_number(holder_user_number)
        if holder is None:
            raise UnknownCustomer(holder_user_number)
        rule = partial(holder_rules.add_holder, actor_id=customer_id, account_id=account_id)
        await self._change(
            customer_id,
            partial(rule, holder_id=holder.id, signatory=signatory),
            account_id=account_id,
            others=[holder.id],
        )
        return holder

    async def remove_holder(self, customer_id: str, account_id: str, holder_id: str) -> bool:
        """Remove a holder; True when they now hold no account at all."""
        rule = partial(holder_rules.remove_holder, actor_id=customer_id, account_id=account_id)
        removed = await self._change(
            customer_id,
            partial(rule, holder_id=holder_id),
            account_id=account_id,
            others=[holder_id],
        )
        return removed.left_without_account

    async def set_signatory(
        self, customer_id: str, account_id: str, holder_id: str, *, signatory: bool
    ) -> None:
        rule = partial(holder_rules.set_signatory, actor_id=customer_id, account_id=account_id)
        await self._change(
            customer_id,
            partial(rule, holder_id=holder_id, signatory=signatory),
            account_id=account_id,
        )

    async def accounts_of(self, customer_id: str) -> tuple[CustomerAccount, ...]:
        """The open accounts the customer holds, oldest first, with their holders."""
        async with self._reading() as session:
            if await store.find_customer(session, customer_id) is None:
                raise UnknownCustomer(customer_id)
            ids = await store.account_ids_held_by(session, [customer_id])
            rows = await store.open_accounts(session, ids, lock=False)
            book = await store.load_book(session, rows)
            people = await store.names_of(session, book.customers())
        return tuple(
            account_view(a, rows[a.id].ledger_account_id, customer_id, people)
            for a in book.accounts
        )

    # --- helpers ------------------------------------------------------------------------

    async def _change(
        self,
        actor_id: str,
        rule: Callable[[AccountBook], T],
        *,
        account_id: str | None = None,
        others: Iterable[str] = (),
        new: Mapping[str, store.NewAccount] | None = None,
        closing: bool = False,
    ) -> T:
        """Lock the customers involved and their accounts, apply ``rule``, save."""
        for _ in range(MAX_LOCK_ROUNDS):
            async with self._sessions.begin() as session:
                involved = {actor_id, *others}
                if account_id is not None:
                    involved |= await store.holders_of(session, account_id)
                locked_rows = {row.id: row for row in await store.lock_customers(session, involved)}
                locked = set(locked_rows)
                for customer_id in (actor_id, *others):
                    if customer_id not in locked:
                        raise UnknownCustomer(customer_id)
                if account_id is not None and not (
                    await store.holders_of(session, account_id) <= involved
                ):
                    continue  # a holder was added meanwhile: lock them too
                ids = await store.account_ids_held_by(session, involved)
                rows = await store.open_accounts(session, ids, lock=True)
                ledger_row = None
                balances: dict[str, int] = {}
                if closing and account_id is not None and account_id in rows:
                    ledger_id = rows[account_id].ledger_account_id
                    ledger_row = (await ledger_store.lock_accounts(session, [ledger_id]))[ledger_id]
                    balances[account_id] = ledger_row.balance_minor + ledger_row.incoming_minor
                before = await store.load_book(session, rows, balances)
                result = rule(before)
                await store.save_book(session, before, book_of(result), new)
                if isinstance(result, AccountClosed):
                    if ledger_row is not None:
                        ledger_row.balance_limit_minor = 0  # nothing more may arrive
                    if result.customer_removed:
                        await store.delete_customer(session, actor_id)
                        _log.info(
                            "customer_removed customer_id={customer_id}", customer_id=actor_id
                        )
                        removed = UserNumber.parse(locked_rows[actor_id].user_number)
            if isinstance(result, AccountClosed) and result.customer_removed:
                await self._user_numbers.release(removed)  # out of the directory too
            return result
        raise TryAgain("the account's holders kept changing: try again")

    async def _open_ledger_account(
        self, account_id: str, customer_id: str, kind: LedgerKind = LedgerKind.CUSTOMER
    ) -> store.NewAccount:
        ledger_id = f"customer:{account_id}"
        await self._ledger.open_account(
            ledger_id, currency=self._currency, kind=kind, owner=customer_id
        )
        return store.NewAccount(ledger_id, self._clock())

    async def _fund_opening_balance(self, ledger_account_id: str) -> None:
        if self._opening_balance is None:
            return
        posting = Posting(self._float_account, ledger_account_id, self._opening_balance.minor)
        await self._ledger.transfer_now(
            f"opening:{ledger_account_id}", [posting], kind="opening_balance"
        )

    async def _locked_customer(self, session: AsyncSession, customer_id: str) -> store.CustomerRow:
        row = await store.find_customer(session, customer_id, lock=True)
        if row is None:
            raise UnknownCustomer(customer_id)
        return row

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=ledger_store.READ_ONLY)
            yield session

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _today(self) -> date:
        return self._clock().date()


async def _check_new(session: AsyncSession, msisdn: str, key: PersonKey) -> None:
    if await store.find_customer_by(session, msisdn=msisdn) is not None:
        raise AlreadyRegistered(msisdn)
    if await store.person_registered(session, key):
        raise PersonAlreadyRegistered()
