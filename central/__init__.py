"""Central services: directory, ledger, rules, fraud, KMS, forensic log (the central issue)."""
