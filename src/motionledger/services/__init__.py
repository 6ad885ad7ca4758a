"""The ledger's work in domain terms: ingest (judge and append), the projector, the write
waiters, reads and writes for the endpoint, rebuild, verify, replay, the simulator.

Services may import the domain and the adapters (and settings, logs, metrics, errors) —
never the HTTP edge, the CLI or the process wiring. They hold no SQL and catch no driver
errors: adapters hand them typed outcomes (motionledger.errors). The connect → lease →
work → back off loop every long-running worker shares is worker.py.
"""
