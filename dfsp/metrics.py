"""What the DFSP shows on ``GET /metrics`` (Prometheus text, ``ussdloop.metrics``).

Read from the tables in one read-only transaction, each figure one ``COUNT ... GROUP BY``
on an indexed or small column set (no row is loaded):

- ``dfsp_customers``: the customers registered now;
- ``dfsp_transfers_total{state, kind}``: ledger transfers by state and kind (a transfer
  moves from ``prepared`` to a final state, so the ``prepared`` series goes down: a
  gauge, named as the dashboards expect);
- ``dfsp_notices{state}``: the notice outbox by state (``pending`` is the backlog);
- ``dfsp_invoices{kind, state}``: pending transactions (invoices, cash-out requests).

A known notice or invoice state with no row is shown as 0, so those series exist from
the start; transfers show the (state, kind) pairs that occur. The
service adds its in-process counters (``extra``): notices posted and delivered, holds
expired by the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dfsp.customer_store import CustomerRow
from dfsp.domain.invoices import InvoiceKind, InvoiceState
from dfsp.invoice_store import InvoiceRow
from dfsp.notification_store import NoticeRow, OutboxState
from dfsp.store import READ_ONLY, TransferRow
from ussdloop.metrics import Metric

MAX_TRANSFER_SERIES = 256  # (state, kind) pairs shown; kinds are few (p2p, invoice...)


class DfspMetrics:
    """Gathers the figures; called once per scrape."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        extra: Callable[[], Iterable[Metric]] = tuple,
    ) -> None:
        self._sessions = sessions
        self._extra = extra

    async def __call__(self) -> list[Metric]:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=READ_ONLY)
            customers = (await session.execute(select(func.count(CustomerRow.id)))).scalar_one()
            transfers = await _counts(session, TransferRow.state, TransferRow.kind)
            notices = await _counts(session, NoticeRow.state)
            invoices = await _counts(session, InvoiceRow.kind, InvoiceRow.state)
        metrics = [Metric("dfsp_customers", "gauge", "customers registered", customers)]
        for (state, kind), count in sorted(transfers.items())[:MAX_TRANSFER_SERIES]:
            metrics.append(
                Metric(
                    "dfsp_transfers_total",
                    "gauge",
                    "ledger transfers by state and kind",
                    count,
                    {"state": state, "kind": kind},
                )
            )
        for outbox_state in OutboxState:
            metrics.append(
                Metric(
                    "dfsp_notices",
                    "gauge",
                    "notices in the outbox by state",
                    notices.get((outbox_state.value,), 0),
                    {"state": outbox_state.value},
                )
            )
        for invoice_kind in InvoiceKind:
            for invoice_state in InvoiceState:
                metrics.append(
                    Metric(
                        "dfsp_invoices",
                        "gauge",
                        "pending transactions (invoices, cash-out requests) by kind and state",
                        invoices.get((invoice_kind.value, invoice_state.value), 0),
                        {"kind": invoice_kind.value, "state": invoice_state.value},
                    )
                )
        metrics.extend(self._extra())
        return metrics


async def _counts(session: AsyncSession, *columns: Any) -> dict[tuple[str, ...], int]:
    query = select(*columns, func.count()).group_by(*columns)
    rows = (await session.execute(query)).all()
    return {tuple(str(value) for value in row[:-1]): int(row[-1]) for row in rows}
