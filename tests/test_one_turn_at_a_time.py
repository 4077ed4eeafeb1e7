"""A conversation runs one turn at a time, across workers (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from agent.adapters.sql_turns import SqlTurnStore, new_lease
from agent.engine.history import INTERRUPTED_REPLY, to_api_messages
from agent.engine.loop import Said
from agent.errors import TurnInProgress
from agent.store.conversations import create_conversation, load_messages
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope, Message, TurnLease
from tests.conftest import RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use
from tests.live_server import serve_env, serve_process
from tests.memory_turns import opening

CUSTOMER = "ivan_santos_6635"


def _answer(body: dict[str, Any]) -> Reply:
    """One tool round, then an answer naming the question it answers (a turn mixed with
    another would answer the wrong question)."""
    messages = body["messages"]
    last = messages[-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        asked = [b["text"] for b in messages[-3]["content"] if b.get("type") == "text"]
        return text(f"Answer to: {asked[-1]}", delay=0.02)
    return tool_use("list_orders", {"limit": 1})


@pytest.fixture
def server(any_db_url: str, tmp_path: Path, fake: FakeAnthropic) -> Iterator[tuple[str, str, str]]:
    """`supportbot serve --workers 2` on the test's database: (base url, backend key, db url)."""
    engine = make_engine(any_db_url)
    import_path(engine, RETAIL_SLICE)
    with transaction(engine) as session:
        key = create_key(session=session, name="svc", scope=KeyScope.BACKEND)[1]
    engine.dispose()
    env = serve_env(
        SUPPORTBOT_DATABASE_URL=any_db_url,
        SUPPORTBOT_DATA_DIR=str(tmp_path / "data"),
        ANTHROPIC_BASE_URL=fake.url,
        ANTHROPIC_API_KEY="sk-ant-test",
        SUPPORTBOT_RATE_LIMIT_PER_KEY="100000",
        SUPPORTBOT_RATE_LIMIT_PER_CONVERSATION="100000",
        SUPPORTBOT_TURN_WAIT_SECONDS="120",
        SUPPORTBOT_LOG_LEVEL="ERROR",
    )
    with serve_process(env, tmp_path, workers=2) as served:
        yield served.url, key, any_db_url


@pytest.mark.slow
def test_concurrent_posts_never_interleave_turns(
    server: tuple[str, str, str], fake: FakeAnthropic
) -> None:
    base, key, db_url = server
    fake.default = _answer
    auth = {"Authorization": f"Bearer {key}"}

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=180) as client:
            conversations = []
            for _ in range(10):
                created = await client.post("/v1/conversations", json={"customer_id": CUSTOMER})
                conversations.append(created.json()["id"])
            posts = [
                client.post(f"/v1/conversations/{conversations[i % 10]}/messages",
                            json={"text": f"question {i}"})
                for i in range(100)
            ]  # fmt: skip
            responses = await asyncio.gather(*posts)
            return [r.status_code for r in responses]

    statuses = asyncio.run(run())
    assert statuses == [200] * 100
    engine = make_engine(db_url)
    with transaction(engine) as session:
        ids = {m.conversation_id for m in session.exec(select(Message)).all()}
        assert len(ids) == 10
        for conversation_id in ids:
            rows = load_messages(session=session, conversation_id=conversation_id)
            history = to_api_messages(rows)
            assert len(rows) == len(history) == 40  # 10 turns of 4 messages, none merged
            for turn in range(10):
                question, call, result, answer = history[turn * 4 : turn * 4 + 4]
                asked = question["content"][0]["text"]
                assert [b["type"] for b in call["content"]][-1] == "tool_use"
                assert result["content"][0]["type"] == "tool_result"
                said = [b["text"] for b in answer["content"] if b["type"] == "text"]
                assert said == [f"Answer to: {asked}"]  # each answer from its own turn
        assert session.exec(select(TurnLease)).all() == []  # every lease released


def test_a_running_turn_holds_the_conversation(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    engine = make_engine(make_settings().resolved_database_url())
    with transaction(engine) as session:
        conversation = create_conversation(session=session).id
    store = SqlTurnStore(engine, lease_seconds=60)
    first, second = new_lease(), new_lease()
    hello = [{"type": "text", "text": "hello"}]
    store.open_turn(conversation, hello, lease=first, opening=opening())
    with pytest.raises(TurnInProgress, match="still answering"):
        store.open_turn(conversation, hello, lease=second, opening=opening())
    with transaction(engine) as session:  # the refused message was not stored
        assert len(load_messages(session=session, conversation_id=conversation)) == 1
    store.release(conversation, lease=first)
    store.open_turn(conversation, hello, lease=second, opening=opening())  # free again
    store.release(conversation, lease=second)


def test_a_dead_workers_turn_does_not_block_the_conversation(
    make_settings: SettingsFactory,
) -> None:
    engine = make_engine(make_settings().resolved_database_url())
    with transaction(engine) as session:
        conversation = create_conversation(session=session).id
    hello = [{"type": "text", "text": "hello"}]
    # A worker on this host that died mid-turn: its process is gone, so its lease is void.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = new_lease().split(":")[0]
    with transaction(engine) as session:
        session.add(TurnLease(conversation_id=conversation, owner=f"{host}:{dead.pid}:x",
                              expires_at=time.time() + 600))  # fmt: skip
    taken, store = new_lease(), SqlTurnStore(engine)
    store.open_turn(conversation, hello, lease=taken, opening=opening())
    store.release(conversation, lease=taken)
    # A worker elsewhere (another replica) that stopped renewing: its lease runs out.
    store = SqlTurnStore(engine, lease_seconds=0.2)
    with transaction(engine) as session:
        lease = session.get(TurnLease, conversation)
        assert lease is not None
        lease.owner, lease.expires_at = "other-host:1:y", time.time() + 0.2
        session.add(lease)
    with pytest.raises(TurnInProgress):
        store.open_turn(conversation, hello, lease=new_lease(), opening=opening())
    time.sleep(0.3)
    store.open_turn(conversation, hello, lease=taken, opening=opening())
    store.release(conversation, lease=taken)


def test_a_turn_that_fails_frees_its_conversation(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    from agent.runtime import build_runtime

    runtime = build_runtime(make_settings(max_retries=0))
    import_path(runtime.engine, RETAIL_SLICE)
    conversation = runtime.agent.start_conversation(customer_id=CUSTOMER)
    fake.enqueue(tool_use("list_orders", {"limit": 1}), text("ok"))
    turn = runtime.agent.turn(conversation, Said("hi"), stream=True).events()
    next(turn)  # the turn is running (it holds the conversation)...
    turn.close()  # ...and its client leaves
    fake.reset()
    fake.enqueue(text("Hello again."))
    assert runtime.agent.ask(conversation, "still there?").reply == "Hello again."
    # The message the closed turn left unanswered is acknowledged, not merged into the next.
    sent = [[b.get("text") for b in m["content"]] for m in fake.requests[-1].body["messages"]]
    assert sent == [["hi"], [INTERRUPTED_REPLY], ["still there?"]]


def test_the_api_waits_for_the_running_turn_then_answers_409(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    from fastapi.testclient import TestClient

    from agent.api.app import create_app
    from agent.runtime import build_runtime

    runtime = build_runtime(make_settings(turn_wait_seconds=0.3))
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        key = create_key(session=session, name="svc", scope=KeyScope.BACKEND)[1]
    conversation = runtime.agent.start_conversation(customer_id=CUSTOMER)
    held = new_lease()
    runtime.agent.store.open_turn(
        conversation, [{"type": "text", "text": "first"}], lease=held, opening=opening()
    )
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(runtime.settings, runtime)) as client:
        busy = client.post(f"/v1/conversations/{conversation}/messages",
                           json={"text": "second"}, headers=auth)  # fmt: skip
        assert busy.status_code == 409  # until its hold would lapse, were it not renewed:
        assert 1 <= int(busy.headers["retry-after"]) <= runtime.settings.turn_lease_seconds
        assert busy.json()["error"]["code"] == "turn_in_progress"
        runtime.agent.store.release(conversation, lease=held)
        fake.enqueue(text("Here you go."))
        done = client.post(f"/v1/conversations/{conversation}/messages",
                           json={"text": "second"}, headers=auth)  # fmt: skip
        assert done.status_code == 200 and done.json()["reply"] == "Here you go."
    with transaction(runtime.engine) as session:
        texts = [b.get("text") for m in load_messages(session=session, conversation_id=conversation)
                 for b in m.content]  # fmt: skip
    assert texts.count("second") == 1  # the refused attempt stored nothing
