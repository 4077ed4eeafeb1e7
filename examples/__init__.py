"""Examples that run beside supportbot (not part of the installed package)."""
