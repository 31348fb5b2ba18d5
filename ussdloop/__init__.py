"""The shell of ussdloop: command line, network configuration and service composition."""
