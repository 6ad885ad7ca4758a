"""The docs page at /schema: Swagger UI over the OpenAPI document, with no network access.

A studio network often has no internet, so nothing the page needs comes from a CDN: Swagger
UI's script, stylesheet and icon are vendored under static/swagger-ui/ (with their licence;
`make swagger-ui` refreshes them from npm) and served from /schema/assets/swagger-ui-<version>/
with year-long cache headers (a new version is a new URL). No web fonts: Swagger UI's
stylesheet uses the system's. The document is embedded in the page, so it renders in one
load; "Authorize" takes the bearer token declared in the document.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

from .openapi import OpenAPIJson

_ASSETS: Final = resources.files(__package__) / "static" / "swagger-ui"
_MEDIA_TYPES: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}
# the URL names the version, so a cached copy is never stale
IMMUTABLE: Final = "public, max-age=31536000, immutable"
SWAGGER_UI_VERSION: Final[str] = json.loads((_ASSETS / "package.json").read_text())["version"]
ASSETS_PATH: Final = f"/assets/swagger-ui-{SWAGGER_UI_VERSION}"


@cache
def _asset(name: str) -> bytes:
    return (_ASSETS / name).read_bytes()


def _serve_asset(name: FromPath[str]) -> Response[bytes]:
    media_type = _MEDIA_TYPES.get(name)
    if media_type is None:
        raise NotFoundException("no such asset")
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} {version}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<style>body {{ margin: 0 }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  spec: {spec},
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  validatorUrl: null
}});
</script>
</body>
</html>
"""


class SwaggerDocs(OpenAPIRenderPlugin):
    """/schema: Swagger UI from the package's own assets (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # the embedded document may hold "</script>" in a description: "<\\/" is the same JSON
        spec = OpenAPIJson.render_json(request, openapi_schema).replace(b"</", b"<\\/")
        root = (request.app.openapi_config.path if request.app.openapi_config else "") or ""
        info = openapi_schema["info"]
        return _PAGE.format(
            title=_escape(info["title"]),
            version=_escape(info["version"]),
            assets=root.rstrip("/") + ASSETS_PATH,
            spec=spec.decode(),
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            get(
                f"{ASSETS_PATH}/{{name:str}}",
                include_in_schema=False,
                sync_to_thread=False,
                name="swagger_ui_asset",
            )(_serve_asset)
        )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
