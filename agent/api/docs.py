"""API docs that work with no internet: Swagger UI at /docs and ReDoc at /redoc, their
scripts and styles from the fastapi-offline package, served at /docs-assets. A
Content-Security-Policy keeps both pages to this server; ReDoc's bundle is served with its one
outside address, Redocly's logo on a CDN, replaced by a local image, so that the policy has
nothing to block (a blocked image is an error in the browser's console)."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))  # swagger-ui, redoc, favicon
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
REDOC_JS = "redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # beside "API docs by Redocly"
# A plain page mark in the sidebar's grey, in its place (an image the policy allows: data:).
LOCAL_LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Cpath d='M3 1h7l3 3v11H3z' fill='none' stroke='%23999' stroke-width='1.5'/%3E%3C/svg%3E"
)


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (create the app with docs_url=redoc_url=None)."""
    redoc_js = (ASSETS / REDOC_JS).read_bytes().replace(REDOCLY_LOGO.encode(), LOCAL_LOGO.encode())
    redoc_etag = f'"{hashlib.sha256(redoc_js).hexdigest()[:32]}"'

    # Before the mount, which would answer this path with the file as it is.
    @app.get(f"{ASSETS_URL}/{REDOC_JS}", include_in_schema=False)
    def redoc_bundle(request: Request) -> Response:
        headers = {"ETag": redoc_etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == redoc_etag:
            return Response(status_code=304, headers=headers)
        return Response(redoc_js, media_type="text/javascript; charset=utf-8", headers=headers)

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # No validator badge fetched from swagger.io.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page
