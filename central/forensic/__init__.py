"""The central forensic log: every service's signed, hash-chained records
(``central.forensic.service``) served under ``/forensic`` (``central.forensic.api``),
and the central service's own chain (``central.forensic.writer``)."""

from central.forensic.writer import component

__all__ = ["component"]
