"""`make bench`: motionledger measured against a plain consumer, a naive consumer and a plain
COPY, in one run on one machine. Entry point: `python -m bench` (see bench/run.py)."""
