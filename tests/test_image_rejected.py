"""A photo the model will not process costs that photo, not the conversation: it is set aside
(kept for staff, a note for the model) and the turn is asked again, on Claude."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.engine.history import UNREADABLE_NOTE
from tests.conftest import IVAN, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, error, text
from tests.images import png
from tests.test_api import Api, _runtime


def _kinds(body: dict[str, Any]) -> list[list[str]]:
    return [[b["type"] for b in m["content"]] for m in body["messages"] if m["role"] == "user"]


def test_a_rejected_photo_is_set_aside_and_the_turn_stays_on_claude(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        cid = api.start("backend", customer_email=IVAN["email"])["id"]

        def send(words: str, photo: bytes | None = None) -> dict[str, Any]:
            images = [{"data": base64.b64encode(photo).decode(), "name": "p.png"}] if photo \
                else []  # fmt: skip
            response = client.post(f"/v1/conversations/{cid}/messages",
                                   json={"text": words, "images": images},
                                   headers=api.auth("backend"))  # fmt: skip
            assert response.status_code == 200, response.text
            return response.json()

        fake.enqueue(text("I can see the scratch."))
        send("here is the first photo", png(rgb=(1, 2, 3)))
        # The next photo: the model refuses it, then (still refusing) every photo; the third
        # request, without photos, is answered by Claude.
        fake.enqueue(error(400, "Could not process image"), error(400, "Could not process image"),
                     text("I couldn't open your photos, but I can still help."))  # fmt: skip
        answered = send("and the second", png(rgb=(4, 5, 6)))
        assert not answered["degraded"] and answered["reply"].startswith("I couldn't open")
        first, second, third = fake.bodies[-3:]
        assert _kinds(first)[-1] == ["image", "text"] and _kinds(first)[0][0] == "image"
        assert _kinds(second)[-1] == ["text", "text"] and _kinds(second)[0][0] == "image"
        assert second["messages"][-1]["content"][0]["text"] == UNREADABLE_NOTE
        assert all("image" not in kinds for kinds in _kinds(third))
        # Later turns stay on Claude and send the notes, not the photos.
        fake.enqueue(text("Anything else?"))
        later = send("thanks")
        assert not later["degraded"] and all("image" not in k for k in _kinds(fake.bodies[-1]))
        # Staff still see both photos in the transcript.
        transcript = client.get(f"/v1/conversations/{cid}", headers=api.auth("backend")).json()
        assert sum(len(m["images"]) for m in transcript["messages"]) == 2
