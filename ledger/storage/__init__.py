"""The storage port: one interface over the ledger's database, SQLite or PostgreSQL."""
