"""The process wiring: what `motionledger serve` starts, in which order, and how it stops.

The top of the package: it may import everything below it (the HTTP edge, the services,
the adapters); nothing imports it but the CLI.
"""

from .runtime import Runtime, Services
from .serve import serve

__all__ = ["Runtime", "Services", "serve"]
