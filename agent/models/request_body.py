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

Two memories, both bounded (at most `_ITEMS` objects and `_ITEM_BYTES` of JSON, `_RUNS` runs
and `_RUN_BYTES`; the oldest forgotten first, to be encoded or looked up again when next used):
- each object's encoding, by the object (held, so that its id is not reused meanwhile);
- each recent message list's run of encodings, by its second message: a conversation's next
  request starts with the same objects (its first may be new: agent.engine.budget merges it
  with a note once older turns are cut; its last carries the cache breakpoint), which one
  comparison of object identities confirms, so the request looks up only its new messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from agent.models.reuse import Bounded, shared_opening

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

# Fields whose items are the same objects from request to request.
_REUSED = ("messages", "tools")

_ITEMS = 4096  # a conversation's history is held by its run; these serve new messages
_ITEM_BYTES = 4 * 1024 * 1024
_RUNS = 256  # as many conversations as agent.adapters.history_cache keeps
_RUN_BYTES = 16 * 1024 * 1024
# id of an object -> (the object, its encoding), weighed in bytes of JSON
_known: Bounded[int, tuple[object, bytes]] = Bounded(_ITEMS, _ITEM_BYTES)
# id of a list's second item -> (its items but the first and the last, their encodings with
# the separators between them, the bytes of those up to the end of each item), weighed in
# bytes of JSON
_runs: Bounded[int, tuple[list[Any], list[bytes], list[int]]] = Bounded(_RUNS, _RUN_BYTES)


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
    """Append the JSON array of `values` to `parts`: the run remembered for this list where the
    list still starts with its objects, each other item as remembered or newly encoded."""
    start = len(parts) + 1  # where the first item's encoding goes
    parts.append(b"[")
    count = len(values)
    done = 0
    ends: list[int] = []
    if count > 2:
        run = _runs.get(id(values[1]))
        if run is not None and run[0][0] is values[1]:
            objects, encoded, known_ends = run
            # How many of the run's objects open the list after its first item (the engine's
            # own copies of a turn's last messages give way to the stored ones next turn).
            same = shared_opening(objects, values, 1, count - 1)  # values[1]: 1 at least
            _item(values[0], parts)
            parts.append(b",")
            parts += encoded[: 2 * same - 1]
            ends = known_ends[:same]
            done = 1 + same
    for value in islice(values, done, None):
        if done:
            parts.append(b",")
        done += 1
        _item(value, parts, remember=done < count)
    parts.append(b"]")
    if count > 2:  # item k > 0 is at start + 2k, after its separator
        encoded = parts[start + 2 : start + 2 * (count - 2) + 1]
        for piece in islice(encoded, 2 * len(ends), None, 2):  # the items not taken over
            ends.append(ends[-1] + 1 + len(piece) if ends else len(piece))
        _runs.put(id(values[1]), (list(values[1 : count - 1]), encoded, ends), ends[-1])


def _item(value: Any, parts: list[bytes], *, remember: bool = True) -> None:
    """Append `value`'s encoding, remembered unless `remember` is false (a list's last item is
    usually a copy made for this request only: the one that carries its cache breakpoint)."""
    entry = _known.get(id(value))
    if entry is not None and entry[0] is value:
        parts.append(entry[1])
        return
    encoded = encode(value)
    if remember:
        _known.put(id(value), (value, encoded), len(encoded))
    parts.append(encoded)


def remembered() -> tuple[int, int, int, int]:
    """(objects, their bytes of JSON, runs, their bytes of JSON) remembered now."""
    return len(_known), _known.held, len(_runs), _runs.held
