"""Condensing older turns into a summary (the `summarize` context strategy).

Claude writes the summary when it is the configured model; the offline model's stand-in is
extractive (the customer's requests and the assistant's answers, shortened). The summary is
stored on the conversation and carried in the system prompt; the detailed turns stay in the
database but leave the request.
"""

from __future__ import annotations

import json
from typing import Any

from agent.models.base import ModelRequest

SUMMARY_SYSTEM = (
    "You summarise customer-support conversations for the assistant that continues them. "
    "Write at most 150 words of plain prose: who the customer is (as verified), what they "
    "asked, what the tools showed (order numbers, statuses, tracking numbers, policies "
    "cited), what was promised or handed off, and what is still open. No greeting."
)


def transcript_text(messages: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for message in messages:
        for block in message["content"]:
            kind = block.get("type")
            if kind == "text" and block.get("text", "").strip():
                who = "Customer" if message["role"] == "user" else "Assistant"
                lines.append(f"{who}: {block['text'].strip()}")
            elif kind == "tool_use":
                lines.append(f"(tool {block['name']} {json.dumps(block.get('input') or {})})")
            elif kind == "tool_result":
                content = block.get("content")
                text = content if isinstance(content, str) else json.dumps(content)
                lines.append(f"(result{' error' if block.get('is_error') else ''}: {text[:300]})")
    return "\n".join(lines)


def extractive(previous: str | None, messages: list[dict[str, Any]]) -> str:
    """The offline stand-in: the latest requests and answers, shortened."""
    said = [
        f"{'Customer' if m['role'] == 'user' else 'Assistant'}: {b['text'].strip()[:160]}"
        for m in messages
        for b in m["content"]
        if b.get("type") == "text" and b.get("text", "").strip()
    ]
    recent = said[-8:]
    return "\n".join(([previous] if previous else []) + recent)


def summary_request(previous: str | None, messages: list[dict[str, Any]]) -> ModelRequest:
    """The request that has the model summarise `previous` plus `messages`."""
    earlier = f"Summary so far:\n{previous}\n\n" if previous else ""
    return ModelRequest(
        system=SUMMARY_SYSTEM,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": earlier + "Conversation:\n" + transcript_text(messages),
                    }
                ],
            }
        ],
        tools=[],
        max_tokens=1024,
        auxiliary=True,
    )
