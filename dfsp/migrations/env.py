"""Alembic environment of the DFSP database (``ussdloop.migrations.run_environment``).

Every model module is imported here, so the metadata describes every table (for
``alembic check`` and ``revision --autogenerate``). ``dfsp.migrate.migrate(engine)``
runs the migrations at start-up.
"""

from __future__ import annotations

from dfsp import (  # noqa: F401  (each registers its tables on Base)
    audit_store,
    bulk_store,
    customer_store,
    forensic,
    invoice_store,
    notification_store,
    rule_book,
)
from dfsp.store import Base
from dfsp.web import sessions  # noqa: F401
from ussdloop.migrations import run_environment

run_environment(Base.metadata, "dfsp")
