"""The directory component of the central service: its routes and its use cases
(``services["directory"]``, a ``central.directory.service.Directory``). No pause hook:
lookups read the primary DFSP's status live."""

from __future__ import annotations

from central.component import CentralContext, Component
from central.directory.api import DirectoryRoutes
from central.directory.service import Directory


def component(context: CentralContext) -> Component:
    directory = Directory(context.sessions, context.clock)
    return Component(
        "directory", routes=DirectoryRoutes(directory).routes(), services={"directory": directory}
    )
