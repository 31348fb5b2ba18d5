"""The auditor's desk use cases (``dfsp.auditing``) on a DFSP of its own (no centre; the
sharing with the central fraud service is ``tests/integration/clearing/
test_blacklist_sharing.py``): look-ups, fraud checks and the never-checked list,
blacklisting (a blacklisted customer neither sends nor receives, nor is a bulk payee),
tier changes, and every refusal changing nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest

from dfsp.audit_store import CheckAction
from dfsp.auditing import Auditing, BadAuditInput, NotAuditor, OwnRecord
from dfsp.domain.bulk import RowState
from dfsp.domain.customers import Customer, UnknownCustomer
from dfsp.domain.payments import ReceiverBlocked, SenderBlocked
from dfsp.domain.tiers import UnknownTier
from tests.integration.conftest import Database
from tests.integration.dfsp.test_bulk import HEADER, PIN, Net, line, open_net, usd
from tests.support import asyncio_test


@dataclass
class Desk:
    net: Net
    auditing: Auditing
    auditor: Customer

    async def customer(self, who: Customer) -> Customer:
        return await self.net.customers.customer(who.id)

    async def send(self, sender: Customer, receiver: Customer, amount: str = "5") -> None:
        account = (await self.net.customers.accounts_of(sender.id))[0]
        quote = await self.net.payments.quote_send(
            sender.id, account.id, str(receiver.user_number), usd(amount)
        )
        await self.net.payments.send(quote, PIN, str(uuid.uuid4()))


@asynccontextmanager
async def open_desk(database: Database) -> AsyncIterator[Desk]:
    async with open_net(database) as net:
        auditor = await net.register(40, first_name="Audra", last_name="Lorde")
        auditing = Auditing(
            net.bulk._sessions, net.customers, net.ledger, net.payments, clock=net.clock
        )
        await auditing.grant_auditor(auditor.id)
        yield Desk(net, auditing, auditor)


@asyncio_test
async def test_a_customer_is_found_by_user_number_msisdn_or_national_id(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        ann = desk.net.payees[0]
        namesake = await desk.net.register(41, first_name="Other", national_id=ann.national_id)
        find = desk.auditing.find
        assert [c.id for c in await find(desk.auditor, str(ann.user_number))] == [ann.id]
        assert [c.id for c in await find(desk.auditor, f"+{ann.msisdn}")] == [ann.id]
        assert [c.id for c in await find(desk.auditor, ann.msisdn)] == [ann.id]
        by_id = await find(desk.auditor, f" {ann.national_id.lower()} ")  # as typed
        assert {c.id for c in by_id} == {ann.id, namesake.id}
        assert await find(desk.auditor, "99999999") == []
        assert await find(desk.auditor, "NOBODY1") == []
        for bad in ("", " ", "x" * 65, "+12"):
            with pytest.raises(BadAuditInput):
                await find(desk.auditor, bad)


@asyncio_test
async def test_only_an_auditor_reads_or_changes_and_never_their_own_record(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        maker, payee = desk.net.maker, desk.net.payees[0]
        with pytest.raises(NotAuditor):
            await desk.auditing.find(maker, str(payee.user_number))
        with pytest.raises(NotAuditor):
            await desk.auditing.blacklist(maker, payee.id, "looks odd")
        for change in (
            desk.auditing.blacklist(desk.auditor, desk.auditor.id, "me"),
            desk.auditing.record_check(desk.auditor, desk.auditor.id, "all fine"),
            desk.auditing.change_tier(desk.auditor, desk.auditor.id, "premium", "me"),
        ):
            with pytest.raises(OwnRecord):
                await change
        with pytest.raises(UnknownCustomer):
            await desk.auditing.blacklist(desk.auditor, str(uuid.uuid4()), "who?")
        assert not (await desk.customer(desk.auditor)).blacklisted
        assert (await desk.auditing.profile(desk.auditor, payee.id)).checks == ()


@asyncio_test
async def test_a_blacklisted_customer_can_neither_send_nor_receive_until_unblacklisted(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        ann, bob = desk.net.payees[0], desk.net.payees[1]
        await desk.auditing.blacklist(desk.auditor, ann.id, "  reported   by her bank ")
        assert (await desk.customer(ann)).blacklisted
        with pytest.raises(SenderBlocked):
            await desk.send(ann, bob)
        with pytest.raises(ReceiverBlocked):
            await desk.send(bob, ann)
        ann_account = (await desk.net.customers.accounts_of(ann.id))[0]
        assert await desk.net.balance(ann_account.ledger_account_id) == usd("100")

        await desk.auditing.unblacklist(desk.auditor, ann.id, "cleared by her bank")
        await desk.send(ann, bob)
        await desk.send(bob, ann, "2")
        assert await desk.net.balance(ann_account.ledger_account_id) == usd("97")

        profile = await desk.auditing.profile(desk.auditor, ann.id)
        assert [(c.action, c.comment) for c in profile.checks] == [
            (CheckAction.UNBLACKLIST, "cleared by her bank"),
            (CheckAction.BLACKLIST, "reported by her bank"),
        ]
        assert profile.checks[0].actor == f"{desk.auditor.user_number} Audra Lorde"
        recent = [(row.name, row.amount) for row in profile.accounts[0].recent]
        assert recent[:2] == [
            (f"{bob.first_name} {bob.last_name}", usd("2")),
            (f"{bob.first_name} {bob.last_name}", usd("-5")),
        ]


@asyncio_test
async def test_a_payment_quoted_before_the_blacklisting_is_refused_at_the_pin(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        ann, bob = desk.net.payees[0], desk.net.payees[1]
        account = (await desk.net.customers.accounts_of(ann.id))[0]
        quote = await desk.net.payments.quote_send(
            ann.id, account.id, str(bob.user_number), usd("5")
        )
        await desk.auditing.blacklist(desk.auditor, ann.id, "frozen while quoting")
        with pytest.raises(SenderBlocked):
            await desk.net.payments.send(quote, PIN, str(uuid.uuid4()))
        assert await desk.net.balance(account.ledger_account_id) == usd("100")


@asyncio_test
async def test_a_blacklisted_bulk_payee_is_reported_ineligible_and_not_paid(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        net = desk.net
        blocked, fine = net.payees[0], net.payees[1]
        await desk.auditing.blacklist(desk.auditor, blocked.id, "mule account")
        batch_id = await net.approved(HEADER + line(1, blocked) + line(2, fine))
        await net.runner.step()
        rows = {row.line: row for row in (await net.bulk.batch_view(batch_id)).rows}
        assert rows[2].state is RowState.FAILED and "ineligible" in (rows[2].reason or "")
        assert "blacklisted" in (rows[2].reason or "")
        assert rows[3].state is RowState.PAID


@asyncio_test
async def test_the_never_checked_come_first_then_those_not_checked_for_n_days(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        net, auditing, auditor = desk.net, desk.auditing, desk.auditor
        old, recent = net.payees[0], net.payees[1]
        await auditing.record_check(auditor, old.id, "ID card seen")
        net.clock.now += timedelta(days=40)
        await auditing.record_check(auditor, recent.id, "all fine", score=10)
        net.clock.now += timedelta(days=5)

        never = {u.customer.id for u in await auditing.unchecked(auditor, None)}
        assert old.id not in never and recent.id not in never and net.payees[2].id in never
        listed = await auditing.unchecked(auditor, 30)
        assert old.id in [u.customer.id for u in listed]
        assert recent.id not in [u.customer.id for u in listed]
        assert listed[-1].customer.id == old.id  # never-checked first
        assert listed[-1].last_checked == net.clock.now - timedelta(days=45)
        assert all(u.last_checked is None for u in listed[:-1])

        last = (await auditing.profile(auditor, recent.id)).last_check
        assert last is not None and (last.comment, last.score) == ("all fine", 10)
        for comment, score in (("", None), ("x" * 201, None), ("fine", 101), ("fine", -1)):
            with pytest.raises(BadAuditInput):
                await auditing.record_check(auditor, old.id, comment, score)
        with pytest.raises(BadAuditInput):
            await auditing.unchecked(auditor, -1)
        assert len((await auditing.profile(auditor, old.id)).checks) == 1


@asyncio_test
async def test_an_auditor_changes_a_tier_with_a_reason_recorded_under_their_name(
    database: Database,
) -> None:
    async with open_desk(database) as desk:
        ann = desk.net.payees[0]
        await desk.auditing.change_tier(desk.auditor, ann.id, "business", "pays staff")
        profile = await desk.auditing.profile(desk.auditor, ann.id)
        assert profile.tier.name == "business"
        change = profile.tier_history[-1]
        assert (change.to_tier, change.actor, change.note) == (
            "business",
            f"{desk.auditor.user_number} Audra Lorde",
            "pays staff",
        )
        with pytest.raises(UnknownTier):
            await desk.auditing.change_tier(desk.auditor, ann.id, "platinum", "why not")
        with pytest.raises(BadAuditInput):
            await desk.auditing.change_tier(desk.auditor, ann.id, "basic", " ")
        assert (await desk.net.customers.tier_of(ann.id)).name == "business"
