"""The operating ledger: entities, database access and the audit hash chain."""
