"""An invoice from another DFSP approved twice at once by two processes of the buyer's
DFSP (each with its own in-process locks, one database): it is paid once, and the
other approval is refused while the first is under way."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from dfsp.domain.invoices import InvoiceBeingPaid, InvoiceNotPending
from dfsp.invoices import Invoices
from tests.integration.clearing.support import PIN, clearing_network, usd
from tests.integration.conftest import Database
from tests.support import asyncio_test, eventually


@asyncio_test
async def test_two_processes_approving_one_remote_invoice_pay_it_once(
    tmp_path: Path, database: Database
) -> None:
    async with clearing_network(tmp_path, database) as network:
        merchant = await network.payee.client.register(
            msisdn="+256700000861",
            first_name="Shop",
            last_name="One",
            date_of_birth="1990-05-17",
            national_id="NI000861",
            pin=PIN,
            role="merchant",
        )
        buyer = await network.customer(network.payer, "+256700000862", "Venya", "Ndoro")
        await network.payee.client.create_invoice(
            merchant.customer_id, str(merchant.primary_account_id), buyer.user_number, usd("25")
        )

        async def told() -> bool:
            pending = await network.payer.client.pending_invoices(buyer.customer_id)
            return len(pending.incoming) == 1

        await eventually(told)
        invoice_id = (
            (await network.payer.client.pending_invoices(buyer.customer_id)).incoming[0].invoice_id
        )

        service = network.payer.service
        assert service.invoices is not None and service.invoices.across is not None
        other_process = Invoices(  # the same database, its own locks
            service.invoices._sessions,
            service.ledger,  # type: ignore[arg-type]
            service.customers,  # type: ignore[arg-type]
            service.payments,  # type: ignore[arg-type]
            clock=service.invoices._clock,
            interledger=service.interledger,
        )
        assert other_process.across is not None
        account = str(buyer.primary_account_id)
        outcomes = await asyncio.gather(
            *(
                across.approve(buyer.customer_id, invoice_id, account, PIN, str(uuid.uuid4()))
                for across in (service.invoices.across, other_process.across)
            ),
            return_exceptions=True,
        )
        paid = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(paid) == 1 and paid[0].status.value == "executed", outcomes
        assert len(refused) == 1 and isinstance(refused[0], InvoiceBeingPaid | InvoiceNotPending)
        assert await network.payer.balance(buyer) == usd("973.50")  # 25 + 1 + 0.50, once
        assert await network.payee.balance(merchant) == usd("25")
