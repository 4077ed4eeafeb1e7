"""A Messages API request body as JSON bytes, each message's and tool's encoding kept for reuse.

The SDK copies a request's whole body (every dict and list, in Python) and encodes it again on
every call, so the work of a call grows with the conversation's history. But a conversation's
requests carry the same message objects turn after turn (agent.adapters.history_cache;
agent.models.thinking for messages whose thinking blocks are filtered; the tool definitions are
one list for the life of the registry), and they are never changed in place: a message, once
encoded, is joined into every later request as the bytes it was. Only what is new in a request
(its newest messages, the one that carries a cache breakpoint, the small top-level fields) is
encoded, with the SDK's own settings (`ensure_ascii=False`, compact separators, no NaN), so the
body decodes to exactly what `messages.create` sends (tests/test_request_body.py).

What is remembered is bounded: at most `_ITEMS` objects and `_BYTES` bytes of JSON, the oldest
forgotten first (a message still in use is then encoded once more). Each entry holds its
object, so that its id is not reused while it is remembered.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

# Fields whose items are the same objects from request to request.
_REUSED = ("messages", "tools")

_ITEMS = 20_000
_BYTES = 16 * 1024 * 1024
_known: OrderedDict[int, tuple[object, bytes]] = OrderedDict()
_held = 0  # bytes of JSON remembered
_lock = threading.Lock()


def encode(value: Any) -> bytes:
    """`value` as JSON, as the SDK encodes plain data."""
    return _encoder.encode(value).encode()


def body(params: Mapping[str, Any]) -> bytes:
    """The request body for `params` (plain JSON data: the keyword arguments `messages.create`
    would be given, without its options such as `extra_headers`). Joined once: a large
    intermediate copy costs more than its copying (the allocator returns and maps its pages
    again)."""
    parts: list[bytes] = []
    for key, value in params.items():
        parts += (b"," if parts else b"{", encode(key), b":")
        if key in _REUSED:
            _items(value, parts)
        else:
            parts.append(encode(value))
    parts.append(b"}" if parts else b"{}")
    return b"".join(parts)


def _items(values: Sequence[Any], parts: list[bytes]) -> None:
    """Append the JSON array of `values` to `parts`, each item as remembered."""
    known = _known
    parts.append(b"[")
    for n, value in enumerate(values):
        if n:
            parts.append(b",")
        entry = known.get(id(value))
        if entry is None or entry[0] is not value:
            encoded = encode(value)
            _remember(id(value), value, encoded)
            parts.append(encoded)
        else:
            parts.append(entry[1])
    parts.append(b"]")


def _remember(key: int, value: object, encoded: bytes) -> None:
    global _held
    with _lock:
        old = _known.pop(key, None)
        if old is not None:
            _held -= len(old[1])
        _known[key] = (value, encoded)
        _held += len(encoded)
        while _known and (len(_known) > _ITEMS or _held > _BYTES):
            _, (_, forgotten) = _known.popitem(last=False)
            _held -= len(forgotten)


def remembered() -> tuple[int, int]:
    """(objects, bytes of JSON) remembered now."""
    with _lock:
        return len(_known), _held
