"""The fraud component of the central service: its routes and its use cases
(``services["fraud"]``, a ``central.fraud.service.Fraud``)."""

from __future__ import annotations

from central.component import CentralContext, Component
from central.fraud.api import FraudRoutes
from central.fraud.service import Fraud


def component(context: CentralContext) -> Component:
    fraud = Fraud(context.sessions, context.clock)
    return Component("fraud", routes=FraudRoutes(fraud).routes(), services={"fraud": fraud})
