"""The request history of recently served conversations, kept in the process between turns.

A turn's request carries its conversation's history; reading it again from the database
for every turn (every row's JSON decoded, a row object built for each) made a turn's cost grow
with the length of its conversation (bench/README.md, "Long conversations"). The store keeps
each conversation's history as request messages after its turn, versioned by the
conversation's `last_sequence`: the next turn, on any worker or instance, reads only the rows
stored after the version it holds (usually none but its own message), and reloads the whole
history when those rows do not follow on without a gap (a change in place moves the counter
on without a row: agent.store.conversations.mark_history_changed). The same message objects
then go to every request of the conversation, so what is measured or hashed per message
(agent.engine.budget, agent.models.thinking) is done once per message, not once per turn.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from agent.engine.history import ApiMessage, Stored, extend_api_messages


class _Row(Stored, Protocol):
    @property
    def sequence(self) -> int: ...


class HistoryCache:
    """Conversation id -> (the `last_sequence` it reflects, its request messages); the
    `conversations` most recently used are kept, and no more than `messages` messages in all
    (a few kilobytes each: long conversations are not kept by the hundred)."""

    def __init__(self, conversations: int = 256, messages: int = 20_000) -> None:
        self.conversations = conversations
        self.messages = messages
        self._kept: OrderedDict[str, tuple[int, list[ApiMessage]]] = OrderedDict()
        self._count = 0  # messages kept
        self._lock = threading.Lock()

    def get(self, conversation_id: str) -> tuple[int, list[ApiMessage]] | None:
        """(the sequence the history reflects, a copy of its message list: the messages
        themselves are shared and never changed in place)."""
        with self._lock:
            kept = self._kept.get(conversation_id)
            if kept is None:
                return None
            self._kept.move_to_end(conversation_id)
            return kept[0], list(kept[1])

    def put(self, conversation_id: str, sequence: int, messages: list[ApiMessage]) -> None:
        if self.conversations <= 0:
            return
        with self._lock:
            self._forget(conversation_id)
            self._kept[conversation_id] = (sequence, list(messages))
            self._count += len(messages)
            self._bound()

    def extend(self, conversation_id: str, rows: Sequence[_Row]) -> None:
        """The rows a committed transaction stored after the kept history; a history they
        do not follow on from is forgotten."""
        if not rows:
            return
        with self._lock:
            kept = self._kept.get(conversation_id)
            if kept is None:
                return
            self._forget(conversation_id)
            if kept[0] != rows[0].sequence - 1:
                return
            messages = extend_api_messages(kept[1], rows)
            self._kept[conversation_id] = (rows[-1].sequence, messages)
            self._count += len(messages)
            self._bound()

    def drop(self, conversation_id: str) -> None:
        with self._lock:
            self._forget(conversation_id)

    def _forget(self, conversation_id: str) -> None:
        kept = self._kept.pop(conversation_id, None)
        if kept is not None:
            self._count -= len(kept[1])

    def _bound(self) -> None:
        """Forget the least recently used histories beyond the bounds (the newest stays)."""
        while len(self._kept) > 1 and (
            len(self._kept) > self.conversations or self._count > self.messages
        ):
            _, (_, messages) = self._kept.popitem(last=False)
            self._count -= len(messages)

    def __len__(self) -> int:
        return len(self._kept)
