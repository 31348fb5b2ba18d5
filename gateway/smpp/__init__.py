"""SMPP v3.4: sans-I/O PDU codec, GSM 03.38 text coding and the Twisted ESME protocol."""
