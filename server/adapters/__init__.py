"""server/adapters."""
