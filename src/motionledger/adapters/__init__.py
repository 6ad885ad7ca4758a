"""What the services drive: PostgreSQL (postgres/), NATS (nats/) and the embedded servers
of a bare machine (embedded/).

Adapters may import the domain, settings, logs, metrics and errors — never the services,
the HTTP edge, the CLI or the process wiring. They speak the ledger's language at their
edge: a driver's errors (asyncpg, nats-py) leave them as motionledger.errors, and SQL, wire
formats and constraint names stay inside.
"""
