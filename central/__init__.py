"""The central services of the network: participants (the DFSPs), directory, ledger,
rules, fraud sharing, key management and the forensic log, behind one HTTP API."""
