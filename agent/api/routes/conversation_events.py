"""A customer's live view of the people on their conversation: who joined, replied and left."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from agent.api.deps import AuthorizationHeader, ConversationDep, StateDep, still_valid
from agent.api.errors import AUTHENTICATED, responses
from agent.api.event_feed import After, LastEventId, start_at, stream
from agent.api.schemas import NoticeOut
from agent.store import desk_events
from agent.store.desk_events import DeskEventKind
from agent.store.tables import DeskEvent

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

SSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-sent events", "content": {"text/event-stream": {}}}
}


def _notice(event: DeskEvent) -> NoticeOut:
    return NoticeOut(
        id=event.id or 0, kind=event.kind, text=event.text, created_at=event.created_at
    )


def notices(session: Session, conversation_id: str) -> list[NoticeOut]:
    """What the customer is told of people joining and leaving (replies are messages)."""
    found = desk_events.since(
        session=session, after=0, conversation_id=conversation_id, public_only=True, limit=1000
    )
    return [_notice(e) for e in found if e.kind != DeskEventKind.STAFF_REPLY]


@router.get(
    "/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses={**responses(*AUTHENTICATED, 404), **SSE},
)
def follow_conversation(
    conversation: ConversationDep,
    state: StateDep,
    after: After = None,
    last_event_id: LastEventId = None,
    authorization: AuthorizationHeader = None,
) -> EventSourceResponse:
    """While a person has the conversation: `notice` events (a person joined, stepped away,
    or resolved it, with the text to show) and `staff_reply` events (fetch the conversation
    for the new message). The stream ends when the conversation is back with the assistant;
    start after `last_event_id` from GET /v1/conversations/{id}."""

    def render(event: DeskEvent) -> tuple[str, str]:
        name = "staff_reply" if event.kind == DeskEventKind.STAFF_REPLY else "notice"
        return name, json.dumps(_notice(event).model_dump(mode="json"), ensure_ascii=False)

    return stream(
        state,
        after=start_at(state, last_event_id, after),
        render=render,
        conversation_id=conversation.id,
        public_only=True,
        last=lambda event: event.kind == DeskEventKind.RESOLVED,
        allowed=lambda: still_valid(state, authorization),
    )
