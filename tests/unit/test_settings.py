"""Configuration: TOML, then environment; bad keys and values named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionledger.settings import Settings, SettingsError, load, seconds


def test_defaults_are_the_contracts() -> None:
    s = load(Path("config/motionledger.toml"), environ={})
    assert (s.stream, s.stream_replicas, s.stream_max_age) == ("PRODUCTION", 1, "7d")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert (s.write_wait_ms, s.max_event_bytes, s.max_body_bytes) == (5000, 262144, 1048576)
    assert s.nats_url is None
    assert s.database_url is None
    assert s.embedded


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text('http_port = 9000\nstream = "FROMFILE"\napi_token = "file"\n')
    s = load(
        config,
        environ={
            "MOTIONLEDGER_HTTP_PORT": "9100",
            "MOTIONLEDGER_NATS_URL": "nats://a:1, nats://b:2",
        },
    )
    assert (s.http_port, s.stream, s.api_token) == (9100, "FROMFILE", "file")
    assert s.nats_servers == ["nats://a:1", "nats://b:2"]


def test_booleans_and_empty_values_from_the_environment() -> None:
    s = load(None, environ={"MOTIONLEDGER_HTTP_ENABLED": "false", "MOTIONLEDGER_API_TOKEN": ""})
    assert s.http_enabled is False
    assert s.api_token is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MOTIONLEDGER_HTTP_PORT": "eighty"}, "MOTIONLEDGER_HTTP_PORT"),
        ({"MOTIONLEDGER_HTTP_PORT": "70000"}, "MOTIONLEDGER_HTTP_PORT"),
        ({"MOTIONLEDGER_STREAM_REPLICAS": "0"}, "MOTIONLEDGER_STREAM_REPLICAS"),
        ({"MOTIONLEDGER_STREAM": "has.dot"}, "MOTIONLEDGER_STREAM"),
        ({"MOTIONLEDGER_STREAM_MAX_AGE": "a week"}, "MOTIONLEDGER_STREAM_MAX_AGE"),
        ({"MOTIONLEDGER_LOG_FORMAT": "xml"}, "MOTIONLEDGER_LOG_FORMAT"),
        ({"MOTIONLEDGER_MAX_EVENT_BYTES": "-1"}, "MOTIONLEDGER_MAX_EVENT_BYTES"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(None, environ=environ)


def test_unknown_and_bad_file_keys_are_named(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text("htp_port = 1\n")
    with pytest.raises(SettingsError, match="unknown key 'htp_port'"):
        load(config, environ={})
    config.write_text('http_port = "x"\n')
    with pytest.raises(SettingsError, match=r"m\.toml: http_port"):
        load(config, environ={})
    config.write_text("http_port = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(config, environ={})
    with pytest.raises(SettingsError, match="not found"):
        load(tmp_path / "missing.toml", environ={})


@pytest.mark.parametrize(
    ("text", "value"),
    [("7d", 604800.0), ("2m", 120.0), ("500ms", 0.5), ("30", 30.0), ("1.5h", 5400.0)],
)
def test_durations(text: str, value: float) -> None:
    assert seconds(text) == value


def test_unknown_environment_variables_are_ignored() -> None:
    assert load(None, environ={"MOTIONLEDGER_TEST_DATABASE_URL": "x"}) == Settings()
