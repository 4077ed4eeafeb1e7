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
    `conversations` most recently used are kept."""

    def __init__(self, conversations: int = 256) -> None:
        self.conversations = conversations
        self._kept: OrderedDict[str, tuple[int, list[ApiMessage]]] = OrderedDict()
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
            self._kept[conversation_id] = (sequence, list(messages))
            self._kept.move_to_end(conversation_id)
            while len(self._kept) > self.conversations:
                self._kept.popitem(last=False)

    def extend(self, conversation_id: str, rows: Sequence[_Row]) -> None:
        """The rows a committed transaction stored after the kept history; a history they
        do not follow on from is forgotten."""
        if not rows:
            return
        with self._lock:
            kept = self._kept.get(conversation_id)
            if kept is None:
                return
            if kept[0] != rows[0].sequence - 1:
                del self._kept[conversation_id]
                return
            self._kept[conversation_id] = (
                rows[-1].sequence,
                extend_api_messages(kept[1], rows),
            )

    def drop(self, conversation_id: str) -> None:
        with self._lock:
            self._kept.pop(conversation_id, None)

    def __len__(self) -> int:
        return len(self._kept)
