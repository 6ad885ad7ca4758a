"""The Litestar application: routes, the envelope, bearer auth, request metrics."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__, metrics
from ..services.health import Health
from .deps import DerivedModel, LiveModel, ReadModel, WriteModel, providers
from .docs import SwaggerDocs
from .errors import EXCEPTION_HANDLERS
from .health import ROUTES as HEALTH_ROUTES
from .openapi import COMPONENTS, DESCRIPTION, OpenAPIJson
from .routes import production_router

_SLASHES = re.compile(r"/{2,}")
_UNAUTHORIZED = (
    b'{"ok":false,"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}'
)


def _auth(app: ASGIApp, token: str | None) -> ASGIApp:
    """Every /production/* request needs the bearer token; probes and metrics stay open."""
    if not token:
        return app
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        # the router folds "//" into "/": so must the check, or "//production" walks past it
        if scope["type"] == ScopeType.HTTP and _SLASHES.sub("/", scope["path"]).startswith(
            "/production"
        ):
            given = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, expected):
                start: Any = {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
                body: Any = {"type": "http.response.body", "body": _UNAUTHORIZED}
                await send(start)
                await send(body)
                return
        await app(scope, receive, send)

    return guarded


def _timed(app: ASGIApp) -> ASGIApp:
    """Request duration by route template (never the raw path: bounded label values)."""

    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).observe(
                time.perf_counter() - started
            )

    return timed


def create_app(
    *,
    health: Health,
    reads: Callable[[], ReadModel | None],
    derived: Callable[[], DerivedModel | None],
    writes: Callable[[], WriteModel | None],
    token: str | None,
    max_body_bytes: int,
    debug: bool = False,
    live: Callable[[], LiveModel | None] = lambda: None,
) -> ASGIApp:
    """The endpoint: probes and metrics, and /production answered by the services that
    `reads`, `derived`, `writes` and `live` provide (None while they are not up: 503)."""
    app = Litestar(
        route_handlers=[*HEALTH_ROUTES, production_router(token_required=bool(token))],
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies={
            "health": Provide(lambda: health, sync_to_thread=False),
            **providers(reads, derived, writes, live),
        },
        openapi_config=OpenAPIConfig(
            title="motionledger",
            version=__version__,
            description=DESCRIPTION,
            components=COMPONENTS if token else Components(),
            path="/schema",
            # the document at /schema/openapi.json; the docs page (offline) at /schema
            render_plugins=[OpenAPIJson(), SwaggerDocs()],
        ),
        request_max_body_size=max_body_bytes,
        debug=debug,
    )
    return _timed(_auth(app, token))
