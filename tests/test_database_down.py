"""The database going away under a running server (a restart, a crash, a network cut): each
request meanwhile is a 503 with Retry-After that changed nothing, never an internal error,
and the server serves again once the database is back, without being restarted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from tests.conftest import SettingsFactory, started_postgres
from tests.postgres import PostgresServer
from tests.test_api import Api, _runtime

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own: the session's is shared, and this one is stopped."""
    server = started_postgres()
    yield server
    server.stop()


@pytest.fixture
def db_url(own_server: PostgresServer) -> Iterator[str]:
    with own_server.database(f"t_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime), raise_server_exceptions=False) as client:
        yield Api(client, runtime, keys)


def test_a_database_that_goes_away_is_a_503_with_retry_after_and_comes_back(
    api: Api, own_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    api.start()  # served
    own_server.pause()
    try:
        down = api.client.post("/v1/conversations", json={}, headers=api.auth("backend"))
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "database_unavailable"
        assert int(down.headers["Retry-After"]) > 0
        assert "unhandled error" not in caplog.text  # a warning, not an internal error
    finally:
        own_server.resume()
    # Back without a restart: a request may still meet a connection from before (a 503
    # again, which drops them all), the next one is served.
    statuses = [api.client.post("/v1/conversations", json={}, headers=api.auth("backend"))
                for _ in range(2)]  # fmt: skip
    assert statuses[-1].status_code == 201, statuses[-1].text
    assert all(s.status_code in (201, 503) for s in statuses)
