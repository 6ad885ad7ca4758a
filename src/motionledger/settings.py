"""Configuration: a TOML file, then `MOTIONLEDGER_*` environment variables, which win.

One Struct describes every setting; its field names are the TOML keys and, upper-cased
with the prefix, the environment variables. A bad value fails at start with the key named.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from .errors import SettingsError

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "load", "seconds"]

ENV_PREFIX: Final = "MOTIONLEDGER_"
DEFAULT_CONFIG: Final = Path("config/motionledger.toml")

Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(gt=0)]
Token = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+$")]
Duration = Annotated[str, Meta(pattern=r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$")]
LogLevel = Annotated[str, Meta(pattern=r"(?i)^\s*(debug|info|warning|error|critical)\s*$")]


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # -- the contract's settings --
    nats_url: str | None = None
    database_url: str | None = None
    stream: Token = "PRODUCTION"
    stream_replicas: Annotated[int, Meta(ge=1, le=5)] = 1
    stream_max_age: Duration = "7d"
    nats_creds: str | None = None
    nats_tls_ca: str | None = None
    http_host: str = "127.0.0.1"
    http_port: Port = 8080
    api_token: str | None = None
    log_format: Literal["json", "console"] | None = None
    # debug, info, warning, error or critical (any case); libraries' own records below
    # WARNING show only at debug
    log_level: LogLevel = "info"
    write_wait_ms: Annotated[int, Meta(ge=0)] = 5000
    max_event_bytes: Positive = 262_144
    max_body_bytes: Positive = 1_048_576
    # -- ours --
    # first token of every subject; a second ledger (or a test) sharing a broker picks another
    subject_root: Token = "production"
    # where the embedded broker and database keep their data
    data_dir: str = "var"
    # the embedded broker's port; 0: 4222 when free, else the one used last time, else any
    embedded_nats_port: Port = 0
    # how many messages one ingest transaction takes at most
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    # the broker's duplicate window for Nats-Msg-Id (the log also dedupes by eventId forever)
    duplicate_window: Duration = "2m"
    # /readyz says not ready when a projection trails the log by more than this
    ready_max_lag_ms: Positive = 5000
    # `serve` without the query endpoint (an ingest-only worker)
    http_enabled: bool = True
    # false: never create or change the stream (an operator manages it; it must exist);
    # true: create it when missing, and fix only what the ledger cannot work without
    stream_manage: bool = True
    # live session streams (GET /production/session/live) one process serves at once; past
    # it a new one is answered 503
    live_max_streams: Positive = 500

    @property
    def nats_servers(self) -> list[str]:
        assert self.nats_url is not None
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def embedded(self) -> bool:
        """A URL is unset: `serve` runs that server itself, under `data_dir`."""
        return self.nats_url is None or self.database_url is None

    def replace(self, **changes: Any) -> Settings:
        return msgspec.structs.replace(self, **changes)


_FIELDS: Final = {name for name in Settings.__struct_fields__}
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(duration: str) -> float:
    """`"7d"` → 604800.0; a bare number is seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", duration)
    if match is None:
        raise SettingsError(f"not a duration: {duration!r} (use e.g. 500ms, 30s, 2m, 12h, 7d)")
    return float(match[1]) * _UNITS[match[2]]


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        if name in _FIELDS and value != "":
            values[name] = value
    return values


def _convert(raw: dict[str, Any], source: Mapping[str, str]) -> Settings:
    try:
        # str_keys/strict=False lets "8080" from the environment become an int
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        field = re.search(r"`\$\.(\w+)`|field `(\w+)`", message)
        name = next((g for g in field.groups() if g), None) if field else None
        where = source.get(name, name) if name else "configuration"
        raise SettingsError(f"{where}: {message}") from None


def load(config: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the TOML file (if any) overlaid with the environment."""
    environ = os.environ if environ is None else environ
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    raw: dict[str, Any] = {}
    source: dict[str, str] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise SettingsError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{path}: not valid TOML: {error}") from None
        unknown = sorted(set(raw) - _FIELDS)
        if unknown:
            raise SettingsError(f"{path}: unknown key {unknown[0]!r}")
        source.update({name: f"{path}: {name}" for name in raw})
    env = _from_env(environ)
    raw.update(env)
    source.update({name: f"{ENV_PREFIX}{name.upper()}" for name in env})
    settings = _convert(raw, source)
    for name in ("stream_max_age", "duplicate_window"):
        seconds(getattr(settings, name))
    return settings
