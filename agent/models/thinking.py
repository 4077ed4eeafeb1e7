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
from collections.abc import Callable
from typing import Any

from agent.capabilities import FAMILIES, family_name

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
    not hashed at all: the digest is computed only when asked for."""
    if not any(_has_thinking(m) for m in messages):
        return messages, lambda: _digest_of(system, tools, messages)
    digest = PrefixDigest(system, tools)
    sent: list[dict[str, Any]] = []
    for message in messages:
        if _has_thinking(message):
            before = digest.value()
            kept = []
            for block in message["content"]:
                if block.get("type") not in THINKING_TYPES:
                    kept.append(block)
                    continue
                binding = block.get(BINDING) or {}
                if binding.get("prefix") == before and readable_by(model, binding.get("model", "")):
                    kept.append({k: v for k, v in block.items() if k != BINDING})
            message = {**message, "content": kept}
        sent.append(message)
        digest.add(message)
    final = digest.value()
    return sent, lambda: final


def _has_thinking(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return (
        message.get("role") == "assistant"
        and isinstance(content, list)
        and any(b.get("type") in THINKING_TYPES for b in content)
    )


def _digest_of(
    system: str | list[dict[str, Any]], tools: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> str:
    digest = PrefixDigest(system, tools)
    for message in messages:
        digest.add(message)
    return digest.value()


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
