"""Alembic environment of the central database (``ussdloop.migrations.run_environment``).

Every component's model module is imported here, so the metadata describes every table
(for ``alembic check`` and ``revision --autogenerate``). ``central.migrate.migrate``
runs the migrations at start-up.
"""

from __future__ import annotations

from central.directory import store as directory_store  # noqa: F401  (registers tables)
from central.forensic import store as forensic_store  # noqa: F401
from central.fraud import store as fraud_store  # noqa: F401
from central.kms import store as kms_store  # noqa: F401
from central.ledger import store as ledger_store  # noqa: F401
from central.store import Base
from ussdloop.migrations import run_environment

run_environment(Base.metadata, "central")
