"""The offline model's conversation: what the customer has asked for since the last thing it
finished, read back from the request's messages (the offline model keeps no state of its own:
the history the engine stores is its memory).

A dialogue is the customer's messages since the offline model last said something that was not
one of its own questions (a slot question, or asking the customer to verify): those messages
are one request being worked out, one answer at a time. Each answer is read against the
question asked just before it, and every tool result in the window is there to read (the
order's items, the customer's payment methods, a product's variants).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.models.offline_phrases import ENGLISH, language_of, said_in_any

Block = dict[str, Any]


@dataclass(frozen=True)
class Said:
    """A customer's message, and the offline model's question it answers (if any)."""

    text: str
    question: str  # the assistant's text just before it ("" for none)


@dataclass
class Dialogue:
    said: list[Said]  # the customer's messages of this dialogue, oldest first
    calls: dict[str, Block] = field(default_factory=dict)  # tool_use id -> block
    results: list[tuple[Block, Block]] = field(default_factory=list)  # (call, result), in order
    verified: bool = False  # the conversation's customer is verified (as the prompt says)
    started: int = 0  # index of the dialogue's first message in the request
    language: str = ENGLISH  # the customer's, as their messages tell it (offline_phrases.py)

    @classmethod
    def read(cls, messages: list[Block], system: str, changes: set[str]) -> Dialogue:
        """The dialogue of `messages` (a request's); `changes`: the tools that change orders
        (a change settled, whatever its outcome, ends the dialogue that proposed it)."""
        calls: dict[str, Block] = {}
        results: list[tuple[Block, Block]] = []
        for message in messages:
            for block in _blocks(message):
                if block.get("type") == "tool_use":
                    calls[block["id"]] = block
                elif block.get("type") == "tool_result":
                    call = calls.get(block.get("tool_use_id", ""))
                    if call is not None:
                        results.append((call, block))
        said: list[Said] = []
        start = len(messages)
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            text = _text(message)
            if message["role"] == "assistant":
                if text and not continues(text):
                    break  # it finished something: the dialogue starts after it
                continue
            if text:
                said.insert(0, Said(text, _question_before(messages, index)))
            start = index
            if any(b.get("type") == "tool_result"
                   and calls.get(b.get("tool_use_id", ""), {}).get("name") in changes
                   for b in _blocks(message)):  # fmt: skip
                break  # a change was settled here: what came before is done
        verified = "The customer is verified" in system or any(
            c["name"] == "verify_customer" and not r.get("is_error") for c, r in results
        )
        language = language_of(_text(m) for m in messages if m["role"] == "user")
        return cls(said, calls, results, verified, start, language)

    # -- what the results say ---------------------------------------------------------------

    def latest(self, tool: str, *, since_start: bool = False, **matching: Any) -> Any:
        """The newest successful result of `tool` (parsed), whose call's input has `matching`;
        None when there is none."""
        for call, result in reversed(self.results):
            if call["name"] != tool or result.get("is_error"):
                continue
            if any(call.get("input", {}).get(k) != v for k, v in matching.items()):
                continue
            return parsed(result)
        return None

    def failed(self, tool: str) -> str | None:
        """The error of `tool`'s newest call, if its newest call failed."""
        for call, result in reversed(self.results):
            if call["name"] == tool:
                return result_text(result) if result.get("is_error") else None
        return None

    def turn_results(self, messages: list[Block]) -> list[tuple[Block, Block]]:
        """The (call, result) pairs of the request's last message."""
        last = messages[-1]
        return [
            (self.calls[b["tool_use_id"]], b)
            for b in _blocks(last)
            if b.get("type") == "tool_result" and b.get("tool_use_id") in self.calls
        ]

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.said]


def continues(text: str) -> bool:
    """Whether an assistant text is one of the offline model's questions, in any language (the
    dialogue goes on after it): its questions end with `asks`, and asking the customer to
    verify says `verify_marker`."""
    return said_in_any(text, "asks") or said_in_any(text, "verify_marker")


def _question_before(messages: list[Block], index: int) -> str:
    for message in reversed(messages[:index]):
        if message["role"] == "assistant":
            text = _text(message)
            if text:
                return text if continues(text) else ""
    return ""


def _blocks(message: Block) -> list[Block]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _text(message: Block) -> str:
    """A message's text; none for an assistant message that calls tools: what a model says
    with its calls ("I can do that: please confirm") words a step, it does not finish
    anything."""
    blocks = _blocks(message)
    if message["role"] == "assistant" and any(b.get("type") == "tool_use" for b in blocks):
        return ""
    return " ".join(b.get("text", "") for b in blocks if b.get("type") == "text").strip()


def result_text(result: Block) -> str:
    """A tool result's text (its text blocks, or its string content)."""
    content = result.get("content", "")
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if b.get("type") == "text")
    return str(content)


def parsed(result: Block) -> Any:
    """A tool result as data: its text read as JSON, else the text."""
    text = result_text(result)
    try:
        return json.loads(text)
    except ValueError:
        return text
