"""server/domain."""
