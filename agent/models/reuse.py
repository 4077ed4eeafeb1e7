"""What successive requests of a conversation reuse: they carry the same message objects turn
after turn (agent.adapters.history_cache), so work done for an object can be kept by the
object, and a request can take over the previous one's run of results as far as it still
starts with the same objects (agent.models.request_body, agent.models.thinking)."""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from itertools import compress, count, islice
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A map bounded by its entries and by their total weight (e.g. bytes): the oldest
    forgotten first. Safe to share between threads."""

    def __init__(self, entries: int, weight: int) -> None:
        self.entries = entries
        self.weight = weight
        self.held = 0  # total weight of what is kept
        self._kept: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: K) -> V | None:
        found = self._kept.get(key)
        return None if found is None else found[0]

    def put(self, key: K, value: V, weight: int) -> None:
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self.held -= old[1]
            self._kept[key] = (value, weight)
            self.held += weight
            while self._kept and (len(self._kept) > self.entries or self.held > self.weight):
                _, (_, forgotten) = self._kept.popitem(last=False)
                self.held -= forgotten


def shared_opening(objects: Sequence[Any], values: Sequence[Any], start: int, stop: int) -> int:
    """How many of `objects` are, in order, the very objects `values[start:stop]` opens with
    (identity, compared in C)."""
    differ = compress(count(), map(operator.is_not, objects, islice(values, start, stop)))
    return next(differ, min(len(objects), stop - start))


def equal_opening(objects: Sequence[Any], values: Sequence[Any], start: int, stop: int) -> int:
    """How many of `objects` open `values[start:stop]` as equal objects, for work that depends
    on their values only: all of them where they do (list equality in C, a pointer comparison
    for each that is the same object), else at least as many as `shared_opening` finds."""
    if len(objects) <= stop - start and values[start : start + len(objects)] == objects:
        return len(objects)
    return shared_opening(objects, values, start, stop)
