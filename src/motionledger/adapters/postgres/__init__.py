"""PostgreSQL: the log, the read tables, the projections' SQL and the numbered migrations.
Only ledger errors leave this package (see errors.py)."""
