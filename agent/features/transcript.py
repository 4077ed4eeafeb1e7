"""A conversation as people read it: who said what, which tools ran, which sources were cited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from agent.engine.consent import confirmation_prompt
from agent.store.tables import ActionStatus, Message, UtcTime
from kb.language import language_of
from tools import describe
from tools.tool_context import waits, waits_for_verification


class ToolCallView(BaseModel):
    name: str
    label: str
    is_error: bool = False
    needs_verification: bool = False  # refused only because the customer is not verified yet
    # Refused as a wait, not a failure: not verified yet, or identity checks paused for a few
    # seconds (tools.tool_context.waits). Show it as waiting on the customer.
    waits: bool = False


class CitationView(BaseModel):
    number: int
    title: str
    section: str = ""
    url: str | None = None
    page: int | None = None


class ImageView(BaseModel):
    media_type: str
    url: str  # a data: URL, ready for an <img>


class ActionView(BaseModel):
    """A change the assistant proposed in the conversation, and where it stands."""

    id: str
    tool: str
    summary: str
    status: ActionStatus
    expires_at: UtcTime


class TranscriptEntry(BaseModel):
    id: int
    role: Literal["customer", "assistant", "staff"]
    text: str
    created_at: UtcTime
    tool_calls: list[ToolCallView] = []
    citations: list[CitationView] = []
    images: list[ImageView] = []
    degraded: bool = False
    author: str | None = None
    action: ActionView | None = None  # the change this message proposed


def _result_text(content: Any) -> str:
    """A tool result's text (a string, or a list of content blocks)."""
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return content if isinstance(content, str) else ""


def _text(content: list[dict[str, Any]]) -> str:
    return "\n\n".join(b["text"] for b in content if b.get("type") == "text" and b.get("text"))


def build_transcript(
    rows: Sequence[Message], actions: Mapping[str | None, ActionView] | None = None
) -> list[TranscriptEntry]:
    """`actions`: the conversation's proposed changes by the tool_use id that proposed them
    (each shows as the assistant's request for confirmation)."""
    actions = actions or {}
    entries: list[TranscriptEntry] = []
    pending: dict[str, ToolCallView] = {}  # tool calls since the last assistant text
    said: list[str] = []  # the customer's texts so far: a proposal is worded in their language
    for row in rows:
        if row.role == "user":
            for block in row.content:
                if block.get("type") == "tool_result" and block.get("tool_use_id") in pending:
                    call = pending[block["tool_use_id"]]
                    call.is_error = bool(block.get("is_error"))
                    content = _result_text(block.get("content"))
                    call.needs_verification = call.is_error and waits_for_verification(content)
                    call.waits = call.is_error and waits(content)
            text = _text(row.content)
            said.append(" ".join(b.get("text", "") for b in row.content if b.get("type") == "text"))
            images = [
                ImageView(
                    media_type=b["source"]["media_type"],
                    url=f"data:{b['source']['media_type']};base64,{b['source']['data']}",
                )
                for b in row.content
                if b.get("type") == "image" and b.get("source", {}).get("type") == "base64"
            ]
            if text or images:
                entries.append(
                    TranscriptEntry(
                        id=row.id or 0,
                        role="customer",
                        text=text,
                        created_at=row.created_at,
                        images=images,
                    )
                )
            continue
        for block in row.content:
            if block.get("type") == "tool_use":
                pending[block["id"]] = ToolCallView(
                    name=block["name"], label=describe(block["name"], block.get("input") or {})
                )
        proposing = [b["id"] for b in row.content
                     if b.get("type") == "tool_use" and b.get("id") in actions]  # fmt: skip
        proposed = actions[proposing[0]] if proposing else None
        if proposed is not None:
            pending.pop(proposing[0], None)  # shown as the proposal, not as a tool call
            entries.append(
                TranscriptEntry(
                    id=row.id or 0,
                    role="assistant",
                    text=confirmation_prompt(proposed.summary, language_of(said)),
                    created_at=row.created_at,
                    tool_calls=list(pending.values()),
                    degraded=row.degraded,
                    action=proposed,
                )
            )
            pending = {}
            continue
        if row.stop_reason == "tool_use":
            continue  # any text here was a preamble to the tool calls ("Let me check")
        staff = (row.author or "").startswith("staff:")
        entries.append(
            TranscriptEntry(
                id=row.id or 0,
                role="staff" if staff else "assistant",
                text=_text(row.content),
                created_at=row.created_at,
                tool_calls=list(pending.values()),
                citations=[CitationView.model_validate(c) for c in row.citations or []],
                degraded=row.degraded,
                author=row.author.removeprefix("staff:") if staff and row.author else None,
            )
        )
        pending = {}
    return entries
