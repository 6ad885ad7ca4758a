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

import httpx
import pytest

import motionledger
from motionledger.settings import Settings
from tests.support.browser import CHROMIUM, NO_CHROMIUM, Elements, dump_dom
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
    assert re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(
        url.startswith("/schema/assets/") for url in re.findall(r'(?:src|href)="([^"]*)"', page)
    )

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
