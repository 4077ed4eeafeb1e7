"""The history the SQL turn store keeps between a conversation's turns
(agent.adapters.history_cache): what a turn starts from is what the database holds, whichever
worker stored the turns before it, and a change in place (a photo set aside) is seen by all."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.adapters.history_cache import HistoryCache
from agent.adapters.sql_turns import SqlTurnStore
from agent.engine import consent
from agent.engine.history import to_api_messages, validate
from agent.engine.port import NewMessage, Round, new_lease
from agent.errors import HistoryCorrupted
from agent.store.conversations import load_messages
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from tests.conftest import RETAIL_SLICE
from tests.images import png
from tools import ToolRegistry

IVAN = "ivan_santos_6635"


def _opening() -> consent.TurnOpening:
    return consent.TurnOpening(ToolRegistry([]), lambda session, customer: None, text="")  # type: ignore[arg-type, return-value]


def _say(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _turn(store: SqlTurnStore, conversation: str, text: str, *, tool: bool = False) -> list[Any]:
    """One turn through `store` (a tool round when `tool`); the history it started from."""
    lease = new_lease()
    begun = store.open_turn(conversation, _say(text), lease=lease, opening=_opening())
    assert begun.messages is not None
    if tool:
        call = {"type": "tool_use", "id": f"toolu_{text[:8]}", "name": "list_orders", "input": {}}
        result = {"type": "tool_result", "tool_use_id": call["id"], "content": "none"}
        store.record_round(conversation, lease=lease, assistant=NewMessage("assistant", [call]),
                           run_tools=lambda session, customer: Round([result], customer))  # fmt: skip
    store.record_answer(conversation, lease=lease, message=NewMessage("assistant", _say("ok")))
    return begun.messages


def _stored(store: SqlTurnStore, conversation: str) -> list[Any]:
    with transaction(store.engine) as session:
        return to_api_messages(load_messages(session=session, conversation_id=conversation))


def test_turns_on_two_workers_start_from_what_the_database_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    engine = make_engine(url)
    import_path(engine, RETAIL_SLICE)
    one, two = SqlTurnStore(engine), SqlTurnStore(make_engine(url))  # two workers
    conversation = one.start_conversation(customer_id=IVAN)
    for n in range(6):
        store = (one, two)[n % 3 == 2]  # mostly one, now and then the other
        before = _stored(store, conversation)
        started = _turn(store, conversation, f"question {n}", tool=n % 2 == 0)
        assert started == [*before, {"role": "user", "content": _say(f"question {n}")}]
    assert len(one.history) == 1 and len(two.history) == 1
    # The kept messages are the same objects from turn to turn: measured and hashed once.
    first = _turn(one, conversation, "again")
    second = _turn(one, conversation, "and again")
    assert all(a is b for a, b in zip(first, second[: len(first) - 1], strict=False))
    one.engine.dispose(), two.engine.dispose()


def test_a_photo_set_aside_on_one_worker_is_seen_by_the_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    engine = make_engine(url)
    import_path(engine, RETAIL_SLICE)
    one, two = SqlTurnStore(engine), SqlTurnStore(make_engine(url))
    conversation = one.start_conversation(customer_id=IVAN)
    photo = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(png()).decode()}}  # fmt: skip
    lease = new_lease()
    two.open_turn(conversation, [photo, *_say("is this broken?")], lease=lease,
                  opening=_opening())  # fmt: skip
    two.record_answer(conversation, lease=lease, message=NewMessage("assistant", _say("yes")))
    _turn(one, conversation, "hello")  # one keeps the history, photo and all
    lease = new_lease()
    two.open_turn(conversation, _say("and now?"), lease=lease, opening=_opening())
    two.set_aside_images(conversation, lease=lease, message_ids=None)
    two.record_answer(conversation, lease=lease, message=NewMessage("assistant", _say("ok")))
    started = _turn(one, conversation, "still there?")
    assert started[:-1] == _stored(one, conversation)[:-2]
    assert not any(b.get("type") == "image" for m in started for b in m["content"])
    one.engine.dispose(), two.engine.dispose()


def test_the_kept_histories_are_bounded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    import_path(engine, RETAIL_SLICE)
    store = SqlTurnStore(engine, history_conversations=3)
    for n in range(5):
        _turn(store, store.start_conversation(customer_id=IVAN), f"hi {n}")
    assert len(store.history) == 3
    kept = HistoryCache(conversations=10, messages=5)
    rows = [SimpleNamespace(role=("user", "assistant")[n % 2], content=_say("x"), sequence=n + 1)
            for n in range(4)]  # fmt: skip
    kept.put("a", 2, to_api_messages(rows[:2]))
    kept.put("b", 2, to_api_messages(rows[:2]))
    kept.extend("b", rows[2:])  # b now holds 4 messages: a (2) goes
    assert kept.get("a") is None and kept.get("b") == (4, to_api_messages(rows))
    engine.dispose()


def test_a_history_is_checked_whole_until_found_valid_then_only_what_is_new() -> None:
    hello = {"role": "user", "content": _say("hello")}
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x",
                                              "input": {}}]}  # fmt: skip
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                           "content": "ok"}]}  # fmt: skip
    validate([hello, call, result])
    answer = {"role": "assistant", "content": _say("done")}
    validate([hello, call, result, answer, {"role": "user", "content": _say("thanks")}])
    # What follows a valid prefix is still checked...
    unanswered = {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "x",
                                                    "input": {}}]}  # fmt: skip
    with pytest.raises(HistoryCorrupted, match="do not answer"):
        validate([hello, call, result, unanswered, {"role": "user", "content": _say("hm")}])
    # ...and the same content in other objects, or in another order, is checked whole.
    with pytest.raises(HistoryCorrupted, match="expected assistant"):
        validate([hello, dict(result), dict(call), answer, dict(hello)])
    with pytest.raises(HistoryCorrupted, match="empty text block"):
        validate([{"role": "user", "content": _say(" ")}, call, result])


def test_what_follows_a_history_found_valid_is_checked_against_the_calls_it_left_open() -> None:
    hello = {"role": "user", "content": _say("hello")}
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x",
                                              "input": {}}]}  # fmt: skip
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                           "content": "ok"}]}  # fmt: skip
    answer = {"role": "assistant", "content": _say("done")}
    thanks = {"role": "user", "content": _say("thanks")}
    validate([hello, call, result, answer, thanks])
    # Its opening, then a message that does not answer the call left open.
    with pytest.raises(HistoryCorrupted, match="do not answer"):
        validate([hello, call, {"role": "user", "content": _say("never mind")}])
    wrong = [{"type": "tool_result", "tool_use_id": "t9", "content": "ok"}]
    with pytest.raises(HistoryCorrupted, match="do not answer"):
        validate([hello, call, {"role": "user", "content": wrong}, answer, thanks])
    # A new first message (a cut merges one with a note) is checked, whatever follows it.
    validate([{"role": "user", "content": _say("hello [some left out]")}, call, result])
    with pytest.raises(HistoryCorrupted, match="empty text block"):
        validate([{"role": "user", "content": _say(" ")}, call, result, answer, thanks])
    with pytest.raises(HistoryCorrupted, match="do not answer"):
        validate([{"role": "user", "content": wrong}, call, result, answer, thanks])
    # Equal copies of messages found valid are as valid; its opening alone too.
    validate([hello, call, dict(result), dict(answer), dict(thanks)])
    validate([hello, call, result])
