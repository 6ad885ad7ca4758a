"""Everything under /production: the eight reads, three derived reads and twelve writes,
with the mapping of service errors (unknown session, unavailable database or broker,
refused event) to answers in the envelope."""

from __future__ import annotations

from typing import Any

from litestar import Router

from .routes_common import EXCEPTION_HANDLERS
from .routes_derived import DERIVED_ROUTES
from .routes_reads import READ_ROUTES
from .routes_writes import WRITE_ROUTES


def production_routes() -> list[Any]:
    """The route handlers `serve` mounts (a fresh Router each time: apps may be many)."""
    return [
        Router(
            path="/production",
            route_handlers=[*READ_ROUTES, *DERIVED_ROUTES, *WRITE_ROUTES],
            exception_handlers=EXCEPTION_HANDLERS,
            tags=["production"],
        )
    ]
