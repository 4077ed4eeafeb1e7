"""No 5xx, whatever the input (issue 13): naive dates, out-of-range ids, photos that do not
decode, and an OpenAPI document that says what the API does. On SQLite and PostgreSQL where
the database is involved."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from agent.api.app import create_app
from agent.cli import app as cli
from agent.store.conversations import append_messages, create_conversation
from agent.store.db import transaction
from agent.store.tables import Message
from tests.conftest import IVAN, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, text
from tests.images import JPEG_HEADER, png
from tests.test_api import Api, _runtime

runner = CliRunner()


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _billed_call(api: Api, at: datetime, input_tokens: int) -> None:
    with transaction(api.runtime.engine) as session:
        conversation = create_conversation(session=session)
        reply = Message(role="assistant", content=[{"type": "text", "text": "hi"}],
                        model="claude-sonnet-5-5", usage={"input_tokens": input_tokens},
                        created_at=at)  # fmt: skip
        append_messages(session=session, conversation_id=conversation.id, messages=[reply])


# -- 1. a date without a time zone is UTC -------------------------------------------------------


def test_usage_since_a_naive_date_or_time_reads_it_as_utc(api: Api) -> None:
    _billed_call(api, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 100)
    _billed_call(api, datetime(2026, 11, 1, 0, 30, tzinfo=UTC), 7)
    for since, calls in (
        ("2026-11-01", 1),  # the README's own format
        ("2026-11-01T00:00:00", 1),
        ("2026-11-01 00:00", 1),
        ("2026-11-01T01:00:00+01:00", 1),  # midnight UTC, written in another zone
        ("2026-10-31T23:00:00Z", 2),
        ("2026-11-01T00:31:00", 0),
    ):
        response = api.client.get("/v1/usage", params={"since": since}, headers=api.auth("admin"))
        assert response.status_code == 200, (since, response.text)
        assert response.json()["total"]["calls"] == calls, since
    latest = api.client.get("/v1/usage?since=2026-11-01", headers=api.auth("admin")).json()
    assert latest["total"]["input_tokens"] == 7 and latest["rows"][0]["key"] == "2026-11-01"
    bad = api.client.get("/v1/usage?since=yesterday", headers=api.auth("admin"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    # In range where it was written, out of range once in UTC.
    for edge in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
        response = api.client.get("/v1/usage", params={"since": edge}, headers=api.auth("admin"))
        assert response.status_code == 422 and "out of range" in response.text, edge


def test_usage_cli_since_a_naive_date(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _billed_call(api, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 100)
    _billed_call(api, datetime(2026, 11, 1, 0, 30, tzinfo=UTC), 7)
    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", api.runtime.settings.resolved_database_url())
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(api.runtime.settings.data_dir))
    for since, tokens in (("2026-11-01", 7), ("2026-11-01T00:00:00", 7),
                          ("2026-11-01T01:00:00+01:00", 7), ("2026-10-31", 107)):  # fmt: skip
        result = runner.invoke(cli, ["usage", "--since", since, "--json"])
        assert result.exit_code == 0, (since, result.output)
        assert json.loads(result.stdout)["total"]["input_tokens"] == tokens, since
    edge = runner.invoke(cli, ["usage", "--since", "9999-12-31T23:00:00-05:00"])
    assert edge.exit_code == 1 and "out of range" in edge.output


# -- 2. bounded path and query parameters ------------------------------------------------------


def test_out_of_range_ids_are_a_422_never_a_500(api: Api) -> None:
    admin = api.auth("admin")
    for ticket in (2**63, 2**64 + 1, 10**30, 2**31, -1, 0):
        for action in ("claim", "reply", "resolve"):
            response = api.client.post(f"/v1/tickets/{ticket}/{action}", json={"text": "hi"},
                                       headers=admin)  # fmt: skip
            assert response.status_code == 422, (ticket, action, response.text)
            assert response.json()["error"]["code"] == "invalid_request"
    for ticket in (2**31 - 1, 1):  # the largest id there can be (INTEGER) is simply not found
        response = api.client.post(f"/v1/tickets/{ticket}/claim", headers=admin)
        assert response.status_code == 404, (ticket, response.text)
    for query in ("limit=9223372036854775808", "limit=0"):
        response = api.client.get(f"/v1/actions?{query}", headers=admin)
        assert response.status_code == 422, query
    response = api.client.get("/v1/kb/search?q=kettle&k=9223372036854775808", headers=admin)
    assert response.status_code == 422


def test_overlong_or_nul_string_ids_are_a_4xx(api: Api) -> None:
    conversation = api.start("backend")["id"]
    backend, admin = api.auth("backend"), api.auth("admin")
    long_id = "c" * 5000
    checks = [
        ("GET", f"/v1/conversations/{long_id}", backend, None),
        ("GET", f"/v1/conversations/{long_id}/actions", backend, None),
        ("POST", f"/v1/conversations/{long_id}/messages", backend, {"text": "hi"}),
        ("POST", f"/v1/conversations/{conversation}/actions/{'a' * 5000}/confirm", backend, None),
        ("POST", f"/v1/conversations/{conversation}/actions/{'a' * 5000}/decline", backend, None),
        ("POST", f"/v1/customers/{'x' * 5000}/actions", admin,
         {"tool": "cancel_pending_order", "arguments": {}}),
        ("DELETE", f"/v1/kb/documents/{'d' * 5000}", admin, None),
        # NUL cannot be stored or compared in PostgreSQL text; it is no id of ours either way.
        ("GET", "/v1/conversations/a%00b", backend, None),
        ("POST", "/v1/conversations/a%00b/messages", backend, {"text": "hi"}),
        ("GET", "/v1/actions?customer_id=a%00b", admin, None),
        ("GET", "/v1/actions?conversation_id=a%00b", admin, None),
        ("POST", "/v1/customers/a%00b/actions", admin, {"tool": "cancel_pending_order"}),
    ]  # fmt: skip
    for method, url, headers, body in checks:
        response = api.client.request(method, url, headers=headers, json=body)
        assert response.status_code in (404, 422), (method, url[:80], response.text)
        assert "error" in response.json()


def test_nul_characters_in_bodies_are_a_4xx(api: Api, fake: FakeAnthropic) -> None:
    backend, admin = api.auth("backend"), api.auth("admin")
    for body in ({"customer_id": "a\x00b"}, {"customer_email": "a\x00b@example.com"}):
        response = api.client.post("/v1/conversations", json=body, headers=backend)
        assert response.status_code == 422, (body, response.text)
    customer, ivan = (
        api.start("backend", customer_email=IVAN["email"]),
        customer_id(api.runtime, IVAN["email"]),
    )
    for body in ({"tool": "cancel_pending_order", "arguments": {"order_id": "#W\x00"}},
                 {"tool": "cancel\x00", "arguments": {}},
                 {"tool": "cancel_pending_order", "conversation_id": "\x00"}):  # fmt: skip
        response = api.client.post(f"/v1/customers/{ivan}/actions", json=body,
                                   headers=admin)  # fmt: skip
        assert response.status_code in (404, 422), (body, response.text)
    # Free text is stored as JSON, where a NUL is only an escape: it is accepted.
    fake.enqueue(text("Hello."))
    said = api.client.post(f"/v1/conversations/{customer['id']}/messages",
                           json={"text": "hi\x00there"}, headers=backend)  # fmt: skip
    assert said.status_code == 200, said.text


# -- 3. photos are decoded before they are accepted --------------------------------------------


def _jpeg(size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims `width` x `height` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("kettle.jpg", JPEG_HEADER + b"\x00" * 2000, "kettle.jpg could not be read as an image"),
        ("cut.jpg", _jpeg()[:-200], "cut.jpg could not be read as an image"),
        ("half.png", png(64, 64)[:60], "half.png could not be read as an image"),
        ("bomb.png", _png_claiming(100_000, 100_000), "bomb.png has too many pixels"),
        ("wide.png", _png_claiming(9000, 10), "wide.png is 9,000 × 10 pixels"),
    ],
)
def test_a_photo_that_does_not_decode_is_a_422_naming_it(
    api: Api, fake: FakeAnthropic, name: str, data: bytes, message: str
) -> None:
    conversation = api.start("backend")["id"]
    url = f"/v1/conversations/{conversation}/messages"
    as_form = api.client.post(url, headers=api.auth("backend"), data={"text": "look"},
                              files=[("images", (name, data, "application/octet-stream"))])  # fmt: skip
    as_json = api.client.post(url, headers=api.auth("backend"), json={
        "text": "look", "images": [{"name": name, "data": base64.b64encode(data).decode()}]})  # fmt: skip
    for response in (as_form, as_json):
        assert response.status_code == 422, response.text
        assert message in response.json()["error"]["message"]
    assert fake.bodies == []  # nothing reached the model, nothing was stored
    transcript = api.client.get(f"/v1/conversations/{conversation}", headers=api.auth("backend"))
    assert transcript.json()["messages"] == []


def test_real_photos_pass_and_the_type_and_size_rules_stand(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend")["id"]
    url = f"/v1/conversations/{conversation}/messages"
    fake.enqueue(text("I see it."))
    ok = api.client.post(url, headers=api.auth("backend"), data={"text": "look"},
                         files=[("images", ("kettle.jpg", _jpeg(), "image/jpeg"))])  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert fake.bodies[0]["messages"][-1]["content"][0]["source"]["media_type"] == "image/jpeg"
    not_image = api.client.post(url, headers=api.auth("backend"), data={"text": "look"},
                                files=[("images", ("a.jpg", b"hello", "image/jpeg"))])  # fmt: skip
    assert not_image.status_code == 415
    big = api.client.post(url, headers=api.auth("backend"), data={"text": "look"},
                          files=[("images", ("b.png", png() + b"\0" * 6_000_000, "image/png"))])  # fmt: skip
    assert big.status_code == 413


def test_an_empty_multipart_text_with_a_photo_is_a_message(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])["id"]
    url = f"/v1/conversations/{conversation}/messages"
    fake.enqueue(text("Thanks for the photo."), text("Got it."))
    photo = [("images", ("crack.png", png(), "image/png"))]
    sent = api.client.post(url, headers=api.auth("backend"), data={"text": ""}, files=photo)
    assert sent.status_code == 200, sent.text
    streamed = api.client.post(url + "?stream=true", headers=api.auth("backend"),
                               data={"text": ""}, files=photo)  # fmt: skip
    assert streamed.status_code == 200 and "event: final" in streamed.text
    # Without a photo an empty text is still "The message is empty." (and the schema says so).
    empty = api.client.post(url, headers=api.auth("backend"), data={"text": ""},
                            files=[("other", ("x.txt", b"x", "text/plain"))])  # fmt: skip
    assert empty.status_code == 422 and empty.json()["error"]["message"] == "The message is empty."


# -- 4. the OpenAPI document says what the API does ----------------------------------------------


def test_a_405_keeps_its_allow_header(api: Api) -> None:
    response = api.client.delete("/v1/usage", headers=api.auth("admin"))
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"
    unauthorized = api.client.get("/v1/usage")
    assert unauthorized.headers["www-authenticate"] == "Bearer"


def test_a_body_that_does_not_parse_is_a_422(api: Api) -> None:
    """Found by the fuzzer: FastAPI answers 400 to a body that is not UTF-8."""
    response = api.client.post("/v1/conversations", content=b"\xff;\n",
                               headers=api.auth("backend", **{"Content-Type": "application/json"}))  # fmt: skip
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_openapi_declares_errors_streams_and_the_empty_text_rule(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    paths = doc["paths"]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's 422 is not what we send
    assert "$defs" not in json.dumps(doc["paths"])  # no reference that means nothing

    def responses(path: str, method: str) -> dict:
        return paths[path][method]["responses"]

    for path, item in paths.items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if path.startswith("/v1/"):
                assert {"401", "429"} <= codes, (method, path)
            for code, declared in operation["responses"].items():
                if code.startswith("4"):
                    schema = declared["content"]["application/json"]["schema"]
                    assert schema == error, (method, path, code)
    messages = "/v1/conversations/{conversation_id}/messages"
    assert {"401", "404", "409", "413", "415", "422", "429"} <= set(responses(messages, "post"))
    for path in (messages, "/v1/conversations/{conversation_id}/actions/{action_id}/confirm",
                 "/v1/conversations/{conversation_id}/actions/{action_id}/decline"):  # fmt: skip
        assert "text/event-stream" in responses(path, "post")["200"]["content"], path
    assert {"403", "404", "409", "422"} <= set(responses("/v1/tickets/{ticket_id}/claim", "post"))
    assert "403" in responses("/v1/usage", "get") and "403" in responses("/v1/tickets", "get")
    ticket_id = paths["/v1/tickets/{ticket_id}/claim"]["post"]["parameters"][0]
    assert ticket_id["schema"]["minimum"] == 1
    assert ticket_id["schema"]["maximum"] == 2**31 - 1
    assert "503" in responses("/readyz", "get")
    form = paths[messages]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "empty" in form["description"] and form["anyOf"]
    body = paths[messages]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"]
