"""The connector: moves a payment between this DFSP's ledger and the central ledger with
forward holds and backward execution (SPEC section 5), for both roles.

Payer side (``send``): the DFSP holds the payer's funds in its ledger -> prepare the
DFSP-to-DFSP transfer at the centre with the payee DFSP's condition and expiry -> wait
for the outcome: executed (with the fulfilment) commits the local hold, rejected or
expired releases it. The local hold has no deadline of its own that could decide
against the centre: the centre holds the money in flight, so the centre's state
decides ("check before rollback"); only a transfer the centre never saw is released
here, once its expiry has passed.

Payee side (``_on_prepared_many``): a prepared central transfer to this DFSP is checked
against the payment request it carries (recomputed fulfilment, amount, address, enough
time left), the payee is checked (exists, may receive), the credit is held locally,
then the fulfilment goes to the centre first ("receiver wait and pay"); the credit is
committed once the centre has executed, released if it expired or was rejected.

Notifications come over the centre's WebSocket; after a reconnect (and at start) the
connector pulls what it missed after its last cursor and reconciles every transfer its
ledger still holds in flight with the centre's state, then opens the socket after its
cursor (what was written meanwhile comes on the socket), so after any crash or outage
the three ledgers end in the same state.

Notifications are taken in groups: those that arrived while the last group was handled
(at most ``GROUP_LIMIT``; a bulk payment's come in bursts). A group's credits are held in
one ledger transaction, fulfilled in one call to the centre, and its executed transfers
committed in one ledger transaction; a lone payment is a group of one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Generic, Protocol, TypeVar

import aiohttp

from central.client import CentralError
from central.ledger.client import CentralTransfer, LedgerClient, Notification, TransferRequest
from clearing.ilp.conditions import condition_for
from clearing.payment_requests import PaymentDetails, PaymentRequestError, PaymentRequests
from ussdloop.money import Money

log = logging.getLogger(__name__)

FULFIL_MARGIN: Final = timedelta(seconds=1)  # the payee fulfils only with this much time left
OUTCOME_WAIT: Final = 7.0  # seconds the payer's request waits for the final state
RETRY_DELAY: Final = 0.25  # seconds between attempts to reach the centre
RECONNECT_DELAY: Final = 0.5
MAX_RECHECKS: Final = 20  # looks at a payment held here but unknown at the centre
FINISHED_KEPT: Final = 4096  # transfers remembered as finished here (oldest forgotten first)
PULL_LIMIT: Final = 200
GROUP_LIMIT: Final = 100  # notifications handled together (the centre's batch maximum)
PREPARED, EXECUTED, REJECTED, EXPIRED = "prepared", "executed", "rejected", "expired"
FINAL: Final = frozenset({EXECUTED, REJECTED, EXPIRED})
Clock = Callable[[], datetime]
Held = TypeVar("Held")  # a transfer as the DFSP's ledger holds it (opaque here)
HeldOut = TypeVar("HeldOut", covariant=True)  # the same, as what LocalLedger answers
_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)
# What ``on_final`` is told of each transfer decided here: (transfer id, final state, the
# transfer as held here if it was).
Decided = tuple[str, str, Held | None]


class PayeeRefused(Exception):
    """The payee's DFSP will not take this payment; the message is the reason."""


class CentralRefused(Exception):
    """The centre refused the prepare (cap, paused DFSP...): the payer's hold is released."""

    def __init__(self, error: CentralError) -> None:
        super().__init__(str(error))
        self.id = error.id
        self.status = error.status


@dataclass(frozen=True)
class Outgoing:
    """A payment this DFSP sends: what the payee's DFSP asked for, and the fees."""

    transfer_id: str
    payee_dfsp: str
    amount: Money  # what crosses the centre to the payee's DFSP
    scheme_fee: Money
    packet: bytes
    condition: bytes
    expires_at: datetime  # the central transfer's expiry (the payee's DFSP chose it)


class LocalLedger(Protocol[HeldOut]):
    """What the connector needs from its DFSP's ledger; every call is idempotent on
    the transfer id (the DFSP decides the postings: payer, fees, its clearing account).
    A payment's funds are held by the DFSP itself before ``Connector.send``, under its
    PIN and limit checks."""

    async def hold_credits(
        self, credits: Sequence[tuple[str, PaymentDetails]]
    ) -> Sequence[Exception | None]:
        """Check each payee and hold each credit (transfer id, payment request) from the
        clearing account, together; in each one's place None (held) or why the payee's
        DFSP refuses it (PayeeRefused)."""

    async def commit_many(self, transfer_ids: Sequence[str]) -> Sequence[HeldOut | Exception]:
        """Execute the holds (those still prepared) together; in each one's place the
        transfer as held here, or the error (e.g. never held here)."""

    async def release(self, transfer_id: str, reason: str) -> HeldOut | None:
        """Release the hold (if still prepared); the transfer as held here, None when
        this ledger never held it (a payee refused before its credit was held)."""

    async def in_flight(self) -> list[str]:
        """Ids of the clearing transfers still prepared in this ledger."""

    async def deadline(self, transfer_id: str) -> datetime | None:
        """The central expiry of a payment held here (None for a held credit)."""

    async def load_cursor(self) -> int: ...

    async def save_cursor(self, seq: int) -> None: ...


class Connector(Generic[Held]):
    def __init__(
        self,
        dfsp: str,
        currency: str,
        central: LedgerClient,
        local: LocalLedger[Held],
        requests: PaymentRequests,
        clock: Clock,
        *,
        outcome_wait: float = OUTCOME_WAIT,
        on_final: Callable[[Sequence[Decided[Held]]], Awaitable[None]] | None = None,
    ) -> None:
        self.dfsp = dfsp
        self.currency = currency
        self._central = central
        self._local = local
        self._requests = requests
        self._clock = clock
        self._outcome_wait = outcome_wait
        self._on_final = on_final  # told of the transfers decided here: e.g. tell customers
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._rechecks: dict[str, asyncio.Task[None]] = {}  # payments unknown at the centre
        # Transfers brought to their final central state here (ledger and on_final):
        # a final state never changes, so the same state again (the payee's fulfil
        # answer, then its notification) has nothing left to do. Forgetting one only
        # redoes idempotent work (a restart, the oldest past FINISHED_KEPT).
        self._finished: dict[str, None] = {}
        self.connected = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        task, self._task = self._task, None
        tasks = [*self._rechecks.values(), *([task] if task is not None else [])]
        self._rechecks.clear()
        for each in tasks:
            each.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- payer side --------------------------------------------------------------------

    async def send_many(self, outgoings: Sequence[Outgoing]) -> list[str | BaseException]:
        """``send`` of many payments (a bulk payment's), their prepares in one call to the
        centre; each one's state, or what its ``send`` raised, in its place."""
        # Waited for before the prepares, as ``send`` does: an outcome may come first.
        waits = [self._wait_for(outgoing.transfer_id) for outgoing in outgoings]
        answers: dict[str, CentralTransfer | CentralError] = {}
        try:
            requests = [self._request(outgoing) for outgoing in outgoings]
            for request, answer in zip(
                requests, await self._central.prepare_many(requests), strict=True
            ):
                answers[request.id] = answer
        except (CentralError, *_UNREACHABLE) as error:  # each send prepares on its own
            log.info("event=clearing_batch_prepare_failed error=%r", error)
        except BaseException:
            for outgoing, (first, _) in zip(outgoings, waits, strict=True):
                if first:
                    self._waiting.pop(outgoing.transfer_id, None)
            raise
        sends = (
            self._send(outgoing, first, waiting, answers.get(outgoing.transfer_id))
            for outgoing, (first, waiting) in zip(outgoings, waits, strict=True)
        )
        return await asyncio.gather(*sends, return_exceptions=True)

    async def send(self, outgoing: Outgoing) -> str:
        """Prepare at the centre the payment whose funds this DFSP holds, and wait (at
        most ``outcome_wait`` seconds) for the outcome; the state then: executed,
        rejected, expired or still prepared (the connector finishes it in the background
        and ``on_final`` is told)."""
        first, waiting = self._wait_for(outgoing.transfer_id)
        return await self._send(outgoing, first, waiting, None)

    def _wait_for(self, transfer_id: str) -> tuple[bool, asyncio.Future[str]]:
        """The future the outcome resolves; whether this call made it (a retry shares
        the first one's)."""
        first = transfer_id not in self._waiting
        waiting = self._waiting.setdefault(transfer_id, asyncio.get_running_loop().create_future())
        return first, waiting

    async def _send(
        self,
        outgoing: Outgoing,
        first: bool,
        waiting: asyncio.Future[str],
        prepared: CentralTransfer | CentralError | None,
    ) -> str:
        """``send`` once its outcome is waited for; ``prepared``: the centre's answer to
        its prepare, when a batch asked already."""
        try:
            transfer = await self._prepare(outgoing, prepared)
            if transfer is None:  # not prepared before the expiry; a lost answer may have
                try:
                    transfer = await self._lookup(outgoing.transfer_id)
                except _UNREACHABLE:
                    return PREPARED  # in flight until the centre answers (reconcile)
            if transfer is None:
                await self._finish_payer(outgoing.transfer_id, EXPIRED, "centre not reached")
                return EXPIRED
            if transfer.state in FINAL:
                await self._settle(transfer)
            try:
                return await asyncio.wait_for(asyncio.shield(waiting), self._outcome_wait)
            except TimeoutError:
                return await self._poll_once(outgoing.transfer_id)
        finally:
            if first or waiting.done():  # nobody waits for it any more
                self._waiting.pop(outgoing.transfer_id, None)

    def _request(self, outgoing: Outgoing) -> TransferRequest:
        return TransferRequest(
            id=outgoing.transfer_id,
            payer=self.dfsp,
            payee=outgoing.payee_dfsp,
            amount=outgoing.amount,
            scheme_fee=outgoing.scheme_fee,
            condition=outgoing.condition,
            expires_at=outgoing.expires_at,
            memo={"ilpPacket": outgoing.packet.hex()},
        )

    async def _prepare(
        self, outgoing: Outgoing, answered: CentralTransfer | CentralError | None = None
    ) -> CentralTransfer | None:
        """The centre's transfer once prepared (None: not before the expiry); a refusal
        releases the hold. ``answered``: the centre's answer to a batch prepare."""
        while self._clock() < outgoing.expires_at:
            try:
                if isinstance(answered, CentralTransfer):
                    return answered
                if answered is not None:
                    raise answered
                return await self._central.prepare(self._request(outgoing))
            except CentralError as error:
                answered = None  # asked again on its own
                if error.status >= 500:
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                await self._finish_payer(outgoing.transfer_id, REJECTED, str(error))
                raise CentralRefused(error) from None
            except _UNREACHABLE:
                await asyncio.sleep(RETRY_DELAY)
        return None

    async def _poll_once(self, transfer_id: str) -> str:
        try:
            transfer = await self._lookup(transfer_id)
        except _UNREACHABLE:
            return PREPARED
        if transfer is None:
            return PREPARED
        await self._settle(transfer)
        return transfer.state

    async def _lookup(self, transfer_id: str) -> CentralTransfer | None:
        """The centre's transfer, None when it does not know it; raises when the centre
        cannot be reached (then nothing may be decided)."""
        try:
            return await self._central.get(transfer_id)
        except CentralError as error:
            if error.status == 404:
                return None
            if error.status >= 500:
                raise ConnectionError(str(error)) from None
            raise

    # --- both sides: a central state reached us ---------------------------------------

    async def _settle(self, transfer: CentralTransfer) -> None:
        """Bring this ledger to ``transfer``'s state (idempotent)."""
        await self._settle_many([transfer])

    async def _settle_many(self, transfers: Sequence[CentralTransfer]) -> None:
        """Bring this ledger to each transfer's state (idempotent): those prepared to this
        DFSP are taken (``_on_prepared_many``), those decided at the centre decided here."""
        offered = {t.id: t for t in transfers if t.payee == self.dfsp and t.state == PREPARED}
        if offered:
            await self._on_prepared_many(list(offered.values()))
        decisions: dict[str, _Decision] = {}
        for transfer in transfers:
            if transfer.state not in FINAL:
                continue
            if transfer.id in self._finished:
                self._resolve(transfer.id, transfer.state)  # a retried send waits for it
                continue
            reason = transfer.reason or transfer.state
            payee = transfer.payee == self.dfsp
            decisions.setdefault(transfer.id, _Decision(transfer.id, transfer.state, reason, payee))
        await self._decide_here(list(decisions.values()), remember=True)

    async def _finish_payer(self, transfer_id: str, state: str, reason: str) -> None:
        """Decide a payment here that the centre will not decide (refused, never seen)."""
        await self._decide_here([_Decision(transfer_id, state, reason or state, payee=False)])

    async def _decide_here(self, decisions: Sequence[_Decision], *, remember: bool = False) -> None:
        """Commit the executed holds (in one ledger transaction) and release the others,
        then resolve the sends waiting and tell ``on_final``; with ``remember``, these are
        the centre's final states. A commit that fails is raised once the rest is done."""
        held: dict[str, Held | None] = {}
        failures: list[Exception] = []
        executed = [d.transfer_id for d in decisions if d.state == EXECUTED]
        if executed:
            for transfer_id, outcome in zip(
                executed, await self._local.commit_many(executed), strict=True
            ):
                if isinstance(outcome, Exception):
                    failures.append(outcome)
                else:
                    held[transfer_id] = outcome
        for decision in decisions:
            if decision.state != EXECUTED:
                held[decision.transfer_id] = await self._local.release(
                    decision.transfer_id, decision.reason
                )
        told: list[Decided[Held]] = []
        for decision in decisions:
            if decision.transfer_id not in held:
                continue  # its commit failed
            found = held[decision.transfer_id]
            self._resolve(decision.transfer_id, decision.state)
            if found is None and decision.payee:
                continue  # refused before anything was held here: no one to tell
            told.append((decision.transfer_id, decision.state, found))
            if remember:
                self._remember_finished(decision.transfer_id)
        if told and self._on_final is not None:
            await self._on_final(told)
        if failures:
            raise failures[0]

    def _remember_finished(self, transfer_id: str) -> None:
        self._finished[transfer_id] = None
        if len(self._finished) > FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    def _resolve(self, transfer_id: str, state: str) -> None:
        waiting = self._waiting.get(transfer_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(state)

    # --- payee side ----------------------------------------------------------------

    async def _on_prepared_many(self, transfers: Sequence[CentralTransfer]) -> None:
        """Check each, hold the credits (together), fulfil at the centre (in one call),
        then commit (or release)."""
        credits: list[tuple[CentralTransfer, bytes, PaymentDetails]] = []
        for transfer in transfers:
            packet = bytes.fromhex(str(transfer.memo.get("ilpPacket", "")))
            try:
                details = self._requests.read(packet, self.currency)
                self._check(transfer, packet, details)
            except ValueError as error:  # PaymentRequestError among them
                await self._refuse(transfer, error)
                continue
            credits.append((transfer, packet, details))
        if not credits:
            return
        refusals = await self._local.hold_credits([(t.id, d) for t, _, d in credits])
        fulfilments: dict[str, tuple[CentralTransfer, bytes]] = {}
        for (transfer, packet, _), refusal in zip(credits, refusals, strict=True):
            if refusal is not None:
                await self._refuse(transfer, refusal)
            else:
                fulfilments[transfer.id] = (transfer, self._requests.fulfilment(packet))
        if fulfilments:
            await self._fulfil_many(fulfilments)

    async def _refuse(self, transfer: CentralTransfer, reason: Exception) -> None:
        log.info("event=clearing_payee_refused transfer_id=%s reason=%s", transfer.id, reason)
        await self._reject_at_centre(transfer.id, str(reason))

    async def _fulfil_many(self, pending: dict[str, tuple[CentralTransfer, bytes]]) -> None:
        """Fulfil the held credits at the centre (retrying while it cannot answer, each
        until its expiry), and settle what it answers; one it refused, or one too late,
        is settled by the centre's state ("receiver wait and pay")."""
        undecided: list[str] = []
        while pending:
            due = {i: each for i, each in pending.items() if self._clock() < each[0].expires_at}
            undecided += [transfer_id for transfer_id in pending if transfer_id not in due]
            pending = due
            if not pending:
                break
            try:
                answers = await self._central.fulfil_many(
                    [(transfer_id, fulfilment) for transfer_id, (_, fulfilment) in due.items()]
                )
            except CentralError as error:
                if error.status >= 500:
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                undecided += list(pending)  # refused whole: the centre's state decides
                break
            except _UNREACHABLE:
                await asyncio.sleep(RETRY_DELAY)
                continue
            executed = []
            for transfer_id, answer in zip(list(due), answers, strict=True):
                if isinstance(answer, CentralTransfer):
                    executed.append(answer)
                    del pending[transfer_id]
                elif answer.status < 500:  # too late or refused: the centre's state decides
                    undecided.append(transfer_id)
                    del pending[transfer_id]
            await self._settle_many(executed)
            if pending:
                await asyncio.sleep(RETRY_DELAY)
        await self._settle_by_the_centre(undecided)

    async def _settle_by_the_centre(self, transfer_ids: Sequence[str]) -> None:
        """Settle the transfers the centre decided (those it has not, or those left when
        it cannot be reached: reconciliation)."""
        decided = []
        for transfer_id in transfer_ids:
            try:
                found = await self._lookup(transfer_id)
            except _UNREACHABLE:
                break
            if found is not None and found.state in FINAL:
                decided.append(found)
        await self._settle_many(decided)

    def _check(self, transfer: CentralTransfer, packet: bytes, details: PaymentDetails) -> None:
        if condition_for(self._requests.fulfilment(packet)) != transfer.condition:
            raise PaymentRequestError("the condition is not this DFSP's")
        if details.transfer_id != transfer.id or details.amount != transfer.amount:
            raise PaymentRequestError("the transfer does not match the payment request")
        if transfer.expires_at - self._clock() < FULFIL_MARGIN:
            raise PaymentRequestError("too little time left to fulfil")

    async def _reject_at_centre(self, transfer_id: str, reason: str) -> None:
        try:
            await self._central.reject(transfer_id, reason[:200])
        except (CentralError, *_UNREACHABLE) as error:
            log.warning("event=clearing_reject_failed transfer_id=%s error=%s", transfer_id, error)

    # --- notifications and reconciliation ---------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                await self.reconcile()
                # After the cursor, not after the latest: a notification written between
                # the pull and the socket's opening is sent on the socket.
                after = await self._local.load_cursor()
                await self._handle_stream(self._central.subscribe(after=after))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the centre is down or the socket broke
                log.info("event=clearing_disconnected error=%r", error)
            self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _handle_stream(self, notifications: AsyncIterator[Notification]) -> None:
        """Handle the socket's notifications in groups, each of those that arrived while
        the one before was handled, until the socket ends (raising what ended it)."""
        arrived: asyncio.Queue[Notification | None] = asyncio.Queue()  # None: the end
        reader = asyncio.ensure_future(_read_into(notifications, arrived))
        try:
            while True:
                group = [await arrived.get()]
                while len(group) < GROUP_LIMIT and not arrived.empty():
                    group.append(arrived.get_nowait())
                received = [notification for notification in group if notification is not None]
                if received:
                    self.connected.set()
                    await self._handle(received)
                if len(received) < len(group):  # the end came
                    await reader
                    return
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def reconcile(self) -> None:
        """Pull the notifications missed since the cursor, then settle every transfer
        still in flight here by the centre's state."""
        cursor = await self._local.load_cursor()
        while True:
            missed = await self._central.notifications_after(cursor, PULL_LIMIT)
            for first in range(0, len(missed), GROUP_LIMIT):
                await self._handle(missed[first : first + GROUP_LIMIT])
            if len(missed) < PULL_LIMIT:
                break
            cursor = missed[-1].seq
        for transfer_id in await self._local.in_flight():
            await self._reconcile_one(transfer_id)  # unreachable: try again later

    async def _reconcile_one(self, transfer_id: str, *, schedule: bool = True) -> bool:
        """Settle by the centre's state; False while a payment held here is unknown at
        the centre before its deadline (then, with ``schedule``, looked at again later)."""
        transfer = await self._lookup(transfer_id)
        if transfer is not None:
            await self._settle(transfer)
            return True
        deadline = await self._local.deadline(transfer_id)
        if deadline is None:
            return True
        if self._clock() >= deadline:
            # The centre refuses prepares past their expiry: it never will have it.
            await self._finish_payer(transfer_id, EXPIRED, "never prepared at the centre")
            return True
        if schedule and transfer_id not in self._rechecks:
            # Held here, not (yet) at the centre, and perhaps no send of this process
            # prepares it (held before a restart): look again once its deadline passed.
            delay = (deadline - self._clock()).total_seconds() + RETRY_DELAY
            self._rechecks[transfer_id] = asyncio.ensure_future(self._recheck(transfer_id, delay))
        return False

    async def _recheck(self, transfer_id: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            for _ in range(MAX_RECHECKS):
                try:
                    if await self._reconcile_one(transfer_id, schedule=False):
                        return
                except Exception as error:  # the centre is away
                    log.info(
                        "event=clearing_recheck_failed transfer_id=%s error=%r", transfer_id, error
                    )
                await asyncio.sleep(RECONNECT_DELAY)
            # Still undecided: the reconcile after the next reconnect decides.
        finally:
            if self._rechecks.get(transfer_id) is asyncio.current_task():
                del self._rechecks[transfer_id]

    async def _handle(self, notifications: Sequence[Notification]) -> None:
        try:
            await self._settle_many([notification.transfer for notification in notifications])
        finally:
            await self._local.save_cursor(notifications[-1].seq)


@dataclass(frozen=True)
class _Decision:
    """A final state to bring a transfer to here, and why (a release's reason)."""

    transfer_id: str
    state: str
    reason: str
    payee: bool  # this DFSP is the transfer's payee


async def _read_into(
    notifications: AsyncIterator[Notification], arrived: asyncio.Queue[Notification | None]
) -> None:
    """Queue the notifications as they come (unbounded: the handler takes all it finds),
    then None when they end."""
    try:
        async for notification in notifications:
            arrived.put_nowait(notification)
    finally:
        arrived.put_nowait(None)
