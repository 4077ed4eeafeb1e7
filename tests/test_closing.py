"""Ending a conversation and rating it over HTTP: who may, what is accepted, one rating each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from agent.api.app import create_app
from agent.store.tables import ConversationRating
from tests.conftest import SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text
from tests.test_api import Api, _runtime


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _customer(api: Api, conversation: dict[str, Any]) -> dict[str, str]:
    return api.auth("widget", **{"X-Conversation-Token": conversation["conversation_token"]})


def _answered(api: Api, fake: FakeAnthropic) -> dict[str, Any]:
    """A widget's conversation with one question answered."""
    conversation = api.start("widget")
    fake.enqueue(text("You can return items within 30 days."))
    said = api.client.post(f"/v1/conversations/{conversation['id']}/messages",
                           json={"text": "How long do returns take?"},
                           headers=_customer(api, conversation))  # fmt: skip
    assert said.status_code == 200, said.text
    return conversation


def _ratings(api: Api) -> list[ConversationRating]:
    with Session(api.runtime.engine) as session:
        return list(session.exec(select(ConversationRating)).all())


def test_the_customer_rates_and_a_later_rating_replaces_it(api: Api, fake: FakeAnthropic) -> None:
    conversation = _answered(api, fake)
    url = f"/v1/conversations/{conversation['id']}/rating"
    first = api.client.post(url, json={"score": "down", "comment": "  Too slow  "},
                            headers=_customer(api, conversation))  # fmt: skip
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["score"], body["comment"], body["rated_by"], body["replaced"]) == (
        "down", "Too slow", "customer", False
    )  # fmt: skip
    again = api.client.post(url, json={"score": "up"}, headers=api.auth("backend"))
    assert again.status_code == 200 and again.json()["replaced"] is True
    assert again.json()["rated_by"] == "backend:backend-test"
    (stored,) = _ratings(api)  # one per conversation
    assert (stored.score, stored.comment) == ("up", None)
    for scope in ("backend", "admin"):  # whoever may read the conversation reads its rating
        read = api.client.get(url, headers=api.auth(scope))
        assert read.status_code == 200 and read.json()["score"] == "up"
    assert api.client.get(url, headers=_customer(api, conversation)).json()["score"] == "up"


def test_only_the_customer_or_a_backend_may_rate(api: Api, fake: FakeAnthropic) -> None:
    conversation = _answered(api, fake)
    other = api.start("widget")
    url = f"/v1/conversations/{conversation['id']}/rating"
    vote = {"score": "up"}
    assert api.client.post(url, json=vote).status_code == 401
    nope = api.client.post(url, json=vote, headers={"Authorization": "Bearer sb_widget_nope"})
    assert nope.status_code == 401
    # A widget without this conversation's token, or with another's: as if it did not exist.
    assert api.client.post(url, json=vote, headers=api.auth("widget")).status_code == 404
    assert api.client.post(url, json=vote, headers=_customer(api, other)).status_code == 404
    staff = api.client.post(url, json=vote, headers=api.auth("admin"))
    assert staff.status_code == 403 and staff.json()["error"]["code"] == "forbidden"
    missing = api.client.post("/v1/conversations/nope/rating", json=vote,
                              headers=api.auth("backend"))  # fmt: skip
    assert missing.status_code == 404
    assert api.client.get(url, headers=_customer(api, other)).status_code == 404
    assert _ratings(api) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"score": "meh"},
        {"score": "UP"},
        {"score": 1},
        {"score": "up", "comment": "x" * 2001},
        {"score": "up", "comment": "nul\x00byte"},
        {"score": "up", "stars": 5},
    ],
)
def test_invalid_ratings_are_refused(api: Api, fake: FakeAnthropic, body: dict[str, Any]) -> None:
    conversation = _answered(api, fake)
    response = api.client.post(f"/v1/conversations/{conversation['id']}/rating", json=body,
                               headers=_customer(api, conversation))  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert _ratings(api) == []


def test_nothing_to_rate_before_the_first_message(api: Api) -> None:
    conversation = api.start("widget")
    url = f"/v1/conversations/{conversation['id']}/rating"
    response = api.client.post(url, json={"score": "up"}, headers=_customer(api, conversation))
    assert response.status_code == 409 and "nothing to rate" in response.json()["error"]["message"]
    unrated = api.client.get(url, headers=_customer(api, conversation))
    assert unrated.status_code == 200 and unrated.json() is None


def test_no_rating_yet_reads_as_null_and_404_means_not_found(api: Api, fake: FakeAnthropic) -> None:
    """A conversation not rated yet is no missing resource (the chat page asks for a rating it
    may not have, and a 404 is a console error there): 200 `null`, for whoever may read it."""
    conversation = _answered(api, fake)
    url = f"/v1/conversations/{conversation['id']}/rating"
    for headers in (_customer(api, conversation), api.auth("backend"), api.auth("admin")):
        unrated = api.client.get(url, headers=headers)
        assert unrated.status_code == 200, unrated.text
        assert unrated.json() is None and unrated.headers["content-type"] == "application/json"
    assert api.client.get(url, headers=api.auth("widget")).status_code == 404  # not yours
    missing = api.client.get("/v1/conversations/nope/rating", headers=api.auth("backend"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    schema = api.client.get("/openapi.json").json()["paths"][
        "/v1/conversations/{conversation_id}/rating"
    ]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"type": "null"} in schema["anyOf"]


def test_the_customer_ends_the_conversation(api: Api, fake: FakeAnthropic) -> None:
    conversation = _answered(api, fake)
    base = f"/v1/conversations/{conversation['id']}"
    assert api.client.post(base + "/end", headers=api.auth("widget")).status_code == 404
    assert api.client.post(base + "/end", headers=api.auth("admin")).status_code == 403
    ended = api.client.post(base + "/end", headers=_customer(api, conversation))
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "closed" and ended.json()["ended_by"] == "customer"
    again = api.client.post(base + "/end", headers=api.auth("backend"))  # the first end stays
    assert again.json() == ended.json()
    transcript = api.client.get(base, headers=_customer(api, conversation)).json()
    assert transcript["state"] == "closed"
    later = api.client.post(base + "/messages", json={"text": "one more thing"},
                            headers=_customer(api, conversation))  # fmt: skip
    assert later.status_code == 409 and later.json()["error"]["code"] == "conversation_closed"
    # A closed conversation can still be rated.
    rated = api.client.post(base + "/rating", json={"score": "up", "comment": "Thanks!"},
                            headers=_customer(api, conversation))  # fmt: skip
    assert rated.status_code == 200
