"""The docs page at /schema, as an operator on a studio network without internet opens it: a
real `serve` with a token, headless Chromium that can resolve no host but loopback."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import motionledger
from motionledger.settings import Settings
from tests.support.browser import CHROMIUM, NO_CHROMIUM, Elements, Tab, dump_dom
from tests.support.ledger import ServeProcess

from .conftest import ServeApi

TOKEN = "docs-page-token"


@pytest.fixture
async def served(settings: Settings, tmp_path: Path) -> AsyncIterator[ServeProcess]:
    serve = ServeProcess(settings.replace(api_token=TOKEN), tmp_path / "serve.log").start()
    try:
        await serve.wait_ready()
        yield serve
    finally:
        serve.terminate()


async def test_the_docs_page_renders_the_operations_and_the_bearer_scheme_offline(
    served: ServeProcess, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=15) as http:
        document = (await http.get("/schema/openapi.json")).json()
        page = (await http.get("/schema")).text
    # nothing the page loads comes from another host
    loads = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert loads
    assert all(url.startswith("/schema/assets/") for url in loads), loads

    dom = Elements(await asyncio.to_thread(dump_dom, f"{served.base_url}/schema", tmp_path / "p"))

    # every operation of the document, rendered by Swagger UI (not only the embedded JSON)
    rendered = {attrs["data-path"] for attrs, _ in dom.with_class("opblock-summary-path")}
    assert rendered == set(document["paths"])
    assert len(rendered) >= 20
    summaries = {text for _, text in dom.with_class("opblock-summary-description")}
    assert {"Start a session (session.started)", "Record a director event"} <= summaries
    assert any(text.startswith("A session's timeline") for text in summaries)
    methods = [text for _, text in dom.with_class("opblock-summary-method")]
    assert {"GET", "POST"} == set(methods)
    titles = " ".join(text for _, text in dom.with_class("title"))
    assert "motionledger" in titles

    # the bearer scheme: the Authorize button, and a lock on every (all /production) operation
    authorize = dom.with_class("authorize")
    assert len(authorize) == 1
    assert "Authorize" in authorize[0][1]
    assert len(dom.with_class("authorization__btn")) == len(methods)


# What a person does on the page: "Try it out" on GET /production/session/active, then
# "Authorize" with the token, then again; returns what the page showed each time.
TRY_IT = """
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const find = async (selector, within = document, ok = () => true) => {
    for (let i = 0; i < 300; i++) {
      const found = [...within.querySelectorAll(selector)].find(ok);
      if (found) return found;
      await sleep(50);
    }
    throw new Error("not found: " + selector);
  };
  const operation = await find("#operations-production-ProductionSessionActiveGetActiveSession");
  (await find(".opblock-summary-control", operation)).click();
  (await find(".try-out__btn", operation)).click();
  const tryIt = async () => {
    (await find("button.execute", operation)).click();
    const status = await find(".live-responses-table tr.response .response-col_status", operation);
    const shown = status.textContent.trim();
    const curl = (await find(".curl-command", operation)).textContent;
    const clear = operation.querySelector("button.btn-clear");
    if (clear) clear.click();
    await sleep(100);
    return { status: shown, curl };
  };
  const before = await tryIt();
  (await find("button.btn.authorize")).click();
  const modal = await find(".auth-container");
  const text = modal.textContent;
  const input = await find("input", modal);
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
  setValue.call(input, "%TOKEN%");
  input.dispatchEvent(new Event("input", { bubbles: true }));
  (await find("button", modal, (b) => b.textContent.trim() === "Authorize")).click();
  await find("button", document, (b) => b.textContent.trim() === "Logout");  // authorized
  (await find("button.btn-done")).click();
  const after = await tryIt();
  return { modal: text, before, after };
})()
"""


async def test_try_it_out_sends_the_token_once_authorized(
    served: ServeProcess, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)

    def use_the_page() -> dict[str, Any]:
        tab = Tab(tmp_path / "profile")
        try:
            tab.open(f"{served.base_url}/schema")
            seen: dict[str, Any] = tab.evaluate(TRY_IT.replace("%TOKEN%", TOKEN))
            return seen
        finally:
            tab.close()

    seen = await asyncio.to_thread(use_the_page)
    assert "bearer" in seen["modal"]
    assert "(http, Bearer)" in seen["modal"]
    assert "needed only when the server sets it" in seen["modal"]
    assert seen["before"]["status"] == "401"
    assert "Authorization" not in seen["before"]["curl"]
    assert seen["after"]["status"] == "200"
    assert f"Authorization: Bearer {TOKEN}" in seen["after"]["curl"]
    assert f"{served.base_url}/production/session/active" in seen["after"]["curl"]


async def test_docs_assets_are_packaged_cached_and_open_without_the_token(
    serve_api: ServeApi,
) -> None:
    async with serve_api(token=TOKEN) as api:
        bare = httpx.AsyncClient(base_url=str(api.http.base_url), timeout=15)
        async with bare:
            page = await bare.get("/schema")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assets = re.findall(r'(?:src|href)="(/schema/assets/[^"]+)"', page.text)
            assert {url.rsplit("/", 1)[1] for url in assets} == {
                "favicon-32x32.png",
                "swagger-ui.css",
                "swagger-ui-bundle.js",
            }
            for url in assets:
                asset = await bare.get(url)
                assert asset.status_code == 200, url
                assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
                assert len(asset.content) > 500
            prefix = assets[0].rsplit("/", 1)[0]
            assert "Apache License" in (await bare.get(f"{prefix}/LICENSE")).text
            assert (await bare.get(f"{prefix}/package.json")).status_code == 404
            assert (await bare.get("/production/session/active")).status_code == 401
            document = (await bare.get("/schema/openapi.json")).json()

    assert document["info"]["version"] == motionledger.__version__
    assert (
        "needed only when the server sets MOTIONLEDGER_API_TOKEN" in document["info"]["description"]
    )
    assert document["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "MOTIONLEDGER_API_TOKEN; needed only when the server sets it",
        }
    }
    operations = [
        (path, operation) for path, item in document["paths"].items() for operation in item.values()
    ]
    assert all(path.startswith("/production/") for path, _ in operations)
    assert all(operation["security"] == [{"bearer": []}] for _, operation in operations)


def test_the_wheel_carries_the_docs_assets_and_their_licence(tmp_path: Path) -> None:
    """A `pip install` has the page's assets (hatch packages them with the code)."""
    root = Path(__file__).resolve().parents[2]
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("motionledger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = "motionledger/http/static/swagger-ui/"
    assert {
        f"{static}{name}"
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE", "package.json")
    } <= names
