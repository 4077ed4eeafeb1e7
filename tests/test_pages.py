"""The HTML pages' icon (issue 24): each page links it, and /favicon.ico, which browsers ask
for by themselves, answers with it rather than a 404."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.runtime import build_runtime
from tests.conftest import SettingsFactory

ICON = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'


@pytest.fixture
def client(make_settings: SettingsFactory) -> Iterator[TestClient]:
    runtime = build_runtime(make_settings())
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield client


@pytest.mark.parametrize("page", ["/", "/staff", "/staff/report"])
def test_every_page_links_the_icon(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and ICON in response.text


def test_the_icon_is_served_and_favicon_ico_answers_with_it(client: TestClient) -> None:
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.content.startswith(b"<svg") and len(icon.content) < 2048  # small
    legacy = client.get("/favicon.ico")
    assert legacy.status_code == 200 and legacy.content == icon.content
    assert legacy.headers["content-type"].startswith("image/svg+xml")
    assert "favicon" not in client.get("/openapi.json").text  # not part of the API
