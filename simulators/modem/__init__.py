"""The mobile network: SMSC / USSD centre over SMPP, virtual handsets, AT modems, faults."""
