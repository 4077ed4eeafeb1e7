"""Servers that die mid-turn, and two `supportbot serve` instances sharing one PostgreSQL
database and one Chroma server, one of them on "another host" (its own UTS namespace, so its
hostname differs) and killed with SIGKILL while it holds a turn.

What the customer then sees: the other instance serves the conversation as soon as the dead
one's hold lapses (at once on the same host, within the lease elsewhere), a 409 meanwhile
says honestly how long that can take, and the message the dead turn left unanswered is
acknowledged in the transcript rather than merged into the next; the model is sent a valid
history (the dead turn's tool round, the acknowledgement, the new message)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.engine.history import INTERRUPTED_REPLY, validate
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope, TurnLease
from tests.chroma_server import ChromaServer, start_chroma
from tests.conftest import RETAIL_SLICE
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use
from tests.live_server import ServeProcess, serve_env, serve_process
from tests.postgres import PostgresServer

CUSTOMER = "ivan_santos_6635"
FIRST, SECOND = "Where are my orders?", "Hello, are you still there?"
ANSWER = "Your latest order is #W8770097, and yes, I'm here."
pytestmark = pytest.mark.slow


def _slow_after_its_tools(body: dict[str, Any]) -> Reply:
    """The first message gets a tool round, then a model that takes a minute (the server is
    killed meanwhile); the second is answered at once."""
    last = body["messages"][-1]["content"]
    said = [b.get("text") for b in last if b.get("type") == "text"]
    if said == [FIRST]:
        return tool_use("list_orders", {"limit": 1})
    if any(b.get("type") == "tool_result" for b in last):
        return text("(never delivered)", delay=60)
    return text(ANSWER)


def _keys(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The retail slice imported, and (backend, admin) authorization headers."""
    engine = make_engine(url)
    import_path(engine, RETAIL_SLICE)
    with transaction(engine) as session:
        backend = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
        admin = create_key(session=session, name="ops", scope=KeyScope.ADMIN)[1]
    engine.dispose()
    return {"Authorization": f"Bearer {backend}"}, {"Authorization": f"Bearer {admin}"}


def _post_in_background(server: ServeProcess, conversation: str, auth: dict[str, str]) -> None:
    """The customer's first message, on a server that will die before it answers."""

    def post() -> None:
        with suppress(httpx.HTTPError):  # the server dies under it, as a browser would see
            httpx.post(f"{server.url}/v1/conversations/{conversation}/messages",
                       json={"text": FIRST}, headers=auth, timeout=120)  # fmt: skip

    threading.Thread(target=post, daemon=True).start()


def _wait_for_the_slow_call(fake: FakeAnthropic) -> None:
    """Until the turn's tool round is stored and its second model call is under way."""
    deadline = time.monotonic() + 60
    while not any(
        any(b.get("type") == "tool_result" for b in r.body["messages"][-1]["content"])
        for r in list(fake.requests)
        if r.path == "/v1/messages"
    ):
        assert time.monotonic() < deadline, "the turn never reached its second model call"
        time.sleep(0.05)


def _check_what_the_customer_and_the_model_see(
    fake: FakeAnthropic, transcript: dict[str, Any]
) -> None:
    sent = fake.requests[-1].body["messages"]
    validate(sent)  # roles alternate, every tool_use answered, no empty content
    assert [[b.get("text") or b["type"] for b in m["content"]] for m in sent] == [
        [FIRST],
        ["tool_use"],
        ["tool_result"],
        [INTERRUPTED_REPLY],  # the dead turn's message, acknowledged, not merged
        [SECOND],
    ]
    seen = [(m["role"], m["text"]) for m in transcript["messages"]]
    assert seen == [
        ("customer", FIRST),
        ("assistant", INTERRUPTED_REPLY),
        ("customer", SECOND),
        ("assistant", ANSWER),
    ]
    assert [c["name"] for c in transcript["messages"][1]["tool_calls"]] == ["list_orders"]


def test_a_server_killed_mid_turn_leaves_a_message_the_next_turn_acknowledges(
    tmp_path: Path, fake: FakeAnthropic
) -> None:
    """SQLite, one host: the server is killed while the model is slow, and started again."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    auth, _ = _keys(url)
    fake.default = _slow_after_its_tools
    env = serve_env(SUPPORTBOT_DATABASE_URL=url, SUPPORTBOT_DATA_DIR=str(tmp_path / "data"),
                    ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="sk-ant-test",
                    SUPPORTBOT_TURN_WAIT_SECONDS="0", SUPPORTBOT_LOG_LEVEL="ERROR")  # fmt: skip
    with serve_process(env, tmp_path / "first") as first:
        created = httpx.post(f"{first.url}/v1/conversations", json={"customer_id": CUSTOMER},
                             headers=auth)  # fmt: skip
        conversation = created.json()["id"]
        _post_in_background(first, conversation, auth)
        _wait_for_the_slow_call(fake)
        first.kill()
    with serve_process(env, tmp_path / "second") as second:  # the restart, on the same host
        answered = httpx.post(f"{second.url}/v1/conversations/{conversation}/messages",
                              json={"text": SECOND}, headers=auth, timeout=60)  # fmt: skip
        assert answered.status_code == 200, answered.text  # a dead process's hold is void
        assert answered.json()["reply"] == ANSWER
        transcript = httpx.get(f"{second.url}/v1/conversations/{conversation}", headers=auth)
    _check_what_the_customer_and_the_model_see(fake, transcript.json())


@pytest.fixture(scope="module")
def chroma() -> Iterator[ChromaServer]:
    server = start_chroma()
    yield server
    server.stop()


def _on_another_host(command: list[str]) -> list[str]:
    """`command` in a UTS namespace of its own, whose hostname is other-host."""
    return ["unshare", "--uts", "sh", "-c", 'hostname other-host && exec "$0" "$@"', *command]


@pytest.mark.postgres
def test_two_instances_share_the_work_and_survive_one_killed_on_another_host(
    tmp_path: Path,
    fake: FakeAnthropic,
    postgres_server: PostgresServer,
    chroma: ChromaServer,
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with util-linux's unshare")
        pytest.skip("needs root and unshare for a second hostname")
    lease = 4  # seconds a dead instance's turn may block its conversation
    with postgres_server.database(f"t_instances_{os.getpid()}") as url:
        auth, admin = _keys(url)
        fake.default = _slow_after_its_tools
        env = serve_env(
            SUPPORTBOT_DATABASE_URL=url,
            SUPPORTBOT_CHROMA_URL=chroma.url,
            SUPPORTBOT_KB_COLLECTION=f"instances_{os.getpid()}",
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY="sk-ant-test",
            SUPPORTBOT_TURN_LEASE_SECONDS=str(lease),
            SUPPORTBOT_TURN_WAIT_SECONDS="0",  # answer 409 at once, to read its Retry-After
            SUPPORTBOT_LOG_LEVEL="ERROR",
        )
        with (
            serve_process(env | {"SUPPORTBOT_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a",
                          wrap=_on_another_host) as other_host,
            serve_process(env | {"SUPPORTBOT_DATA_DIR": str(tmp_path / "b")},
                          tmp_path / "b") as here,
        ):  # fmt: skip
            # One knowledge base: a page uploaded through one instance is found by the other.
            page = b"# Gift wrap\n\nWe gift-wrap any order for $4; choose it at checkout.\n"
            uploaded = httpx.post(f"{other_host.url}/v1/kb/documents", headers=admin,
                                  files={"files": ("gift-wrap.md", page)}, timeout=120)  # fmt: skip
            assert uploaded.status_code == 201, uploaded.text
            found = httpx.get(f"{here.url}/v1/kb/search", params={"q": "gift wrapping price"},
                              headers=admin, timeout=120)  # fmt: skip
            assert found.status_code == 200 and "$4" in found.json()[0]["text"]

            # One database: a conversation started here runs its turn over there.
            created = httpx.post(f"{here.url}/v1/conversations", json={"customer_id": CUSTOMER},
                                 headers=auth)  # fmt: skip
            conversation = created.json()["id"]
            _post_in_background(other_host, conversation, auth)
            _wait_for_the_slow_call(fake)
            engine = make_engine(url)
            with transaction(engine) as session:
                held = session.get(TurnLease, conversation)
                assert held is not None and held.owner.startswith("other-host:")
            engine.dispose()
            post = f"{here.url}/v1/conversations/{conversation}/messages"

            time.sleep(lease * 1.5)  # alive, it keeps renewing its hold past the lease
            busy = httpx.post(post, json={"text": SECOND}, headers=auth)
            assert busy.status_code == 409 and busy.json()["error"]["code"] == "turn_in_progress"
            assert 1 <= int(busy.headers["retry-after"]) <= lease

            other_host.kill()  # mid-turn, on another host: only time can tell it is gone
            time.sleep(0.5)  # a renewal it sent just before dying has landed by now
            busy = httpx.post(post, json={"text": SECOND}, headers=auth)
            assert busy.status_code == 409
            wait = int(busy.headers["retry-after"])
            assert 1 <= wait <= lease  # honest: the hold lapses by then, unrenewed
            time.sleep(wait)
            answered = httpx.post(post, json={"text": SECOND}, headers=auth, timeout=60)
            assert answered.status_code == 200, answered.text
            assert answered.json()["reply"] == ANSWER
            transcript = httpx.get(f"{here.url}/v1/conversations/{conversation}", headers=auth)
        _check_what_the_customer_and_the_model_see(fake, transcript.json())
