"""USSD dialogues: session manager, carrier dialects and USSD-over-HTTP adapters."""
