"""/docs and /redoc work with no internet: their pages name only assets the app serves itself
(Swagger UI and ReDoc from the fastapi-offline package), and in Chromium, with every request
beyond this machine refused, both render the API."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.runtime import build_runtime
from tests.conftest import SettingsFactory
from tests.live_server import serve

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def client(make_settings: SettingsFactory) -> Iterator[TestClient]:
    runtime = build_runtime(make_settings())
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_name_only_assets_the_app_serves(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    assets = ASSET.findall(html)
    assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
    assert "/openapi.json" in html and client.get("/openapi.json").status_code == 200


def test_the_redoc_bundle_names_no_image_beyond_this_server(client: TestClient) -> None:
    """ReDoc draws Redocly's logo from a CDN, which the pages' policy blocks (an error in the
    browser's console): the bundle is served with a local image in its place."""
    bundle = client.get("/docs-assets/redoc.standalone.js")
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "cdn.redoc.ly" not in bundle.text and "API docs by Redocly" in bundle.text
    assert 'src:"data:image/svg+xml,' in bundle.text  # an image the policy allows
    assert "img-src 'self' data:" in client.get("/redoc").headers["content-security-policy"]
    again = client.get("/docs-assets/redoc.standalone.js",
                       headers={"If-None-Match": bundle.headers["etag"]})  # fmt: skip
    assert again.status_code == 304 and not again.content


@pytest.mark.slow
def test_swagger_ui_and_redoc_render_with_no_internet(make_settings: SettingsFactory) -> None:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found; .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import Route, sync_playwright

    runtime = build_runtime(make_settings())
    refused: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with serve(create_app(runtime.settings, runtime)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            assert "supportbot" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector('[data-path="/v1/conversations/{conversation_id}/messages"]')
            page.screenshot(path=str(ARTIFACTS / "docs-swagger-offline.png"))
            page.goto(f"{base}/redoc")
            page.wait_for_selector("h1:has-text('supportbot')", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "docs-redoc-offline.png"))
        finally:
            browser.close()
    assert refused == []
