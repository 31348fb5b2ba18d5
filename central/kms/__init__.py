"""The central key management service: services' public keys for the forensic log
(``central.kms.service``), served under ``/kms`` (``central.kms.api``)."""

from central.kms.api import component

__all__ = ["component"]
