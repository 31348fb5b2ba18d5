"""The auditor's changes shared with the central fraud service (``dfsp.auditing``): a
blacklisting at dfsp2 stops dfsp1's payments to that user at the centre's rules, a
fraud score of 100 does the same, each change is in dfsp2's forensic chain with the
auditor who made it, and while the centre cannot take a change the desk refuses it
and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from central.forensic.client import ForensicClient
from dfsp.auditing import Auditing, FraudSharingUnavailable
from dfsp.client import CustomerInfo, DfspError
from dfsp.customers import Customers
from dfsp.domain.customers import Customer
from dfsp.forensic import ForensicLogUnavailable
from tests.integration.clearing.support import Network, clearing_network
from tests.integration.conftest import Database
from tests.support import asyncio_test, eventually


@dataclass
class PayeeDesk:
    """dfsp2's auditor's desk, its auditor, and Kani, a customer of dfsp2."""

    auditing: Auditing
    auditor: Customer
    customers: Customers
    kani: CustomerInfo


async def payee_desk(network: Network) -> PayeeDesk:
    service = network.payee.service
    assert service.auditing is not None and service.customers is not None
    info = await network.customer(network.payee, "+256700000851", "Audra", "Lorde")
    auditor = await service.customers.customer(info.customer_id)
    await service.auditing.grant_auditor(auditor.id)
    kani = await network.customer(network.payee, "+256700000852", "Kani", "Moe")
    return PayeeDesk(service.auditing, auditor, service.customers, kani)


async def logged(network: Network, event: str, subject: str) -> dict[str, object]:
    """The data of dfsp2's forensic record ``event`` about ``subject`` (waiting for it)."""
    log = ForensicClient(network.operator_http)
    found: list[dict[str, object]] = []

    async def written() -> bool:
        found[:] = [
            r.data
            for r in await log.records("dfsp2", limit=1000)
            if r.event == event and r.subject == subject
        ]
        return bool(found)

    await eventually(written)
    return found[-1]


@asyncio_test
async def test_a_blacklisting_at_one_dfsp_stops_payments_from_another_and_is_logged(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        desk = await payee_desk(network)
        auditing, auditor, kani = desk.auditing, desk.auditor, desk.kani
        hamim = await network.customer(network.payer, "+256700000853", "Hamim", "Ali")

        await auditing.blacklist(auditor, kani.customer_id, "mule account")
        with pytest.raises(DfspError) as refused:
            await network.quote(hamim, kani, "5")
        assert refused.value.id == "TransferNotAllowed"
        record = await logged(network, "customer.blacklisted", kani.user_number)
        assert record == {"by": f"{auditor.user_number} Audra Lorde", "reason": "mule account"}

        await auditing.unblacklist(auditor, kani.customer_id, "cleared")
        quote = await network.quote(hamim, kani, "5")
        assert (await network.send(quote)).status == "executed"
        assert (await logged(network, "customer.unblacklisted", kani.user_number))["reason"] == (
            "cleared"
        )

        await auditing.record_check(auditor, kani.customer_id, "same face, two IDs", score=100)
        with pytest.raises(DfspError) as scored:
            await network.quote(hamim, kani, "5")
        assert scored.value.id == "TransferNotAllowed"
        checked = await logged(network, "fraud.checked", kani.user_number)
        assert checked["score"] == 100 and checked["by"] == f"{auditor.user_number} Audra Lorde"
        profile = await auditing.profile(auditor, kani.customer_id)
        assert profile.central is not None and profile.central.score == 100


@asyncio_test
async def test_while_the_centre_is_down_the_desk_refuses_a_shared_change(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        desk = await payee_desk(network)
        auditing, auditor, kani, customers = desk.auditing, desk.auditor, desk.kani, desk.customers
        await network.stop_central()
        try:
            for change in (
                auditing.blacklist(auditor, kani.customer_id, "mule account"),
                auditing.record_check(auditor, kani.customer_id, "suspicious", score=90),
                auditing.record_check(auditor, kani.customer_id, "ID seen"),
                auditing.change_tier(auditor, kani.customer_id, "premium", "vouched"),
            ):
                with pytest.raises((FraudSharingUnavailable, ForensicLogUnavailable)):
                    await change
            assert not (await customers.customer(kani.customer_id)).blacklisted
            assert (await customers.tier_of(kani.customer_id)).name == "basic"
            profile = await auditing.profile(auditor, kani.customer_id)
            assert profile.checks == () and profile.tier_history == ()
            assert profile.central is None and "did not answer" in (profile.central_problem or "")
        finally:
            await network.start_central()
