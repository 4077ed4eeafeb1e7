"""The stored history as Messages-API messages, and the invariants every request must keep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from agent.engine.port import NewMessage
from agent.errors import HistoryCorrupted
from agent.models.reuse import Bounded, equal_opening

ApiMessage = dict[str, Any]
# Our mark on a stored photo the model could not process: it stays in the database (staff see
# it) and goes to the model as a note instead.
UNREADABLE = "supportbot_unreadable"
UNREADABLE_NOTE = "[The customer sent a photo here that could not be processed.]"
# The assistant's words after a customer message whose turn ended without an answer (its
# server died, it failed, or its client left mid-answer), stored by the next turn before the
# customer's new message: the customer sees that the message was not answered, the model
# reads in its own words that it owes the answer, and the history alternates without merging
# the two messages (or carrying the dead turn's tool round into the new one).
INTERRUPTED_REPLY = (
    "I'm sorry, I was interrupted before I could answer this. I'll answer it with your next "
    "message."
)
INTERRUPTED = "interrupted"  # its stop_reason: not the model's, ours


def interrupted_reply() -> NewMessage:
    """The acknowledgement of a message its turn left unanswered (see INTERRUPTED_REPLY)."""
    return NewMessage(role="assistant", content=[{"type": "text", "text": INTERRUPTED_REPLY}],
                      stop_reason=INTERRUPTED)  # fmt: skip


class Stored(Protocol):
    """A recorded message, as any store keeps it."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> list[dict[str, Any]]: ...


def to_api_messages(rows: Sequence[Stored]) -> list[ApiMessage]:
    """Stored rows as request messages. Consecutive rows of one role are merged: messages
    queued while a human had the conversation, or several staff replies in a row. (A turn
    that ended without its answer is acknowledged before the next customer message goes in:
    see INTERRUPTED_REPLY.)"""
    return extend_api_messages([], rows)


def extend_api_messages(messages: list[ApiMessage], rows: Sequence[Stored]) -> list[ApiMessage]:
    """`messages` (request messages of earlier rows) with `rows` added as `to_api_messages`
    adds them, in place; returned. The messages already there are not copied or changed: a
    row of the last message's role makes a new merged message in its place."""
    for row in rows:
        content = readable(row.content) if row.role == "user" else row.content
        if messages and messages[-1]["role"] == row.role:
            merged = [*messages[-1]["content"], *content]
            messages[-1] = {"role": row.role, "content": merged}
        else:
            messages.append({"role": row.role, "content": list(content)})
    return messages


def readable(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`content` with photos marked unreadable as a note (the same list when there are none)."""
    if not any(b.get(UNREADABLE) for b in content if b.get("type") == "image"):
        return content
    return [{"type": "text", "text": UNREADABLE_NOTE} if b.get(UNREADABLE) else b for b in content]


def validate(messages: Sequence[ApiMessage]) -> None:
    """Raise HistoryCorrupted unless `messages` is a valid request history ending with the user.

    A conversation's requests carry the same message objects turn after turn (the store keeps
    its history between turns; nothing changes a message in place), so the messages after the
    first that open a history found valid before are not walked again: each request checks
    what is new in it (and its first message, which a cut merges anew with a note)."""
    if not messages:
        raise HistoryCorrupted("history is empty")
    if messages[0]["role"] != "user":
        raise HistoryCorrupted("history must start with a user message")
    if messages[-1]["role"] != "user":
        raise HistoryCorrupted("history must end with a user message")
    pending = _check(0, messages[0], set())
    start = _known_valid(messages)
    if start > 1:
        pending = _left_open(messages[start - 1])
    if start == len(messages):
        return
    for index in range(max(start, 1), len(messages)):
        pending = _check(index, messages[index], pending)
    if len(messages) > 1:
        _VALID.put(id(messages[1]), list(messages[1:]), len(messages) - 1)


# Histories found valid, from their second message on (the first may be merged anew with a
# note: agent.engine.budget), by the id of that message (held, so that its id is not reused
# while remembered). As many as agent.adapters.history_cache keeps, and as many messages.
_VALID: Bounded[int, list[ApiMessage]] = Bounded(256, 20_000)


def _known_valid(messages: Sequence[ApiMessage]) -> int:
    """n such that `messages[1:n]` opens a history found valid (0 or 1: none). Validity
    depends on the messages' values only, so equal messages do as well as the same ones."""
    if len(messages) < 2:
        return 0
    known = _VALID.get(id(messages[1]))
    if known is None or known[0] is not messages[1]:
        return 0
    return 1 + equal_opening(known, messages, 1, len(messages))


def _left_open(message: ApiMessage) -> set[str]:
    """The tool calls a valid history's message leaves open for the next to answer."""
    if message["role"] != "assistant":
        return set()
    return {b["id"] for b in message["content"] if b.get("type") == "tool_use"}


def _check(index: int, message: ApiMessage, pending: set[str]) -> set[str]:
    """Check message `index` of a history, after messages that left the tool calls `pending`
    open; the calls it leaves open."""
    role, content = message["role"], message["content"]
    expected = "user" if index % 2 == 0 else "assistant"
    if role != expected:
        raise HistoryCorrupted(f"message {index}: expected {expected}, got {role}")
    if not content:
        raise HistoryCorrupted(f"message {index}: empty content")
    for block in content:
        if block.get("type") == "text" and not block.get("text", "").strip():
            raise HistoryCorrupted(f"message {index}: empty text block")
    if role == "assistant":
        return _left_open(message)
    results = [b for b in content if b.get("type") == "tool_result"]
    answered = {b.get("tool_use_id") for b in results}
    if answered != pending:
        raise HistoryCorrupted(
            f"message {index}: tool results {sorted(answered)} do not answer "
            f"tool calls {sorted(pending)}"
        )
    if results and content[: len(results)] != results:
        raise HistoryCorrupted(f"message {index}: tool results must come first")
    return set()
