"""The image's HEALTHCHECK: healthy while the daemon can answer.

With the query endpoint on (the default) that is `/readyz` (200: broker and database
reachable; a standby replica is ready too — it serves reads while it waits for the writer
lease). An ingest-only worker (MOTIONLEDGER_HTTP_ENABLED=false) serves no HTTP at all: it
is healthy while its process runs, which is exactly while the container runs, so there is
nothing more to ask it — its progress shows in the active replica's metrics and its logs.
Standard library only: it runs with the image's Python, before anything else is imported.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    if os.environ.get("MOTIONLEDGER_HTTP_ENABLED", "true").strip().lower() in ("false", "0", "no"):
        return 0
    port = os.environ.get("MOTIONLEDGER_HTTP_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:  # noqa: S310
            return 0 if answer.status == 200 else 1
    except Exception as error:  # refused, 503, timeout: not healthy
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
