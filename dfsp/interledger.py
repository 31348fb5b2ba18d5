"""The DFSP's part in payments between DFSPs, on the bundled clearing library.

Payee side (what other DFSPs ask of this one, ``dfsp.api_interledger``): who a
receiver is, the receiver fee this DFSP keeps back, and payment requests whose
fulfilment it can recompute (``clearing.payment_requests``).

Payer side (``Payments`` uses it when a user number is not a customer here): the
receiver through the central directory and the payee's DFSP, the fees (this DFSP's
sender fee, the centre's scheme fee, the payee DFSP's receiver fee) and the centre's
eligibility check, then, after the PIN, a payment request from the payee's DFSP, the
hold in this ledger and the connector (``clearing.connector``) through the centre.

Invoices across DFSPs (``dfsp.invoices_across``): the merchant's DFSP tells the buyer's
DFSP of an invoice (``send_invoice``), the buyer's DFSP tells the merchant's of a
rejection (``reject_invoice``), and ``ClearingNotices`` hands the decided payments that
carry an invoice id to the ``InvoiceHooks`` (the merchant's invoice paid, the buyer's
remote invoice paid).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from central.client import CentralError, CentralHttp
from central.directory.client import DirectoryClient
from central.fraud.client import FraudClient
from central.ledger.client import LedgerClient
from central.rules.client import RulesClient
from clearing.connector import OUTCOME_WAIT, CentralRefused, Connector, Outgoing
from clearing.ilp.addresses import dfsp_account_address
from clearing.payment_requests import PaymentDetails, PaymentRequest, PaymentRequests
from clearing.peers import BatchRequest, PeerClient, PeerRefused, endpoint_of
from dfsp.clearing_ledger import (
    CLEARING_ACCOUNT,
    PAYEE,
    PAYER,
    ClearingLedger,
    ClearingState,
    PaymentHold,
    Screen,
)
from dfsp.customers import Customers
from dfsp.domain.customers import RegistrationRefused, UserNumberTaken
from dfsp.domain.fees import FeeTable, Route, TransactionType
from dfsp.domain.identifiers import InvalidIdentifier, UserNumber
from dfsp.domain.notices import Notice, NoticeSink
from dfsp.domain.payments import PaymentError, PaymentOrder, RemoteReceiver, UnknownReceiver
from dfsp.domain.transfers import AccountKind, LedgerError, Transfer, TransferState
from dfsp.ledger import Ledger
from ussdloop.money import Money

PAYMENT_WINDOW: Final = timedelta(seconds=10)  # a payment request's central expiry
NET_DEBIT_CAP_EXCEEDED: Final = "NetDebitCapExceededError"  # the centre's error id
Clock = Callable[[], datetime]


class TransferNotAllowed(PaymentError):
    """The centre's rules refuse the transfer (fraud, a scheme limit); ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ClearingUnavailable(PaymentError):
    """The centre or the payee's DFSP cannot be reached now: try again later."""


class NetDebitCapReached(PaymentError):
    """The centre refused the payment: this DFSP's net debit cap would be passed."""


@dataclass(frozen=True)
class IssuedPayment:
    """One of ``Interledger.issue_many``: the payee's name, the fee kept back, the
    payment request."""

    name: str
    payee_fee: Money
    request: PaymentRequest


class Interledger:
    def __init__(
        self,
        name: str,
        currency: str,
        customers: Customers,
        fees: FeeTable,
        requests: PaymentRequests,
        ledger: ClearingLedger,
        connector: Connector,
        directory: DirectoryClient,
        rules: RulesClient,
        peers: PeerClient,
        clock: Clock,
        *,
        payment_window: timedelta = PAYMENT_WINDOW,
    ) -> None:
        self.name = name
        self.currency = currency
        self._customers = customers
        self._fees = fees
        self._requests = requests
        self._ledger = ledger
        self.connector = connector
        self._directory = directory
        self._rules = rules
        self._peers = peers
        self._clock = clock
        self._window = payment_window
        self.clearing_notices: ClearingNotices | None = None  # the connector's on_final

    def use_fees(self, fees: FeeTable) -> None:
        """Charge these payee fees from now on (an auditor's change: ``dfsp.rule_book``)."""
        self._fees = fees
        self._ledger.use_fees(fees)

    # --- payee side ------------------------------------------------------------------

    async def receiver(self, user_number: str) -> dict[str, str]:
        customer = await self._customers.by_user_number(user_number)
        if customer is None:
            raise UnknownReceiver(user_number)
        return {
            "userNumber": str(customer.user_number),
            "name": f"{customer.first_name} {customer.last_name}",
            "currency": self.currency,
            "address": dfsp_account_address(self.name, str(customer.user_number)),
        }

    def payee_fee(self, amount: Money, transfer_code: str) -> Money:
        lines = self._fees.payee_fees(_kind(transfer_code), amount, Route.CROSS_DFSP)
        return Money(self.currency, sum(line.amount.minor for line in lines))

    async def issue(
        self,
        *,
        transfer_id: str,
        user_number: str,
        amount: Money,
        transfer_code: str,
        payer_name: str,
        payer_dfsp: str,
        invoice_id: str | None,
    ) -> PaymentRequest:
        await self.receiver(user_number)  # the payee exists now (checked again at prepare)
        details = PaymentDetails(
            transfer_id=transfer_id,
            payee_user_number=user_number,
            amount=amount,
            expires_at=self._clock() + self._window,
            transfer_code=transfer_code,
            payer_name=payer_name,
            payer_dfsp=payer_dfsp,
            invoice_id=invoice_id,
        )
        return self._requests.request(details)

    async def issue_many(
        self,
        orders: Sequence[PaymentOrder],
        *,
        transfer_code: str,
        payer_name: str,
        payer_dfsp: str,
    ) -> list[IssuedPayment | UnknownReceiver]:
        """``receiver``, ``payee_fee`` and ``issue`` of many payments from one payer (a
        bulk batch's rows), the payees read at once; an unknown payee in its place."""
        payees = await self._customers.payees(order.receiver_user_number for order in orders)
        expires_at = self._clock() + self._window
        issued: list[IssuedPayment | UnknownReceiver] = []
        for order in orders:
            payee = payees.get(order.receiver_user_number)
            if payee is None:
                issued.append(UnknownReceiver(order.receiver_user_number))
                continue
            details = PaymentDetails(
                transfer_id=order.transfer_id,
                payee_user_number=str(payee.customer.user_number),
                amount=order.amount,
                expires_at=expires_at,
                transfer_code=transfer_code,
                payer_name=payer_name,
                payer_dfsp=payer_dfsp,
                invoice_id=None,
            )
            fee = self.payee_fee(order.amount, transfer_code)
            request = self._requests.request(details)
            issued.append(IssuedPayment(payee.customer.name, fee, request))
        return issued

    async def announce(self, url: str) -> None:
        """Register this DFSP's interledger base URL with the central directory."""
        await self._directory.set_endpoint(url)

    # --- invoices across DFSPs ----------------------------------------------------------

    async def send_invoice(
        self,
        buyer: RemoteReceiver,
        *,
        invoice_id: str,
        merchant_name: str,
        merchant_user_number: str,
        amount: Money,
        memo: str,
    ) -> str:
        """Tell the buyer's DFSP of a merchant's invoice here; its reference there."""
        try:
            return await self._peers.send_invoice(
                buyer.endpoint,
                invoice_id=invoice_id,
                merchant_dfsp=self.name,
                merchant_name=merchant_name,
                merchant_user_number=merchant_user_number,
                buyer_user_number=buyer.user_number,
                amount=amount,
                memo=memo,
            )
        except PeerRefused as error:
            if error.status == 404:  # no longer a customer there
                raise UnknownReceiver(buyer.user_number) from None
            raise ClearingUnavailable(str(error)) from None
        except OSError as error:
            raise ClearingUnavailable(str(error)) from None

    async def reject_invoice(self, merchant: RemoteReceiver, invoice_id: str) -> str:
        """Tell the merchant's DFSP the buyer refused its invoice ``invoice_id``."""
        try:
            return await self._peers.reject_invoice(merchant.endpoint, invoice_id, self.name)
        except (PeerRefused, OSError) as error:
            raise ClearingUnavailable(str(error)) from None

    # --- payer side ------------------------------------------------------------------

    async def remote_receiver(self, user_number: str) -> RemoteReceiver:
        try:
            entry = await self._directory.lookup(user_number)
        except CentralError as error:
            if error.status == 404:
                raise UnknownReceiver(user_number) from None
            raise ClearingUnavailable(str(error)) from None
        except OSError as error:
            raise ClearingUnavailable(str(error)) from None
        if entry.dfsp == self.name:  # listed here, but no longer a customer here
            raise UnknownReceiver(user_number)
        endpoint = endpoint_of(entry.spsp_receiver)
        try:
            receiver = await self._peers.receiver(endpoint, user_number)
        except PeerRefused as error:
            if error.status == 404:
                raise UnknownReceiver(user_number) from None
            raise ClearingUnavailable(str(error)) from None
        except OSError as error:
            raise ClearingUnavailable(str(error)) from None
        return RemoteReceiver(user_number, receiver.name, entry.dfsp, endpoint)

    async def fees_for(
        self, receiver: RemoteReceiver, sender_user_number: str, amount: Money, transfer_code: str
    ) -> tuple[Money, Money]:
        """The payee DFSP's receiver fee and the centre's scheme fee, once the centre's
        rules allow the transfer."""
        try:
            eligibility = await self._rules.check_transfer(
                sender_user_number, receiver.user_number, amount
            )
            if not eligibility.allowed:
                raise TransferNotAllowed(eligibility.code or "", eligibility.message or "")
            scheme_fee = await self._rules.scheme_fee(amount, self.name, receiver.dfsp)
            payee_fee = await self._peers.payee_fee(
                receiver.endpoint, receiver.user_number, amount, transfer_code
            )
        except (CentralError, PeerRefused, OSError) as error:
            raise ClearingUnavailable(str(error)) from None
        return payee_fee, scheme_fee

    async def request_payment(
        self,
        *,
        transfer_id: str,
        receiver: RemoteReceiver,
        amount: Money,
        scheme_fee: Money,
        payer_name: str,
        transfer_code: str,
        invoice_id: str | None = None,
    ) -> Outgoing:
        """Ask the payee's DFSP for a payment request (nothing is held or stored there:
        asking again for the same transfer id is harmless); the payment to ``hold``."""
        try:
            issued = await self._peers.payment_request(
                receiver.endpoint,
                transfer_id=transfer_id,
                user_number=receiver.user_number,
                amount=amount,
                transfer_code=transfer_code,
                payer_name=payer_name,
                payer_dfsp=self.name,
                invoice_id=invoice_id,
            )
        except PeerRefused as error:
            if error.status == 404:
                raise UnknownReceiver(receiver.user_number) from None
            raise ClearingUnavailable(str(error)) from None
        except OSError as error:
            raise ClearingUnavailable(str(error)) from None
        return Outgoing(
            transfer_id=transfer_id,
            payee_dfsp=receiver.dfsp,
            amount=amount,
            scheme_fee=scheme_fee,
            packet=issued.packet,
            condition=issued.condition,
            expires_at=issued.expires_at,
        )

    async def bulk_payments(
        self, sender_user_number: str, payer_name: str, orders: Sequence[PaymentOrder]
    ) -> list[RemotePayment | PaymentError]:
        """What ``remote_receiver``, ``fees_for`` and ``request_payment`` give one payment,
        for each of many ``bulk`` payments from one payer to customers of other DFSPs:
        one call to the directory, one to the centre's rules and one to each payee's
        DFSP. A refused order has its refusal in its place; ``ClearingUnavailable`` when
        the centre cannot be reached."""
        try:
            entries = await self._directory.lookup_many(o.receiver_user_number for o in orders)
            checks = await self._rules.check_transfers(
                sender_user_number, [(o.receiver_user_number, o.amount) for o in orders]
            )
        except (CentralError, OSError) as error:
            raise ClearingUnavailable(str(error)) from None
        outcomes: dict[int, RemotePayment | PaymentError] = {}
        asked: dict[tuple[str, str], list[int]] = {}  # (DFSP, endpoint) -> order indexes
        for index, (order, check) in enumerate(zip(orders, checks, strict=True)):
            entry = entries.get(order.receiver_user_number)
            if entry is None or entry.dfsp == self.name:
                outcomes[index] = UnknownReceiver(order.receiver_user_number)
            elif not check.eligibility.allowed or check.scheme_fee is None:
                refusal = check.eligibility
                outcomes[index] = TransferNotAllowed(refusal.code or "", refusal.message or "")
            else:
                key = (entry.dfsp, endpoint_of(entry.spsp_receiver))
                asked.setdefault(key, []).append(index)
        for (dfsp, endpoint), indexes in asked.items():
            answers = await self._payment_requests(
                endpoint, [orders[i] for i in indexes], payer_name
            )
            for index, answer in zip(indexes, answers, strict=True):
                scheme_fee = checks[index].scheme_fee
                assert scheme_fee is not None
                outcomes[index] = _remote_payment(orders[index], dfsp, endpoint, answer, scheme_fee)
        return [outcomes[index] for index in range(len(orders))]

    async def _payment_requests(
        self, endpoint: str, orders: Sequence[PaymentOrder], payer_name: str
    ) -> list[BatchRequest | PaymentError]:
        """The payee DFSP's answers; each order unavailable when it cannot answer."""
        try:
            answers = await self._peers.payment_requests(
                endpoint,
                [(o.transfer_id, o.receiver_user_number, o.amount) for o in orders],
                transfer_code="p2p",
                payer_name=payer_name,
                payer_dfsp=self.name,
            )
        except (PeerRefused, OSError) as error:
            return [ClearingUnavailable(str(error)) for _ in orders]
        return [
            answer if isinstance(answer, BatchRequest) else _refusal_of(answer, order)
            for answer, order in zip(answers, orders, strict=True)
        ]

    async def hold(
        self,
        outgoing: Outgoing,
        *,
        local_fee: Money,
        payer_ledger_account: str,
        transfer_code: str,
        memo: Mapping[str, Any],
    ) -> None:
        """Hold the payer's funds for ``outgoing`` in this DFSP's ledger (the limits
        count it from now on); ``clear`` then sends it through the centre."""
        await self._ledger.hold_payment(
            outgoing,
            payer_account=payer_ledger_account,
            local_fee_minor=local_fee.minor,
            kind=_kind(transfer_code).value,
            memo=memo,
        )

    async def hold_bulk(self, holds: Sequence[PaymentHold]) -> list[Transfer | LedgerError]:
        """``hold`` of many ``bulk`` payments in one ledger transaction (each refusal in
        its place); ``clear`` then sends each through the centre."""
        return await self._ledger.hold_payments(holds, kind=TransactionType.BULK.value)

    async def clear_many(self, outgoings: Sequence[Outgoing]) -> list[TransferState | Exception]:
        """``clear`` of many held payments, their prepares in one call to the centre;
        each one's state, or what its ``clear`` would raise, in its place."""
        states = await self.connector.send_many(outgoings)
        return [_cleared(state) for state in states]

    async def clear(self, outgoing: Outgoing) -> str:
        """Clear a held payment through the centre; the state reached
        (``clearing.connector.Connector.send``)."""
        try:
            return await self.connector.send(outgoing)
        except CentralRefused as refused:
            if refused.id == NET_DEBIT_CAP_EXCEEDED:
                raise NetDebitCapReached(str(refused)) from None
            raise


@dataclass(frozen=True)
class RemotePayment:
    """One of ``Interledger.bulk_payments``: who is paid, the fees, what to hold."""

    receiver: RemoteReceiver
    payee_fee: Money
    outgoing: Outgoing


def _remote_payment(
    order: PaymentOrder,
    dfsp: str,
    endpoint: str,
    answer: BatchRequest | PaymentError,
    scheme_fee: Money,
) -> RemotePayment | PaymentError:
    if not isinstance(answer, BatchRequest):
        return answer
    receiver = RemoteReceiver(order.receiver_user_number, answer.name, dfsp, endpoint)
    outgoing = Outgoing(
        transfer_id=order.transfer_id,
        payee_dfsp=dfsp,
        amount=order.amount,
        scheme_fee=scheme_fee,
        packet=answer.issued.packet,
        condition=answer.issued.condition,
        expires_at=answer.issued.expires_at,
    )
    return RemotePayment(receiver, answer.payee_fee, outgoing)


def _cleared(state: str | BaseException) -> TransferState | Exception:
    if isinstance(state, CentralRefused) and state.id == NET_DEBIT_CAP_EXCEEDED:
        return NetDebitCapReached(str(state))
    if isinstance(state, Exception):
        return state
    if isinstance(state, BaseException):  # a cancellation: not one payment's outcome
        raise state
    return TransferState(state)


def _refusal_of(refused: PeerRefused, order: PaymentOrder) -> PaymentError:
    if refused.status == 404:
        return UnknownReceiver(order.receiver_user_number)
    return ClearingUnavailable(str(refused))


def _kind(transfer_code: str) -> TransactionType:
    return TransactionType.INVOICE if transfer_code == "invoice" else TransactionType.P2P


class InvoiceHooks(Protocol):
    """What a payment through the centre that pays an invoice does to the invoices."""

    async def credited(self, invoice_id: str, transfer_id: str) -> Notice | None:
        """Merchant side: the credit of ``transfer_id`` paid the invoice; what the
        merchant is told instead of ``received`` (None: no such invoice here)."""

    async def debited(
        self, merchant_dfsp: str, invoice_id: str, transfer_id: str, state: str
    ) -> None:
        """Buyer side: the payment of that DFSP's invoice was decided (``state``)."""


class ClearingNotices:
    """What the customers are told once a payment through the centre is decided here
    (the connector's ``on_final``): the payer ``sent`` or ``send_failed`` (not the payer
    of a bulk row: its hold's memo says ``bulk``), the payee ``received`` (or, for an
    invoice, the merchant ``invoice_paid``, through ``invoices``); keys as for payments
    inside the DFSP, so a repeat posts nothing."""

    def __init__(self, ledger: Ledger, notices: NoticeSink | None) -> None:
        self._ledger = ledger
        self._notices = notices
        self.invoices: InvoiceHooks | None = None

    async def __call__(self, decided: Sequence[tuple[str, str, Transfer | None]]) -> None:
        """Tell the customers of each decided payment (transfer id, final state, the
        transfer as the ledger holds it when the caller has it: only its memo and
        postings are read, which a decision keeps); the balances told read at once, the
        notices posted at once."""
        told: list[tuple[Notice, str | None]] = []  # each with the account whose balance
        for transfer_id, state, held in decided:
            transfer = held or await self._ledger.transfer(transfer_id)
            paid = await self._invoice_decided(transfer_id, state, transfer.memo or {})
            if paid is not None:
                told.append((paid, None))
            elif (notice := _clearing_notice(transfer_id, state, transfer)) is not None:
                told.append(notice)
        if self._notices is None or not told:
            return
        accounts = await self._ledger.accounts_among(a for _, a in told if a is not None)
        balances = {a: account.available.with_currency() for a, account in accounts.items()}
        notices = [
            n if a is None else replace(n, args={**n.args, "balance": balances[a]}) for n, a in told
        ]
        await self._notices.post(notices)

    async def _invoice_decided(
        self, transfer_id: str, state: str, memo: Mapping[str, Any]
    ) -> Notice | None:
        invoice_id = memo.get("invoice_id")
        if self.invoices is None or not invoice_id:
            return None
        if memo.get("clearing") == PAYER:
            payee_dfsp = str(memo["payee_dfsp"])
            await self.invoices.debited(payee_dfsp, str(invoice_id), transfer_id, state)
        elif memo.get("clearing") == PAYEE and state == TransferState.EXECUTED.value:
            return await self.invoices.credited(str(invoice_id), transfer_id)
        return None


def _clearing_notice(
    transfer_id: str, state: str, transfer: Transfer
) -> tuple[Notice, str | None] | None:
    """What the payer (not of a bulk row: its batch's report tells them) or the payee is
    told of a decided payment, without the balance, and the ledger account whose
    available balance it tells (None: no balance); None: nothing to tell."""
    memo = transfer.memo or {}
    principal = transfer.postings[0]
    currency = transfer.amount.currency
    executed = state == TransferState.EXECUTED.value
    if memo.get("clearing") == PAYER and not memo.get("bulk"):
        amount = Money(currency, int(memo.get("principal_minor", principal.amount_minor)))
        args = {"amount": amount.with_currency(), "receiver": str(memo.get("receiver_name", ""))}
        customer = str(memo["sender"])
        if not executed:
            return Notice(f"transfer:{transfer_id}:failed", customer, "send_failed", args), None
        fees = sum(p.amount_minor for p in transfer.postings[1:])
        args["fee"] = Money(currency, fees).with_currency()
        sent = Notice(f"transfer:{transfer_id}:sender", customer, "sent", args)
        return sent, principal.debit_account
    if memo.get("clearing") == PAYEE and executed:
        args = {
            "amount": Money(currency, principal.amount_minor).with_currency(),
            "sender": str(memo.get("sender_name", "")),
        }
        customer = str(memo["receiver"])
        received = Notice(f"transfer:{transfer_id}:receiver", customer, "received", args)
        return received, principal.credit_account
    return None


@dataclass(frozen=True)
class CentralLink:
    """Where this DFSP reaches the centre, and the credentials the operator issued."""

    url: str
    key: str
    secret: str


class DirectoryUserNumbers:
    """User numbers from the central directory (``dfsp.domain.customers.UserNumbers``):
    unique across the network, and the directory knows this DFSP has the user."""

    def __init__(self, directory: DirectoryClient) -> None:
        self._directory = directory

    async def allocate(self, msisdn: str, name: str, given: UserNumber | None) -> UserNumber:
        try:
            number = await self._directory.register_user(
                name, None if given is None else str(given)
            )
        except CentralError as error:
            if error.id == "FraudViolationError":
                raise RegistrationRefused(str(error)) from None
            if error.status == 404:
                raise InvalidIdentifier(f"no user number {given} in the directory") from None
            if error.status == 409:
                raise UserNumberTaken(str(given)) from None
            raise ClearingUnavailable(str(error)) from None
        except (aiohttp.ClientError, OSError) as error:
            raise ClearingUnavailable(str(error)) from None
        return UserNumber.parse(number)

    async def release(self, number: UserNumber) -> None:
        try:
            await self._directory.remove_dfsp(str(number))
        except CentralError as error:
            if error.status != 404:
                raise


def central_http(link: CentralLink, http: aiohttp.ClientSession) -> CentralHttp:
    return CentralHttp(link.url, http, link.key, link.secret)


def fraud_screen(central: CentralHttp) -> Screen:
    """The centre's fraud sharing as the payees' screening: a blacklisted user, or one
    scored 100, may not receive; when the service cannot answer, no one is paid (the
    centre is needed to fulfil anyway)."""
    fraud = FraudClient(central)

    async def screen(user_numbers: Sequence[str]) -> dict[str, str]:
        try:
            users = await fraud.users(user_numbers)
        except CentralError as error:
            return dict.fromkeys(user_numbers, f"fraud screening unavailable ({error.id})")
        except (aiohttp.ClientError, OSError) as error:
            return dict.fromkeys(user_numbers, f"fraud screening unavailable ({error})")
        return {
            number: user.reason or f"fraud score {user.score}"
            for number, user in users.items()
            if user.blocked
        }

    return screen


async def build_interledger(
    name: str,
    currency: str,
    central: CentralHttp,
    http: aiohttp.ClientSession,
    sessions: async_sessionmaker[AsyncSession],
    ledger: Ledger,
    customers: Customers,
    fees: FeeTable,
    notices: NoticeSink | None,
    *,
    fee_account: str,
    clock: Clock,
    payment_window: timedelta = PAYMENT_WINDOW,
    outcome_wait: float = OUTCOME_WAIT,
) -> Interledger:
    """The DFSP's clearing parts on its database and the centre's API (not started:
    ``Interledger.connector.start()`` once the DFSP's API answers)."""
    await ledger.open_account(
        CLEARING_ACCOUNT,
        currency=currency,
        kind=AccountKind.CLEARING,
        owner=name,
        allow_negative=True,
    )
    state = ClearingState(sessions)
    requests = PaymentRequests(name, await state.secret())
    local = ClearingLedger(
        ledger, customers, fees, fee_account=fee_account, state=state, screen=fraud_screen(central)
    )
    clearing_notices = ClearingNotices(ledger, notices)
    connector = Connector(
        name,
        currency,
        LedgerClient(central),
        local,
        requests,
        clock,
        outcome_wait=outcome_wait,
        on_final=clearing_notices,
    )
    interledger = Interledger(
        name,
        currency,
        customers,
        fees,
        requests,
        local,
        connector,
        DirectoryClient(central),
        RulesClient(central),
        PeerClient(http),
        clock,
        payment_window=payment_window,
    )
    interledger.clearing_notices = clearing_notices
    return interledger
