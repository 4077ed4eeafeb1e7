"""A turn's events as server-sent events, and how the OpenAPI schema describes that
stream."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from agent.api.schemas import TurnOut
from agent.api.turn_views import pending_out, turn_out
from agent.engine.events import (
    ActionProposed,
    Degraded,
    Event,
    ToolFinished,
    ToolStarted,
    TurnFinished,
)
from agent.errors import SupportbotError
from agent.models.base import ProgressDelta, TextDelta, Working
from tools import describe
from tools.tool_context import waits, waits_for_verification

DEGRADED_NOTICE = "The AI assistant is unavailable right now; answering in offline mode."


def sse(event: Event) -> dict[str, str]:
    data: dict[str, Any]
    if isinstance(event, TextDelta):
        name, data = "text", {"delta": event.text}
    elif isinstance(event, Working):
        name, data = "working", {}
    elif isinstance(event, ProgressDelta):
        name, data = "progress", {"delta": event.text}
    elif isinstance(event, ToolStarted):
        name, data = (
            "tool_start",
            {"id": event.id, "name": event.name, "label": describe(event.name, event.input)},
        )
    elif isinstance(event, ToolFinished):
        # A tool that refused because the customer is not verified yet (ToolContext.
        # require_customer), or while identity checks are paused, did its job: the chat
        # shows it as a step, not a failure (`waits` covers both).
        error, content = event.is_error, event.content
        name = "tool_finish"
        data = {"id": event.id, "name": event.name, "is_error": error,
                "needs_verification": error and waits_for_verification(content),
                "waits": error and waits(content)}  # fmt: skip
    elif isinstance(event, ActionProposed):
        pending = pending_out(event.action)
        assert pending is not None
        name, data = "pending_action", pending.model_dump(mode="json")
    elif isinstance(event, Degraded):
        name, data = "degraded", {"message": DEGRADED_NOTICE}
    else:
        assert isinstance(event, TurnFinished)
        result = event.result
        name = "final"
        data = turn_out(result).model_dump(mode="json")
    return {"event": name, "data": json.dumps(data, ensure_ascii=False)}


# A turn answers JSON, or server-sent events when asked to stream. The event stream's schema
# describes one event (OpenAPI 3.1 has no `itemSchema`); its data is JSON.
SSE_EVENTS = ["text", "working", "progress", "tool_start", "tool_finish", "degraded",
              "pending_action", "error", "final"]  # fmt: skip


STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The turn's result as JSON; with `Accept: text/event-stream` or "
        "`?stream=true`, server-sent events: `text` {delta}, `working` {}, `progress` {delta}, "
        "`tool_start` {id, name, label}, `tool_finish` {id, name, is_error, needs_verification, "
        "waits}, "
        "`degraded` "
        "{message}, `pending_action` {id, tool, summary, expires_at}, `error` {code, message}, "
        "then `final` (the result, as the JSON reply)",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": SSE_EVENTS},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            }
        },
    }
}


async def events(first: Event, turn: AsyncGenerator[Event, None]) -> AsyncIterator[dict[str, str]]:
    """The turn's events as server-sent events. When the client goes away the turn is closed:
    whatever it had not yet stored is not stored, and the history it leaves is valid (the
    customer's message is kept)."""
    async with aclosing(turn):
        yield sse(first)
        try:
            async for event in turn:
                yield sse(event)
        except SupportbotError as exc:
            yield {"event": "error", "data": json.dumps({"code": exc.code, "message": str(exc)})}


async def replay(out: TurnOut) -> AsyncIterator[dict[str, str]]:
    yield {"event": "final", "data": json.dumps(out.model_dump(mode="json"), ensure_ascii=False)}
