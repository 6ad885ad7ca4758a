"""Everything under /production: the eight reads, three derived reads, twelve writes and the
live session stream."""

from __future__ import annotations

from litestar import Router

from .derived import DERIVED_ROUTES
from .live import LIVE_ROUTES
from .openapi import NEEDS_TOKEN
from .reads import READ_ROUTES
from .writes import WRITE_ROUTES


def production_router() -> Router:
    """A fresh Router each time: apps may be many (tests build several)."""
    return Router(
        path="/production",
        route_handlers=[*READ_ROUTES, *DERIVED_ROUTES, *WRITE_ROUTES, *LIVE_ROUTES],
        tags=["production"],
        security=NEEDS_TOKEN,
    )
