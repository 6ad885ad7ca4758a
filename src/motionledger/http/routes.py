"""Everything under /production: the eight reads, three derived reads, twelve writes and the
live session stream."""

from __future__ import annotations

from litestar import Router

from .derived import DERIVED_ROUTES
from .live import LIVE_ROUTES
from .openapi import NEEDS_TOKEN
from .reads import READ_ROUTES
from .writes import WRITE_ROUTES


def production_router(*, token_required: bool) -> Router:
    """A fresh Router each time: apps may be many (tests build several). The document says
    a bearer token is required only when the server requires one: an open server that
    declared it would be telling every client something untrue."""
    return Router(
        path="/production",
        route_handlers=[*READ_ROUTES, *DERIVED_ROUTES, *WRITE_ROUTES, *LIVE_ROUTES],
        tags=["production"],
        security=NEEDS_TOKEN if token_required else None,
    )
