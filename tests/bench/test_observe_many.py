"""`metrics.observe_many` (a bench finding: per-event `observe` was ~10 % of a drain) must
count exactly as one `observe` per value does."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from motionledger import metrics


def test_observe_many_equals_one_observe_per_value() -> None:
    registry = CollectorRegistry()
    buckets = (0.001, 0.005, 0.01, 0.1, 1.0)
    one = Histogram("one_seconds", "x", buckets=buckets, registry=registry)
    many = Histogram("many_seconds", "x", buckets=buckets, registry=registry)
    rng = random.Random(3)
    values = [rng.choice([0.0, 0.001, 0.005, 2.0]) for _ in range(50)]
    values += [rng.uniform(0, 1.5) for _ in range(5000)]
    for value in values:
        one.observe(value)
    metrics.observe_many(many, values[:1000])
    metrics.observe_many(many, values[1000:])
    metrics.observe_many(many, [])
    assert [b.get() for b in many._buckets] == [b.get() for b in one._buckets]
    assert abs(many._sum.get() - one._sum.get()) < 1e-9
