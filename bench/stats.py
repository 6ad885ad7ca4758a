"""Percentiles of samples, and Prometheus histograms read from the daemon's /metrics."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

_BUCKET: Final = re.compile(r"^motionledger_(\w+)_seconds_bucket\{(.*)\} (\S+)$")
_LE: Final = re.compile(r'le="([^"]+)"')


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p95/p99/max/mean (nearest rank); zeros for no samples."""
    if not samples:
        return {"n": 0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))]

    return {
        "n": n,
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / n,
    }


@dataclass
class Histogram:
    """Cumulative bucket counts (summed over labels other than `le`)."""

    buckets: dict[float, float] = field(default_factory=dict)

    @classmethod
    def scrape(cls, text: str, name: str) -> Histogram:
        out = cls()
        for line in text.splitlines():
            match = _BUCKET.match(line)
            if match is None or match[1] != name:
                continue
            le = _LE.search(match[2])
            if le is None:
                continue
            bound = math.inf if le[1] == "+Inf" else float(le[1])
            out.buckets[bound] = out.buckets.get(bound, 0.0) + float(match[3])
        return out

    def minus(self, earlier: Histogram) -> Histogram:
        return Histogram({b: c - earlier.buckets.get(b, 0.0) for b, c in self.buckets.items()})

    def quantile(self, q: float) -> float:
        """Like Prometheus' histogram_quantile: linear within the bucket (seconds)."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] <= 0:
            return math.nan
        total = self.buckets[bounds[-1]]
        target = q * total
        lower, below = 0.0, 0.0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= target:
                if math.isinf(bound):
                    return lower
                share = (target - below) / (count - below) if count > below else 1.0
                return lower + (bound - lower) * share
            lower, below = bound, count
        return lower

    def quantiles_ms(self) -> dict[str, float]:
        if not self.buckets:
            return {}
        return {f"p{int(q * 100)}": self.quantile(q) * 1000 for q in (0.5, 0.95, 0.99)}
