"""The central ledger: participants' settlement positions, two-phase transfers under
PREIMAGE-SHA-256 conditions, net debit caps, settlement and notifications."""

from central.ledger.component import component

__all__ = ["component"]
