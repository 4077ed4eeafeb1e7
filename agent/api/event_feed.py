"""Following the desk's event feed as server-sent events.

One reader per worker process (`FeedHub`) checks the event table every
`event_poll_seconds` and hands what is new to every stream that follows it, so a hundred open
desks and waiting customers cost one query per interval, not a hundred. The feed is in the
database, so each worker and replica sees every event. A stream ends after
`event_stream_seconds`; the browser reconnects with Last-Event-ID and what happened meanwhile
is read from the table.

PostgreSQL hands out ids when rows are inserted, not when they commit, so an event can become
visible after one with a higher id: the hub remembers the ids it skipped and looks for them
again for `GAP_SECONDS` (a rolled-back insert leaves a gap that never fills).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Header, Query
from sqlalchemy import Engine
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from agent.api.deps import AppState
from agent.store import desk_events
from agent.store.tables import DeskEvent

log = logging.getLogger(__name__)

BATCH = 200
GAP_SECONDS = 30.0
MAX_GAP = 1000  # a jump of more ids than this is not tracked id by id

LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", max_length=20, include_in_schema=False)
]
After = Annotated[
    int | None,
    Query(ge=0, le=2**31 - 1, description="Send the events after this id (default: from now)"),
]


@dataclass(eq=False)
class _Follower:
    queue: asyncio.Queue[list[DeskEvent]] = field(default_factory=asyncio.Queue)


class FeedHub:
    """The worker's one reader of the event feed, running while anyone follows it."""

    def __init__(self, engine: Engine, poll_seconds: float) -> None:
        self._engine, self._poll = engine, poll_seconds
        self._followers: set[_Follower] = set()
        self._task: asyncio.Task[None] | None = None
        self._position: int | None = None  # the highest id handed out
        self._gaps: dict[int, float] = {}  # ids below it not seen yet -> when first missed
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reads = 0  # how many times the table was read (for tests and benchmarks)

    async def follow(self) -> _Follower:
        """A new follower: everything committed after this returns is handed to it."""
        if self._position is None:
            position = await anyio.to_thread.run_sync(self._newest)
            if self._position is None:
                self._position = position
        follower = _Follower()
        self._followers.add(follower)
        if self._task is None or self._task.done():
            self.loop = asyncio.get_running_loop()
            self._task = self.loop.create_task(self._run())
        return follower

    def _newest(self) -> int:
        with Session(self._engine) as session:
            return desk_events.last_id(session=session)

    def leave(self, follower: _Follower) -> None:
        self._followers.discard(follower)

    async def _run(self) -> None:
        while self._followers:
            try:
                fresh = await anyio.to_thread.run_sync(self._read)
            except Exception:  # the database is away: the streams stay open, and wait
                log.warning("could not read the desk's event feed", exc_info=True)
                fresh = []
            for follower in list(self._followers):
                if fresh:
                    follower.queue.put_nowait(fresh)
            if len(fresh) < BATCH:
                await asyncio.sleep(self._poll)

    def _read(self) -> list[DeskEvent]:
        """What is new since the last read (one query), and any late event that filled a gap."""
        self.reads += 1
        assert self._position is not None
        with Session(self._engine) as session:
            low = min(self._gaps, default=self._position + 1) - 1
            found = desk_events.since(session=session, after=low, limit=BATCH)
        now = time.monotonic()
        fresh: list[DeskEvent] = []
        for event in found:
            assert event.id is not None
            if event.id > self._position:
                if event.id - self._position <= MAX_GAP:
                    self._gaps.update(dict.fromkeys(range(self._position + 1, event.id), now))
                self._position = event.id
                fresh.append(event)
            elif self._gaps.pop(event.id, None) is not None:
                fresh.append(event)
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
        return fresh


def hub(state: AppState) -> FeedHub:
    """This worker's hub (one per event loop: a test client starts a loop of its own)."""
    loop = asyncio.get_running_loop()
    current: FeedHub | None = state.feed_hub
    if current is None or (current.loop is not None and current.loop is not loop):
        current = FeedHub(state.runtime.engine, state.settings.event_poll_seconds)
        state.feed_hub = current
    return current


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

    def wanted(event: DeskEvent) -> bool:
        return (conversation_id is None or event.conversation_id == conversation_id) and (
            event.public or not public_only
        )

    def backlog(position: int) -> list[DeskEvent]:
        with Session(state.runtime.engine) as session:
            return desk_events.since(session=session, after=position, limit=BATCH,
                                     conversation_id=conversation_id,
                                     public_only=public_only)  # fmt: skip

    async def events() -> AsyncIterator[dict[str, str]]:
        feed = hub(state)
        follower = await feed.follow()  # first: nothing committed from now on is missed
        try:
            sent: set[int] = set()
            position = after
            yield {"event": "ready", "data": json.dumps({"last_event_id": position})}
            while True:  # what happened before (a reconnecting browser, or ?after=)
                batch = await anyio.to_thread.run_sync(backlog, position)
                for event in batch:
                    assert event.id is not None
                    position = event.id
                    sent.add(event.id)
                    name, data = render(event)
                    yield {"id": str(event.id), "event": name, "data": data}
                    if last(event):
                        return
                if len(batch) < BATCH:
                    break
            deadline = time.monotonic() + settings.event_stream_seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    fresh = await asyncio.wait_for(follower.queue.get(), timeout=left)
                except TimeoutError:
                    return
                for event in fresh:
                    assert event.id is not None
                    if event.id in sent or event.id <= after or not wanted(event):
                        continue
                    sent.add(event.id)
                    name, data = render(event)
                    yield {"id": str(event.id), "event": name, "data": data}
                    if last(event):
                        return
        finally:
            feed.leave(follower)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})
