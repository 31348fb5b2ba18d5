"""The central directory: the scheme-wide registry of end users (user numbers), the DFSPs
each one has (one primary, where payments to the number go) and each DFSP's interledger
endpoint. ``central.directory.component`` plugs it into the central service."""
