"""Keeping requests within budget and cache-friendly.

- Token counting: the Token Counting API when enabled, else a local estimate (characters per
  token, calibrated by every exact count). Exact counts are remembered per request prefix, so an
  unchanged prefix is never counted twice; only the new tail is estimated.
- The window strategy: when a request is over budget, the oldest whole turns leave the request
  (they stay in the database). The first customer message stays, a note says what was left out,
  a tool_use is never separated from its tool_result, and the request still starts with the user.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from itertools import islice
from typing import Any

from agent.models.base import ModelRequest
from agent.models.reuse import Bounded, equal_opening

log = logging.getLogger(__name__)

OMITTED_NOTE = "[Earlier messages of this conversation were left out to fit the context budget.]"


IMAGE_TOKENS = 1_600  # about what Claude bills for a photo scaled to its default size
IMAGE_PLACEHOLDER = "[A photo the customer sent earlier; left out here to save space.]"

# (prefix hash, cumulative characters) after a request's head or one of its messages.
_Point = tuple[str, int]
# A recent request's messages after its first, and the points after each of them.
_Run = tuple[list[dict[str, Any]], list[_Point]]
_RUNS = 256  # as many conversations as agent.adapters.history_cache keeps
_RUN_MESSAGES = 20_000  # messages held by all runs together


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _images(message: dict[str, Any]) -> int:
    return sum(1 for b in message.get("content") or [] if b.get("type") == "image")


def _size(message: dict[str, Any], chars_per_token: float) -> int:
    """Characters that stand for `message`'s tokens: its JSON without image data, plus a
    fixed allowance per image (base64 length says nothing about an image's token cost)."""
    if not _images(message):
        return len(_json(message))
    light = {**message, "content": [
        {"type": "image"} if b.get("type") == "image" else b for b in message["content"]
    ]}  # fmt: skip
    return len(_json(light)) + int(_images(message) * IMAGE_TOKENS * chars_per_token)


def without_old_images(request: ModelRequest) -> ModelRequest:
    """Photos from earlier turns replaced by a short note; the latest message keeps its own."""
    messages = []
    for index, message in enumerate(request.messages):
        if index < len(request.messages) - 1 and _images(message):
            content = [
                {"type": "text", "text": IMAGE_PLACEHOLDER} if b.get("type") == "image" else b
                for b in message["content"]
            ]
            message = {**message, "content": content}
        messages.append(message)
    return replace(request, messages=messages)


class TokenCounter:
    """Counts a request's input tokens; `exact` is the Token Counting API, when enabled."""

    def __init__(
        self,
        exact: Callable[[ModelRequest], int] | None = None,
        chars_per_token: float = 3.5,
    ) -> None:
        self.exact = exact
        self.chars_per_token = chars_per_token
        self._known: dict[str, int] = {}  # prefix hash -> exact tokens
        # The tool definitions are one list object for the life of the registry: their JSON
        # (the largest part of every request) is encoded once, not per model call.
        self._tools: tuple[list[dict[str, Any]], str] | None = None
        self._sizes: dict[int, tuple[dict[str, Any], int, str]] = {}  # see _measure
        self._runs: Bounded[tuple[str, int, int], _Run] = Bounded(_RUNS, _RUN_MESSAGES)

    def estimate_chars(self, chars: int) -> int:
        return int(chars / self.chars_per_token) + 1

    def _prefix_hashes(self, request: ModelRequest, *, remember: bool = True) -> list[_Point]:
        """(hash, cumulative characters) after the head and after each message; hashes are
        only chained when exact counts are cached against them.

        Each message is measured once for as long as it lives (a turn's history is the same
        objects from request to request), and a conversation's next request starts with the
        same objects as its last (its first may be new: `_cut_at` merges it with a note), so
        the points after its second message are taken over from the last request's run as
        far as it still opens with them, or with equal messages (sizes and digests depend on
        the values only; compared in C): a request walks only its new messages. Its own run
        is remembered unless `remember` is false."""
        if self._tools is None or self._tools[0] is not request.tools:
            self._tools = (request.tools, _json(request.tools))
        head = _json(request.system) + self._tools[1]
        point = (hashlib.sha256(head.encode()).hexdigest() if self.exact else "", len(head))
        points = [point]
        messages = request.messages
        done = 0
        key: tuple[str, int, int] | None = None
        if len(messages) > 2:
            point = self._after(point, messages[0])
            points.append(point)
            done = 1
            # The points of a run are valid after the same hash and characters.
            key = (*point, id(messages[1]))
            run = self._runs.get(key)
            if run is not None and run[0][0] is messages[1]:
                objects, kept = run
                same = equal_opening(objects, messages, 1, len(messages))  # 1 at least
                points += kept[:same]
                point = kept[same - 1]
                done += same
        for message in islice(messages, done, None):
            point = self._after(point, message)
            points.append(point)
        if key is not None and remember:
            self._runs.put(key, (messages[1:], points[2:]), len(messages) - 1)
        return points

    def _after(self, point: _Point, message: dict[str, Any]) -> _Point:
        """The point after `message`, following `point`."""
        size, digest = self._measure(message)
        chain = hashlib.sha256((point[0] + digest).encode()).hexdigest() if self.exact else ""
        return chain, point[1] + size

    def _measure(self, message: dict[str, Any]) -> tuple[int, str]:
        """(characters standing for `message`'s tokens, digest of its JSON), remembered for
        the message object (held, so that its id is not reused while remembered)."""
        known = self._sizes.get(id(message))
        if known is not None and known[0] is message:
            return known[1], known[2]
        encoded = _json(message)
        size = _size(message, self.chars_per_token) if _images(message) else len(encoded)
        digest = hashlib.sha256(encoded.encode()).hexdigest() if self.exact else ""
        self._sizes[id(message)] = (message, size, digest)
        if len(self._sizes) > 20_000:  # bounded: forget the oldest
            self._sizes.pop(next(iter(self._sizes)))
        return size, digest

    def count(self, request: ModelRequest, *, need_exact: bool = False) -> int:
        # A request whose exact count is needed is a candidate cut (see fit_to_budget), one of
        # many tried once each: its run would only push others' out.
        hashes = self._prefix_hashes(request, remember=not need_exact)
        total_chars = hashes[-1][1]
        if self.exact is None:  # the estimate: the messages' remembered sizes, summed
            return self.estimate_chars(total_chars)
        for known_hash, known_chars in reversed(hashes):
            if known_hash in self._known:
                base = self._known[known_hash]
                if known_chars == total_chars:
                    return base
                if not need_exact:
                    return base + self.estimate_chars(total_chars - known_chars)
                break
        try:
            tokens = self.exact(request)
        except Exception:  # counting is advisory: fall back to the estimate
            log.warning("token counting failed; using the local estimate", exc_info=True)
            return self.estimate_chars(total_chars)
        self._known[hashes[-1][0]] = tokens
        if len(self._known) > 4096:  # bounded: forget the oldest prefix
            self._known.pop(next(iter(self._known)))
        if tokens > 0:  # calibrate the estimate on real counts
            self.chars_per_token = 0.8 * self.chars_per_token + 0.2 * (total_chars / tokens)
        return tokens


def _starts_turn(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and not any(
        b.get("type") == "tool_result" for b in message["content"]
    )


def _cut_at(request: ModelRequest, cut: int, keep_first: bool = True) -> ModelRequest:
    """The request from messages[cut] on (it starts a turn, so no tool pair is split). With
    `keep_first`, the first customer message and a note about the gap come before it."""
    if not keep_first:
        return replace(request, messages=request.messages[cut:])
    first, kept = request.messages[0], request.messages[cut]
    merged = {
        "role": "user",
        "content": [*first["content"], {"type": "text", "text": OMITTED_NOTE}, *kept["content"]],
    }
    return replace(request, messages=[merged, *request.messages[cut + 1 :]])


def fit_to_budget(
    request: ModelRequest,
    budget: int,
    counter: TokenCounter,
    *,
    target: float = 0.5,
    previous_cut: int = 0,
    keep_first: bool = True,
) -> tuple[ModelRequest, int]:
    """The request within `budget` input tokens, and the cut used (0: nothing left out).

    A cut from an earlier request is kept while it still fits, so the request prefix stays
    byte-stable (and cacheable) turn after turn. When a new cut is needed, the request is
    trimmed to `target` × budget, which leaves room for several more turns at that cut.
    """
    tokens = counter.count(request)
    photos_out = tokens > budget and any(_images(m) for m in request.messages[:-1])
    if photos_out:
        request = without_old_images(request)  # photos give way before whole turns do
    messages = request.messages
    if 0 < previous_cut < len(messages) and _starts_turn(messages[previous_cut]):
        candidate = _cut_at(request, previous_cut, keep_first)
        if counter.count(candidate) <= budget:
            return candidate, previous_cut
    elif (counter.count(request) if photos_out else tokens) <= budget:
        return request, 0
    # A new cut: where turns start (found only now; most requests keep their cut).
    starts = [i for i, m in enumerate(messages) if i > 0 and _starts_turn(m)]
    goal = int(budget * target)
    for cut in starts:
        if cut <= previous_cut:
            continue
        candidate = _cut_at(request, cut, keep_first)
        if counter.count(candidate, need_exact=True) <= goal:
            return candidate, cut
    if starts:  # only the current turn fits: the first message goes too
        log.warning("only the current turn fits the context budget (%d tokens)", budget)
        return replace(request, messages=messages[starts[-1] :]), starts[-1]
    return request, 0


def truncate_tool_result(content: str, limit: int) -> str:
    """Cut an oversized tool result, saying so, so the model knows it saw only part."""
    if len(content) <= limit:
        return content
    return (
        content[:limit]
        + f"\n[Truncated: {len(content) - limit} more characters were left out. Ask for "
        "something narrower if you need them.]"
    )
