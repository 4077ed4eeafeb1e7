"""Thinking blocks across requests: which stored blocks a request may carry back.

The API requires a tool loop's thinking blocks to come back exactly as received, and binds
each block to the model that signed it and to everything before it (system prompt, tools,
earlier messages). A block replayed after its prefix changed is a 400; a block signed by a
model the target cannot read is dropped or rejected. Our history changes a request's prefix on
purpose now and then (a verified customer or a summary enters the system prompt; older turns
leave the request; old photos become notes) and a conversation may continue on another model
(the configured model changed, a fallback). So each stored thinking block carries, under
BINDING, the model that signed it and a digest of the prefix it was written after; before a
request, blocks whose model the target cannot read or whose prefix no longer matches are left
out of that request, and the rest go back byte for byte. The database keeps every block.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from itertools import islice
from typing import Any

from agent.capabilities import FAMILIES, family_name
from agent.models.reuse import Bounded, equal_opening, shared_opening

BINDING = "supportbot_binding"  # our annotation on a stored thinking block; never sent
THINKING_TYPES = ("thinking", "redacted_thinking")


def _canonical(value: Any) -> bytes:
    return json.dumps(
        _without_cache_control(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(v) for v in value]
    return value


def _system_text(system: str | list[dict[str, Any]]) -> str:
    if isinstance(system, str):
        return system
    return "".join(str(b.get("text", "")) for b in system)


class PrefixDigest:
    """A running digest of a request's prefix: system, tools, then each message as sent."""

    def __init__(self, system: str | list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        self._digest = hashlib.sha256(_system_text(system).encode())
        self._digest.update(_canonical(tools))

    def add(self, message: dict[str, Any]) -> None:
        self._digest.update(_canonical(message))

    def value(self) -> str:
        return self._digest.hexdigest()


def readable_by(target: str, signer: str) -> bool:
    """Whether `target` reads thinking blocks signed by `signer` (same family, or one the
    capability table says it reads)."""
    target_family, signer_family = family_name(target), family_name(signer)
    if target_family == signer_family:
        return True
    known = FAMILIES.get(target_family)
    return known is not None and signer_family in known.reads_thinking_of


def for_request(
    system: str | list[dict[str, Any]],
    tools: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    model: str,
) -> tuple[list[dict[str, Any]], Callable[[], str]]:
    """(the messages as `model` may receive them, a function giving the digest of that whole
    request prefix, for binding the reply's thinking blocks).

    Annotations are stripped; a thinking block stays only when `model` reads its signer and
    the prefix before its message is what it was written after. Messages without thinking
    blocks are passed through as they are (no copy), and a history without thinking blocks is
    not hashed at all: the digest is computed only when asked for (and what a recent request
    found without them is not looked at again: `_PLAIN`). A message's digest depends
    only on the prefix before it and on itself, so it is remembered (`_CHAIN`): a request
    hashes only the messages it is the first to carry."""
    if not _any_thinking(messages):
        return messages, lambda: _chain(system, tools, messages, model)[1]
    sent, final = _chain(system, tools, messages, model)
    return sent, lambda: final


# What is remembered of each message of a request prefix: keyed by (target model, the digest
# of the prefix before it, the message object's id), the message itself (held, so that its id
# is not reused while remembered), the digest after it, the running hash after it (never
# updated in place: copied to go on), and the message as sent. The same message objects go to
# every request of a conversation (agent.adapters.history_cache), so a request walks its
# history as dictionary look-ups and hashes only its new messages.
_Hash = Any  # hashlib's running hash (its type is private)
_Link = tuple[dict[str, Any], str, _Hash, dict[str, Any]]
_CHAIN: dict[tuple[str, str, int], _Link] = {}
_CHAIN_SIZE = 20_000
# The links of recent requests' messages after their first, and those messages as sent, by
# (target model, the digest before the second message, its id): a conversation's next
# request starts with the same objects (its first may be new: the budget merges it with a note
# once older turns are cut), which one comparison of identities confirms, so it looks up only
# its new messages. Bounded by runs and by links held.
_RUNS_SIZE = 256
_RUNS: Bounded[
    tuple[str, str, int], tuple[list[dict[str, Any]], list[_Link], list[dict[str, Any]]]
] = Bounded(_RUNS_SIZE, _CHAIN_SIZE)
_HEADS: dict[tuple[str, int], tuple[list[dict[str, Any]], str, _Hash]] = {}
_lock = threading.Lock()


# Recent requests' messages after their first, found without thinking blocks, by the id of
# the second (held): a conversation's next request that opens with them (or equal ones) looks
# only at its new messages. Bounded as the runs are.
_PLAIN: Bounded[int, list[dict[str, Any]]] = Bounded(_RUNS_SIZE, _CHAIN_SIZE)


def _any_thinking(messages: list[dict[str, Any]]) -> bool:
    """Whether any of `messages` carries a thinking block."""
    if not messages:
        return False
    start = 1
    if len(messages) > 2:
        plain = _PLAIN.get(id(messages[1]))
        if plain is not None and plain[0] is messages[1]:
            start += equal_opening(plain, messages, 1, len(messages))
    if _has_thinking(messages[0]) or any(map(_has_thinking, islice(messages, start, None))):
        return True
    if len(messages) > 2 and start < len(messages):
        _PLAIN.put(id(messages[1]), messages[1:], len(messages) - 1)
    return False


def _head(system: str | list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[str, _Hash]:
    """(digest, running hash) of the system prompt and tools: remembered per system text and
    tool list (one list object for the life of the registry)."""
    text = _system_text(system)
    known = _HEADS.get((text, id(tools)))
    if known is not None and known[0] is tools:
        return known[1], known[2]
    digest = PrefixDigest(system, tools)._digest
    with _lock:
        _HEADS[(text, id(tools))] = (tools, digest.hexdigest(), digest)
        if len(_HEADS) > 256:
            _HEADS.pop(next(iter(_HEADS)), None)
    return digest.hexdigest(), digest


def _chain(
    system: str | list[dict[str, Any]],
    tools: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    model: str,
) -> tuple[list[dict[str, Any]], str]:
    """(the messages as sent to `model`, the digest of the whole prefix)."""
    before, running = _head(system, tools)
    links: list[_Link] = []
    sent: list[dict[str, Any]] = []
    done = 0
    run_key: tuple[str, str, int] | None = None
    if len(messages) > 2:
        first = _link(messages[0], before, running, model)
        links.append(first)
        sent.append(first[3])
        _, before, running, _ = first
        run_key = (model, before, id(messages[1]))
        run = _RUNS.get(run_key)
        done = 1
        if run is not None and run[0][0] is messages[1]:
            objects, kept, kept_sent = run
            same = shared_opening(objects, messages, 1, len(messages))  # 1 at least
            links += kept[:same]
            sent += kept_sent[:same]
            _, before, running, _ = kept[same - 1]
            done += same
    for message in islice(messages, done, None):
        link = _link(message, before, running, model)
        links.append(link)
        sent.append(link[3])
        _, before, running, _ = link
    if run_key is not None:
        _RUNS.put(run_key, (messages[1:], links[1:], sent[1:]), len(links) - 1)
    return sent, before


def _link(message: dict[str, Any], before: str, running: _Hash, model: str) -> _Link:
    """What is remembered of `message` after a prefix whose digest is `before`."""
    key = (model, before, id(message))
    link = _CHAIN.get(key)
    if link is None or link[0] is not message:
        out = _sendable(message, before, model)
        running = running.copy()
        running.update(_canonical(out))
        link = (message, running.hexdigest(), running, out)
        with _lock:
            _CHAIN[key] = link
            if len(_CHAIN) > _CHAIN_SIZE:  # bounded: forget the oldest
                _CHAIN.pop(next(iter(_CHAIN)), None)
    return link


def _sendable(message: dict[str, Any], before: str, model: str) -> dict[str, Any]:
    """`message` as sent to `model` after a prefix whose digest is `before`: its thinking
    blocks kept only where bound to that prefix and readable by the model, unannotated."""
    if not _has_thinking(message):
        return message
    kept = []
    for block in message["content"]:
        if block.get("type") not in THINKING_TYPES:
            kept.append(block)
            continue
        binding = block.get(BINDING) or {}
        if binding.get("prefix") == before and readable_by(model, binding.get("model", "")):
            kept.append({k: v for k, v in block.items() if k != BINDING})
    return {**message, "content": kept}


def _has_thinking(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return (
        message.get("role") == "assistant"
        and isinstance(content, list)
        and any(b.get("type") in THINKING_TYPES for b in content)
    )


def bind(
    content: list[dict[str, Any]], model: str, prefix: Callable[[], str]
) -> list[dict[str, Any]]:
    """A reply's content with each thinking block annotated with its signer and the digest of
    the prefix it was written after (computed only when the reply has thinking blocks)."""
    if not any(b.get("type") in THINKING_TYPES for b in content):
        return content
    written_after = prefix()
    return [
        {**b, BINDING: {"model": model, "prefix": written_after}}
        if b.get("type") in THINKING_TYPES
        else b
        for b in content
    ]
