"""Central fraud sharing: DFSPs report users with a score 0-100, DFSPs or the operator
blacklist user numbers with a reason; a score of 100 or a blacklisting blocks the user
(registration with another DFSP, sending and receiving). ``central.fraud.component``
plugs it into the central service."""
