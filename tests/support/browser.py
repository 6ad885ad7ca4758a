"""Headless Chromium as a person on a studio network without internet would use it: every
host but loopback unresolvable, so a page that needs a CDN or a web font shows nothing."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

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
