"""NATS JetStream: the stream's set-up, the raw in-order pull, and the protocol's bytes.
Only ledger errors leave this package (see errors.py)."""
