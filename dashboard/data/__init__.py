"""Per-page ledger queries for the console: SQL aggregates, returned as small frames."""
