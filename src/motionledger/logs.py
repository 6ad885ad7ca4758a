"""structlog, configured once at the edge: JSON off a terminal, readable on one.

The standard library's records (uvicorn, asyncio, nats-py, the producer SDK) go through
structlog's `ProcessorFormatter` with the same processors, so in JSON mode every line on
stderr is one JSON object. Libraries' own records below WARNING show only at `debug`.

structlog comes with the `server` extra; a producer-only install (`motionledger schema`)
gets plain standard-library logging from `configure` instead.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any, Final

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
_HANDLER_MARK: Final = "_motionledger_handler"


def level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    return int(getattr(logging, name.upper()))


def _install_root_handler(handler: logging.Handler, level: int) -> None:
    """One handler of ours on the root logger, however often `configure` runs."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    logging.getLogger("motionledger").setLevel(level)
    logging.captureWarnings(True)


def configure(log_format: str | None = None, level: str | int = "info") -> None:
    fmt = log_format or ("console" if sys.stderr.isatty() else "json")
    number = level_number(level)
    handler = logging.StreamHandler(sys.stderr)
    if importlib.util.find_spec("structlog") is None:  # the producer-only install
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        _install_root_handler(handler, number)
        return
    import structlog

    renderer: Any = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    exc_info: Any = (
        structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exc_info,
                renderer,
            ],
        )
    )
    _install_root_handler(handler, number)


def get(name: str) -> Any:
    if importlib.util.find_spec("structlog") is None:
        # a producer-only install imports a few of these modules (e.g. for EmbeddedError)
        return logging.getLogger(name)
    import structlog

    return structlog.get_logger(name)
