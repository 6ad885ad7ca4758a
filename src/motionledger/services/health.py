"""Readiness: each part of the daemon registers a check; /readyz runs them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

Check = Callable[[], Awaitable[tuple[bool, Any]]]


class CheckResult(msgspec.Struct, frozen=True):
    ok: bool
    detail: Any = None


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    checks: dict[str, CheckResult]


@dataclass
class Health:
    checks: dict[str, Check] = field(default_factory=dict)
    timeout_s: float = 1.0

    def register(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def _run(self, check: Check) -> CheckResult:
        try:
            ok, detail = await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            return CheckResult(False, "timed out")
        except Exception as error:
            return CheckResult(False, str(error) or type(error).__name__)
        return CheckResult(ok, detail)

    async def readiness(self) -> Readiness:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        ready = bool(checks) and all(r.ok for r in checks.values())
        return Readiness(ready, checks)
