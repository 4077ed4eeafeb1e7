"""Logs: JSON lines carrying the request's and the conversation's ids, with no customer text
or identity facts (unless the debug setting lets them in); request ids accepted or made and
returned, on errors too."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.config import Settings
from agent.observability import logs
from agent.runtime import build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, error, tool_use


@dataclass
class Logged:
    client: TestClient
    key: str
    stream: io.StringIO

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The process's logging as it was (the JSON format is set on every root handler,
    pytest's own included)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    kept = [(h, h.formatter, list(h.filters))
            for name in logs.LOGGERS for h in logging.getLogger(name).handlers]  # fmt: skip
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for handler, formatter, filters in kept:
        handler.setFormatter(formatter)
        handler.filters = filters
    logs.configure(Settings())  # customer data hidden again


def _logged(make_settings: SettingsFactory, **overrides: object) -> Iterator[Logged]:
    runtime = build_runtime(make_settings(log_format="json", **overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        key = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    app = create_app(runtime.settings, runtime)  # the JSON format, on every root handler

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:  # an unexpected error, as a bug would raise
        raise RuntimeError("INSERT failed\n[parameters: ('ivan.santos3158@example.com', 'x')]")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield Logged(client, key, stream)


@pytest.fixture
def logged(make_settings: SettingsFactory, restore_logging: None) -> Iterator[Logged]:
    yield from _logged(make_settings)


MESSAGE = "Hi, I'm ivan.santos3158@example.com, zip 99999, where is my parcel?"


def test_json_lines_carry_request_and_conversation_ids_and_no_customer_data(
    logged: Logged, fake: FakeAnthropic
) -> None:
    conversation = logged.client.post("/v1/conversations", json={},
                                      headers=logged.headers()).json()["id"]  # fmt: skip
    # A failed identity check (logged as a warning), then Claude unavailable (another).
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "zip_code": "99999"}),
        *[error(529, "Overloaded", retry_after=0.01) for _ in range(3)],
    )
    response = logged.client.post(f"/v1/conversations/{conversation}/messages",
                                  json={"text": MESSAGE},
                                  headers=logged.headers(**{"X-Request-ID": "req-42"}))  # fmt: skip
    assert response.status_code == 200 and response.headers["x-request-id"] == "req-42"

    lines = logged.lines()  # every line is JSON
    failed = next(line for line in lines if "failed identity check" in line["message"])
    offline = next(line for line in lines if "answering offline" in line["message"])
    for line in (failed, offline):
        assert line["request_id"] == "req-42" and line["conversation_id"] == conversation
        assert line["level"] == "WARNING" and line["logger"] and line["time"]
    output = logged.stream.getvalue()
    assert "ivan.santos3158" not in output and "99999" not in output and "parcel" not in output


def test_request_ids_are_made_when_missing_or_unusable(logged: Logged) -> None:
    made = logged.client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32 and int(made, 16) >= 0
    odd = logged.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"
    long = logged.client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert len(long.headers["x-request-id"]) == 32
    limited = logged.client.post("/v1/conversations", json={})  # errors carry it too
    assert limited.status_code == 401 and len(limited.headers["x-request-id"]) == 32


def test_an_unexpected_error_is_logged_with_its_request_id_and_scrubbed(logged: Logged) -> None:
    response = logged.client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-500"
    line = next(line for line in logged.lines() if "unhandled error" in line["message"])
    assert line["request_id"] == "req-500" and "RuntimeError" in line["exception"]
    assert "[parameters: hidden]" in line["exception"]
    assert "ivan.santos3158" not in logged.stream.getvalue()


def test_the_debug_setting_lets_customer_data_in(
    make_settings: SettingsFactory, restore_logging: None
) -> None:
    for logged in _logged(make_settings, log_customer_data=True):
        logging.getLogger("agent.test").warning(
            "typed %s (%s)", logs.customer_data("my zip is 99999"), "ivan@example.com"
        )
        (line,) = [x for x in logged.lines() if x["logger"] == "agent.test"]
        assert line["message"] == "typed my zip is 99999 (ivan@example.com)"
    logs.configure(Settings())
    assert str(logs.customer_data("my zip is 99999")) == logs.HIDDEN
    assert logs.scrub("mail ivan@example.com") == "mail [email]"


def test_commands_log_json_lines_when_asked(tmp_path: Path) -> None:
    """The CLI follows SUPPORTBOT_LOG_FORMAT too: upgrading an old database warns as JSON."""
    import subprocess
    import sys

    from tests.test_migrations import _release_0_1_database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _release_0_1_database(url)
    env = {**os.environ, "SUPPORTBOT_DATABASE_URL": url, "SUPPORTBOT_LOG_FORMAT": "json",
           "SUPPORTBOT_DATA_DIR": str(tmp_path)}  # fmt: skip
    exe = Path(sys.executable).parent / "supportbot"
    done = subprocess.run([str(exe), "db", "upgrade"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(e["level"] == "WARNING" and "release 0.1" in e["message"] for e in lines), (
        done.stderr
    )
