"""motionledger: an event-sourced production ledger for AI-directed multicam shoots."""
