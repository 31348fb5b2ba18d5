"""The rules component of the central service. It uses the directory's use cases (its
own ``Directory`` on the shared database, which reads the fraud standings too);
the scheme fee and largest transfer come from ``[central]`` (checked here, at start)."""

from __future__ import annotations

from central.component import CentralContext, Component
from central.directory.service import Directory
from central.rules.api import RulesRoutes
from central.rules.fees import scheme_fee_from_config
from central.rules.service import Rules
from ussdloop.money import Money


def component(context: CentralContext) -> Component:
    settings = context.settings
    fee = scheme_fee_from_config(settings.scheme_fee, settings.currency)
    cap = settings.max_transfer
    max_transfer = None if cap == "none" else Money.parse(cap, settings.currency)
    rules = Rules(
        Directory(context.sessions, context.clock),
        fee,
        max_transfer,
    )
    return Component("rules", routes=RulesRoutes(rules).routes(), services={"rules": rules})
