"""Photo attachments: checked from their bytes, sent to Claude as image blocks, shown to staff."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.engine.budget import IMAGE_PLACEHOLDER, TokenCounter, fit_to_budget
from agent.models.base import ModelRequest
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.images import JPEG_HEADER, png


@pytest.fixture
def client(make_settings: SettingsFactory) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    runtime = build_runtime(make_settings())
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        key = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
    with TestClient(create_app(runtime.settings, runtime)) as c:
        yield c, {"Authorization": f"Bearer {key}"}, runtime


def _conversation(c: TestClient, headers: dict[str, str]) -> str:
    return c.post(
        "/v1/conversations", json={"customer_email": IVAN["email"]}, headers=headers
    ).json()["id"]


def test_a_json_photo_reaches_claude_as_an_image_block(client, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    c, headers, _ = client
    cid = _conversation(c, headers)
    photo = png()
    fake.enqueue(text("I can see the crack; I'll arrange a replacement."))
    response = c.post(f"/v1/conversations/{cid}/messages", headers=headers, json={
        "text": "My kettle arrived cracked", "images": [
            {"name": "kettle.png", "media_type": "image/png", "data": base64.b64encode(photo).decode()}]})  # fmt: skip
    assert response.status_code == 200, response.text
    content = fake.bodies[0]["messages"][-1]["content"]
    assert content[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                          "data": base64.b64encode(photo).decode()}}  # fmt: skip
    assert content[-1]["type"] == "text" and content[-1]["text"] == "My kettle arrived cracked"
    transcript = c.get(f"/v1/conversations/{cid}", headers=headers).json()
    (image,) = transcript["messages"][0]["images"]
    assert image["url"] == "data:image/png;base64," + base64.b64encode(photo).decode()


def test_multipart_upload_and_photo_only_messages(client, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    c, headers, _ = client
    cid = _conversation(c, headers)
    fake.enqueue(text("Thanks for the photo."))
    # The name says .gif and the client says nothing: the bytes decide (it is a PNG).
    response = c.post(f"/v1/conversations/{cid}/messages", headers=headers,
                      files=[("images", ("whatever.gif", png(), "application/octet-stream"))])  # fmt: skip
    assert response.status_code == 200, response.text
    (block,) = fake.bodies[0]["messages"][-1]["content"]
    assert block["type"] == "image" and block["source"]["media_type"] == "image/png"


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        (
            [("images", ("big.png", png() + b"\x00" * 6_000_000, "image/png"))],
            413,
            "big.png is 6,000,",
        ),
        (
            [("images", ("notes.png", b"just some text", "image/png"))],
            415,
            "notes.png is not a JPEG, PNG",
        ),
        (
            [("images", ("photo.jpg", png(), "image/jpeg"))],
            422,
            "labelled image/jpeg but its content is image/png",
        ),
        (
            [("images", (f"p{i}.png", png(), "image/png")) for i in range(5)],
            422,
            "At most 4 images",
        ),
    ],
)
def test_bad_photos_are_rejected_clearly(
    client, fake: FakeAnthropic, files, status, message
) -> None:  # type: ignore[no-untyped-def]
    c, headers, _runtime = client
    cid = _conversation(c, headers)
    response = c.post(
        f"/v1/conversations/{cid}/messages", headers=headers, data={"text": "look"}, files=files
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert fake.bodies == []  # nothing reached the model, nothing was stored
    assert c.get(f"/v1/conversations/{cid}", headers=headers).json()["messages"] == []


def test_invalid_base64_is_a_clear_error(client) -> None:  # type: ignore[no-untyped-def]
    c, headers, _ = client
    cid = _conversation(c, headers)
    response = c.post(f"/v1/conversations/{cid}/messages", headers=headers,
                      json={"text": "x", "images": [{"name": "a.jpg", "data": "%%%"}]})  # fmt: skip
    assert response.status_code == 422 and "not valid base64" in response.json()["error"]["message"]


def test_offline_model_says_it_cannot_see_photos(offline_runtime: Runtime) -> None:
    photo = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
             "data": base64.b64encode(JPEG_HEADER).decode()}}  # fmt: skip
    agent = offline_runtime.agent
    result = agent.ask(agent.start_conversation(), "it arrived broken", images=[photo])
    assert "can't look at photos" in result.reply and "human" in result.reply


def test_escalated_ticket_carries_the_photo(client, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    c, headers, runtime = client
    cid = _conversation(c, headers)
    fake.enqueue(tool_use("escalate_to_human", {"reason": "damaged item", "summary": "photo attached"}),
                 text("A colleague will look at your photo."))  # fmt: skip
    c.post(f"/v1/conversations/{cid}/messages", headers=headers, data={"text": "broken, see photo"},
           files=[("images", ("crack.png", png(), "image/png"))])  # fmt: skip
    with transaction(runtime.engine) as session:
        admin = create_key(session=session, name="Sam", scope=KeyScope.ADMIN)[1]
    staff = {"Authorization": f"Bearer {admin}"}
    (ticket,) = c.get("/v1/tickets", headers=staff).json()
    transcript = c.get(f"/v1/conversations/{ticket['conversation_id']}", headers=staff).json()
    assert transcript["messages"][0]["images"][0]["url"].startswith("data:image/png;base64,")


def test_old_photos_give_way_to_a_placeholder_before_turns_do() -> None:
    photo = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "A" * 10},
    }
    messages = [
        {"role": "user", "content": [photo, {"type": "text", "text": "cracked kettle"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Sorry to hear that."}]},
        {"role": "user", "content": [{"type": "text", "text": "any news?"}]},
    ]
    request = ModelRequest(system="s", messages=messages, tools=[], max_tokens=100)
    counter = TokenCounter()
    assert counter.count(request) > 1_600  # a photo counts as ~1,600 tokens, whatever its bytes
    fitted, cut = fit_to_budget(request, 1_000, counter)
    assert cut == 0 and len(fitted.messages) == 3  # no turn had to go
    assert fitted.messages[0]["content"][0] == {"type": "text", "text": IMAGE_PLACEHOLDER}
    assert json.dumps(fitted.messages).count('"image"') == 0
