"""The mobile network: handsets, and the USSD and SMS centres behind the SMSC.

``MobileNetwork`` is the in-process face of the simulated network. Handsets are created
on first use and driven directly (``network.handset("256700000001").dial("*123#")``):
that is also the benchmark's fast path, with O(1) work per screen and no per-message
logging above debug level. What arrives over SMPP from the applications comes in
through ``submit`` and is split between the USSD centre (a ``ussd_service_op`` TLV is
present) and the SMS centre.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import count
from types import MappingProxyType

from gateway.smpp.constants import CommandStatus, Tag
from gateway.smpp.dialects import DIALECTS, Dialect
from gateway.smpp.pdu import Pdu
from simulators.modem.clock import ReactorClock
from simulators.modem.handsets import Handset, normalise_msisdn
from simulators.modem.smpp_link import SubmitOutcome
from simulators.modem.sms_centre import SmsCentre
from simulators.modem.smsc import EsmeAccount
from simulators.modem.ussd_centre import (
    NETWORK_ERROR,
    MobileOriginatedLinks,
    Route,
    UssdCentre,
)

MAX_HANDSETS = 1_000_000


class MobileNetwork:
    def __init__(
        self,
        *,
        clock: ReactorClock,
        links: MobileOriginatedLinks,
        accounts: Iterable[EsmeAccount],
        dialogue_timeout: float = 180.0,
        screen_timeout: float = 30.0,
        application_timeout: float = 15.0,
    ) -> None:
        self._clock = clock
        self._handsets: dict[str, Handset] = {}
        self._dialects: dict[str, Dialect] = {}
        routes: dict[str, Route] = {}
        for account in accounts:
            dialect = DIALECTS[account.dialect].with_timers(
                dialogue_timeout, screen_timeout, application_timeout
            )
            self._dialects[account.system_id] = dialect
            for code in account.short_codes:
                routes[code] = Route(code, account.system_id, dialect)
        self._ids = count(1)
        self.ussd = UssdCentre(clock, links, routes, self.handset, self._next_message_id)
        self.sms = SmsCentre(clock, links, self.handset, self._next_message_id)

    def handset(self, msisdn: str) -> Handset:
        """The handset with this MSISDN, created on first use (``+`` and spaces ignored)."""
        found = self._handsets.get(msisdn)
        if found is not None:
            return found
        msisdn = normalise_msisdn(msisdn)
        found = self._handsets.get(msisdn)
        if found is None:
            if len(self._handsets) >= MAX_HANDSETS:
                raise ValueError(f"the network already has {MAX_HANDSETS} handsets")
            found = self._handsets[msisdn] = Handset(msisdn, self.ussd, self._clock)
        return found

    @property
    def handsets(self) -> Mapping[str, Handset]:
        return MappingProxyType(self._handsets)

    def submit(self, system_id: str, pdu: Pdu) -> SubmitOutcome:
        """A ``submit_sm``/``data_sm`` from an application's bind."""
        dialect = self._dialects.get(system_id)
        if dialect is None:
            return SubmitOutcome(CommandStatus.ESME_RSYSERR)
        if pdu.tlv(Tag.USSD_SERVICE_OP) is not None:
            return self.ussd.mobile_terminated(system_id, dialect, pdu)
        return self.sms.submit(system_id, pdu)

    def end_dialogues(self, reason: str = NETWORK_ERROR) -> int:
        """End every USSD dialogue in progress (the SMSC restarts or stops)."""
        return self.ussd.end_all(reason)

    def _next_message_id(self) -> str:
        return f"{next(self._ids):010d}"
