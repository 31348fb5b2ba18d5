"""Pure rules of the provider: no I/O (fees, limits, tiers, transfer states)."""
