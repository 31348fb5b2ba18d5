"""Central services (directory, ledger, rules, fraud, KMS, forensic log); built in the central issue."""
