"""The provider core (customers, accounts, ledger, rules); built in the DFSP issue."""
