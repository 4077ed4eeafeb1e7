"""agent.models.thinking.for_request, which remembers what it worked out for a conversation's
messages from request to request, gives what working it all out afresh gives: over a growing
conversation with thinking blocks, older turns cut, a message replaced, a new system prompt
and another target model."""

from __future__ import annotations

from typing import Any

from agent.models.thinking import (
    BINDING,
    THINKING_TYPES,
    PrefixDigest,
    bind,
    for_request,
    readable_by,
)

SONNET = "claude-sonnet-5-5"
OPUS = "claude-opus-5-5"
TOOLS: list[dict[str, Any]] = [{"name": "list_orders", "input_schema": {"type": "object"}}]


def _afresh(
    system: str, messages: list[dict[str, Any]], model: str
) -> tuple[list[dict[str, Any]], str]:
    """The definition: each thinking block kept where bound to the prefix before its message
    and readable by `model`, unannotated; the digest of the whole prefix as sent."""
    digest = PrefixDigest(system, TOOLS)
    sent = []
    for message in messages:
        before = digest.value()
        content = message["content"]
        if message["role"] == "assistant" and any(b.get("type") in THINKING_TYPES for b in content):
            kept = []
            for block in content:
                binding = block.get(BINDING)
                if binding is None:
                    kept.append(block)
                elif binding["prefix"] == before and readable_by(model, binding["model"]):
                    kept.append({k: v for k, v in block.items() if k != BINDING})
            message = {**message, "content": kept}
        digest.add(message)
        sent.append(message)
    return sent, digest.value()


def _check(system: str, messages: list[dict[str, Any]], model: str = SONNET) -> str:
    sent, prefix = for_request(system, TOOLS, messages, model)
    expected, digest = _afresh(system, messages, model)
    assert sent == expected
    assert prefix() == digest
    return digest


def _thinking_kept(system: str, messages: list[dict[str, Any]], model: str = SONNET) -> int:
    sent, _ = for_request(system, TOOLS, messages, model)
    return sum(b.get("type") in THINKING_TYPES for m in sent for b in m["content"])


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def test_remembered_prefixes_give_what_working_afresh_gives() -> None:
    system = "You help the customers of a shop."
    history: list[dict[str, Any]] = [_user("hello")]
    for turn in range(12):
        digest = _check(system, history)
        reply = [
            {"type": "thinking", "thinking": f"note {turn}", "signature": f"s{turn}"},
            {"type": "text", "text": f"answer {turn}"},
        ]
        history += [
            {"role": "assistant", "content": bind(reply, SONNET, lambda d=digest: d)},
            _user(f"question {turn}"),
        ]
        _check(system, history)
    assert _thinking_kept(system, history) == 12
    # Older turns cut: the first message merged anew with a note, the rest the same objects.
    cut = [{"role": "user", "content": [*history[0]["content"], *history[9]["content"]]}]
    _check(system, [*cut, *history[10:]])
    _check(system, [*cut, *history[10:]])
    # A message in the middle replaced by an equal copy, and by a different one.
    copied = [*history[:5], dict(history[5]), *history[6:]]
    _check(system, copied)
    _check(system, [*history[:5], _user("changed"), *history[6:]])
    _check(system, history)
    # A new system prompt (every block's prefix changed) and another target model.
    _check(system + " The customer is verified.", history)
    assert _thinking_kept(system + " The customer is verified.", history) == 0
    _check(system, history, OPUS)
    _check(system, history)


def test_a_thinking_block_after_a_history_found_without_any_is_bound_and_kept() -> None:
    system = "You help the customers of a shop."
    history: list[dict[str, Any]] = [_user("hello")]
    for turn in range(6):  # plain answers: no thinking blocks yet
        history += [{"role": "assistant", "content": [{"type": "text", "text": f"a{turn}"}]},
                    _user(f"question {turn}")]  # fmt: skip
        _check(system, history)
    digest = _check(system, history)
    reply = [{"type": "thinking", "thinking": "note", "signature": "s"},
             {"type": "text", "text": "answer"}]  # fmt: skip
    history += [
        {"role": "assistant", "content": bind(reply, SONNET, lambda: digest)},
        _user("and then?"),
    ]
    _check(system, history)
    assert _thinking_kept(system, history) == 1
    # The same history in equal copies, and one whose plain opening is followed by another.
    _check(system, [dict(m) for m in history])
    assert _thinking_kept(system, [history[0], *map(dict, history[1:])]) == 1
