"""Request bodies over SUPPORTBOT_MAX_REQUEST_BYTES are a 413 `request_too_large` (issue 24):
a customer message measured without its photos, as JSON or multipart, and every JSON route,
whether the size is declared (Content-Length) or the body comes in chunks."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from agent.api.app import create_app
from tests.conftest import SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text
from tests.test_api import Api, _runtime

LIMIT = 65536  # SUPPORTBOT_MAX_REQUEST_BYTES's default


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    assert runtime.settings.max_request_bytes == LIMIT
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _chunked(data: bytes) -> Iterator[bytes]:
    """The body as a stream: sent with Transfer-Encoding: chunked, no Content-Length."""
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


def _too_large(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def _noise_png(side: int = 200) -> bytes:
    """A real photo-sized PNG (random pixels do not compress): about 120 KB."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def test_a_100_kb_message_is_a_413_as_json_or_multipart(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend")["id"]
    url = f"/v1/conversations/{conversation}/messages"
    headers = api.auth("backend")
    as_json = json.dumps({"text": "x" * 100_000}).encode()
    json_headers = {**headers, "Content-Type": "application/json"}
    for response in (
        api.client.post(url, content=as_json, headers=json_headers),
        api.client.post(url, content=_chunked(as_json), headers=json_headers),
        api.client.post(url + "?stream=true", content=as_json, headers=json_headers),
        api.client.post(url, files=[("text", (None, "x" * 100_000))], headers=headers),
        # Past the form parser's own 1 MB cap on a field: the same answer.
        api.client.post(url, files=[("text", (None, "x" * 2_000_000))], headers=headers),
        # Not even JSON, or nested too deep to read: a body this large is judged by its size.
        api.client.post(url, content=b"{" * 100_000, headers=json_headers),
        api.client.post(url, content=b"[" * 100_000, headers=json_headers),
    ):
        assert _too_large(response), response.text
        message = response.json()["error"]["message"]
        assert (
            message == f"The request body is larger than {LIMIT} bytes (not counting its photos)."
        )
    assert fake.bodies == []  # nothing reached the model, nothing was stored
    transcript = api.client.get(f"/v1/conversations/{conversation}", headers=headers)
    assert transcript.json()["messages"] == []


def test_a_message_within_the_limit_is_judged_by_its_length(api: Api) -> None:
    conversation = api.start("backend")["id"]
    response = api.client.post(f"/v1/conversations/{conversation}/messages",
                               json={"text": "x" * 5000}, headers=api.auth("backend"))  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "The message is too long (5000 characters; the limit is 4000)."
    )


def test_photos_do_not_count_against_the_request_limit(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend")["id"]
    url = f"/v1/conversations/{conversation}/messages"
    photo = _noise_png()
    encoded = base64.b64encode(photo).decode()
    assert len(encoded) > 2 * LIMIT
    fake.enqueue(text("I see it."), text("I see it again."))
    as_json = api.client.post(url, headers=api.auth("backend"),
                              json={"text": "look", "images": [{"data": encoded}]})  # fmt: skip
    assert as_json.status_code == 200, as_json.text
    as_form = api.client.post(url, headers=api.auth("backend"), data={"text": "look"},
                              files=[("images", ("crack.png", photo, "image/png"))])  # fmt: skip
    assert as_form.status_code == 200, as_form.text
    # An invalid message with a photo is a 422 about what is wrong, not a 413.
    invalid = api.client.post(url, headers=api.auth("backend"),
                              json={"text": 5, "images": [{"data": encoded}]})  # fmt: skip
    assert invalid.status_code == 422 and invalid.json()["error"]["message"].startswith("body.text")
    # With a photo, the rest of the body is still held to the limit.
    both = api.client.post(url, headers=api.auth("backend"),
                           json={"text": "x" * 100_000, "images": [{"data": encoded}]})  # fmt: skip
    assert _too_large(both), both.text
    padded = api.client.post(url, headers=api.auth("backend"), json={
        "text": "look", "images": [{"data": encoded, "media_type": "x" * 100_000}]})  # fmt: skip
    assert _too_large(padded), padded.text


def test_every_json_route_answers_413_for_a_body_over_the_limit(api: Api) -> None:
    conversation = api.start("backend")["id"]
    backend, admin = api.auth("backend"), api.auth("admin")
    big = "x" * 100_000
    routes = [
        ("/v1/conversations", backend, {"customer_id": big}),
        (f"/v1/conversations/{conversation}/rating", backend, {"score": "up", "comment": big}),
        (f"/v1/conversations/{conversation}/end", backend, {"padding": big}),
        ("/v1/customers/nobody/actions", admin, {"tool": big, "arguments": {}}),
        ("/v1/tickets/1/assign", admin, {"staff_id": None, "padding": big}),
        ("/v1/tickets/1/reply", admin, {"text": big}),
        ("/v1/tickets/1/notes", admin, {"text": big}),
        ("/v1/staff/sessions", {}, {"username": "anna", "password": big}),
        ("/v1/saved-replies", admin, {"title": "Long", "text": big}),
    ]
    for path, headers, body in routes:
        data = json.dumps(body).encode()
        sent = {**headers, "Content-Type": "application/json"}
        declared = api.client.post(path, content=data, headers=sent)
        assert _too_large(declared), (path, declared.text)
        assert declared.json()["error"]["message"] == (
            f"The request body is larger than {LIMIT} bytes."
        )
        if path.endswith("/end"):  # reads no body: a stream of one is never looked at
            continue
        # Without a Content-Length the limit is met while the body is read: FastAPI's
        # "There was an error parsing the body" (a 422) must not be what the client gets.
        chunked = api.client.post(path, content=_chunked(data), headers=sent)
        assert _too_large(chunked), (path, chunked.status_code, chunked.text)


def test_the_schema_declares_413_wherever_a_body_is_taken(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    taking = [(method, path) for path, item in paths.items() for method, operation in item.items()
              if "requestBody" in operation]  # fmt: skip
    assert len(taking) >= 10
    for method, path in taking:
        assert "413" in paths[path][method]["responses"], (method, path)
