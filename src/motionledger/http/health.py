"""/healthz, /readyz and /metrics: open even when an API token is set."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..services.health import Health, Readiness
from .envelope import ErrorBody, Ok


class NotReady(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool = False
    error: ErrorBody
    result: Readiness


@get("/healthz", include_in_schema=False)
async def healthz() -> Ok[str]:
    return Ok(result="alive")


@get("/readyz", include_in_schema=False)
async def readyz(health: NamedDependency[Health]) -> Response[Ok[Readiness] | NotReady]:
    report = await health.readiness()
    if report.ready:
        return Response(Ok(result=report))
    failing = [f"{name}: {check.detail}" for name, check in report.checks.items() if not check.ok]
    message = "; ".join(failing) or "starting"
    return Response(NotReady(error=ErrorBody("not_ready", message), result=report), status_code=503)


@get("/metrics", include_in_schema=False, media_type=CONTENT_TYPE_LATEST)
async def metrics_route() -> Response[bytes]:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


ROUTES = [healthz, readyz, metrics_route]
