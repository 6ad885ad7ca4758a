"""The query endpoint over real HTTP against a real `serve` (in-process: uvicorn, NATS and
Postgres are all real), with a small client that checks the envelope on every answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest

from motionledger.daemon import Runtime
from motionledger.settings import Settings
from tests.support.ledger import running_ledger


class Answer(msgspec.Struct):
    status: int
    body: Any

    @property
    def result(self) -> Any:
        assert self.status in (200, 202), (self.status, self.body)
        assert self.body["ok"] is True
        return self.body["result"]

    @property
    def error(self) -> dict[str, str]:
        assert self.status >= 400, (self.status, self.body)
        assert self.body["ok"] is False
        assert set(self.body["error"]) == {"code", "message"}
        return self.body["error"]


class Api:
    def __init__(self, http: httpx.AsyncClient, res: Runtime) -> None:
        self.http = http
        self.res = res

    async def post(self, path: str, body: Any = None, *, raw: bytes | None = None) -> Answer:
        content = raw if raw is not None else msgspec.json.encode(body)
        response = await self.http.post(
            f"/production/{path}", content=content, headers={"content-type": "application/json"}
        )
        return self._answer(response)

    async def get(self, path: str, **params: Any) -> Answer:
        query = {k: _query(v) for k, v in params.items() if v is not None}
        return self._answer(await self.http.get(f"/production/{path}", params=query))

    @staticmethod
    def _answer(response: httpx.Response) -> Answer:
        assert response.headers["content-type"].startswith("application/json"), response.text
        return Answer(response.status_code, response.json())


def _query(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


ServeApi = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
def serve_api(settings: Settings) -> ServeApi:
    """`async with serve_api(**setting_changes) as api:` a running ledger and its client."""

    @contextlib.asynccontextmanager
    async def serving(token: str | None = None, **changes: Any) -> AsyncIterator[Api]:
        effective = settings.replace(api_token=token, **changes)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with (
            running_ledger(effective) as res,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{effective.http_port}", headers=headers, timeout=15
            ) as http,
        ):
            yield Api(http, res)

    return serving


@pytest.fixture
async def api(serve_api: ServeApi) -> AsyncIterator[Api]:
    async with serve_api() as client:
        yield client
