"""Headless Chromium as a person on a studio network without internet would use it: every
host but loopback unresolvable, so a page that needs a CDN or a web font shows nothing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM = next((path for name in NAMES if (path := shutil.which(name))), None)
NO_CHROMIUM = f"no Chromium binary on PATH (looked for {', '.join(NAMES)})"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
OFFLINE = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
]


def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM once its scripts ran."""
    assert CHROMIUM is not None, NO_CHROMIUM
    done = subprocess.run(
        [CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Elements(HTMLParser):
    """Every element's tag, attributes and text (its descendants' too), in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[list[str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text: list[str] = []
        self.found.append((tag, {k: v or "" for k, v in attrs}, text))
        if tag not in VOID:  # no end tag follows
            self._open.append(text)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in VOID:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            for text in self._open:
                text.append(data.strip())

    def with_class(self, name: str) -> list[tuple[dict[str, str], str]]:
        return [
            (attrs, " ".join(text))
            for _, attrs, text in self.found
            if name in attrs.get("class", "").split()
        ]


class Tab:
    """A page in headless Chromium (offline as above), driven over the DevTools protocol on a
    pipe (--remote-debugging-pipe: commands on fd 3, answers on fd 4, NUL-separated JSON),
    so no WebSocket client is needed. `evaluate` runs JavaScript in the page, awaiting it."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None, NO_CHROMIUM
        commands_in, self._commands = os.pipe()
        self._answers, answers_out = os.pipe()

        def on_fds_3_and_4() -> None:  # where Chromium looks for the pipe
            os.dup2(commands_in, 3)
            os.dup2(answers_out, 4)

        options = [o for o in OFFLINE if not o.startswith("--virtual-time-budget")]
        # only two dup2 calls run between fork and exec (preexec_fn is safe enough here)
        self._process = subprocess.Popen(
            [CHROMIUM, *options, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            pass_fds=(3, 4),
            preexec_fn=on_fds_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_in)
        os.close(answers_out)
        self._next_id, self._buffer = 0, b""
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

    def _call(self, method: str, params: dict[str, Any], session: str | None = None) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._answers, 1 << 16)
                assert chunk, "Chromium closed the pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                assert "error" not in answer, answer["error"]
                return answer["result"]

    def open(self, url: str) -> None:
        self._call("Page.navigate", {"url": url}, self._session)

    def evaluate(self, expression: str) -> Any:
        result = self._call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            self._session,
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            self._call("Browser.close", {})
        for fd in (self._commands, self._answers):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
