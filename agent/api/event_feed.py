"""Following the desk's event feed as server-sent events.

Each stream reads the feed from the database (so it sees events from every worker and
replica), checking for new ones every `event_poll_seconds`, and ends after
`event_stream_seconds`; the browser reconnects with Last-Event-ID and misses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
from fastapi import Header, Query
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from agent.api.deps import AppState
from agent.store import desk_events
from agent.store.tables import DeskEvent

BATCH = 100

LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", max_length=20, include_in_schema=False)
]
After = Annotated[
    int | None,
    Query(ge=0, le=2**31 - 1, description="Send the events after this id (default: from now)"),
]


def start_at(state: AppState, last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: after the browser's Last-Event-ID when it reconnects, else
    after `after`, else at the newest event (only what happens from now on)."""
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    if after is not None:
        return after
    with Session(state.runtime.engine) as session:
        return desk_events.last_id(session=session)


def stream(
    state: AppState,
    *,
    after: int,
    render: Callable[[DeskEvent], tuple[str, str]],
    conversation_id: str | None = None,
    public_only: bool = False,
    last: Callable[[DeskEvent], bool] = lambda _: False,
) -> EventSourceResponse:
    """The feed after `after` as server-sent events: `render` gives each event's (event name,
    JSON data); the stream ends after an event for which `last` is true."""
    settings = state.settings

    def read(position: int) -> list[DeskEvent]:
        with Session(state.runtime.engine) as session:
            return desk_events.since(
                session=session,
                after=position,
                limit=BATCH,
                conversation_id=conversation_id,
                public_only=public_only,
            )

    async def events() -> AsyncIterator[dict[str, str]]:
        position = after
        yield {"event": "ready", "data": json.dumps({"last_event_id": position})}
        deadline = time.monotonic() + settings.event_stream_seconds
        while time.monotonic() < deadline:
            batch = await anyio.to_thread.run_sync(read, position)
            for event in batch:
                assert event.id is not None
                position = event.id
                name, data = render(event)
                yield {"id": str(event.id), "event": name, "data": data}
                if last(event):
                    return
            if len(batch) < BATCH:
                await anyio.sleep(settings.event_poll_seconds)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})
