"""Central rules: whether the scheme allows a transfer (fraud, unknown receiver, the
scheme's largest transfer, invalid amounts) and the scheme fee of a transfer across
DFSPs. ``central.rules.component`` plugs it into the central service."""
