"""Carrier links (SMPP) and USSD sessions."""
