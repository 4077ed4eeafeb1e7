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
from typing import Annotated, NamedTuple

import anyio
from fastapi import Header, Query
from sqlalchemy import Engine
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from agent.api.deps import DB_INT_MAX, AppState
from agent.store import desk_events
from agent.store.tables import DeskEvent

log = logging.getLogger(__name__)

BATCH = 200
GAP_SECONDS = 30.0
MAX_GAP = 1000  # a jump of more ids than this is not tracked id by id
QUEUE_BATCHES = 100
RECHECK_SECONDS = 30.0  # how often an open stream checks its caller may still follow it

LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", max_length=20, include_in_schema=False)
]
After = Annotated[
    int | None,
    Query(ge=0, le=DB_INT_MAX, description="Send the events after this id (default: from now)"),
]


class Delivery(NamedTuple):
    event: DeskEvent
    late: bool  # it became visible after events with higher ids had been handed out


@dataclass(eq=False)
class _Follower:
    # Bounded: a client too slow to take what it is sent is dropped, and reconnects with
    # Last-Event-ID (the table has everything).
    queue: asyncio.Queue[list[Delivery]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_BATCHES)
    )
    dropped: bool = False


class FeedHub:
    """The worker's one reader of the event feed, running while anyone follows it."""

    def __init__(self, engine: Engine, poll_seconds: float) -> None:
        self._engine, self._poll = engine, poll_seconds
        self._followers: set[_Follower] = set()
        self._task: asyncio.Task[None] | None = None
        self._position: int | None = None  # the highest id handed out
        self._gaps: dict[int, float] = {}  # ids below it not seen yet -> when first missed
        self._late: dict[int, tuple[DeskEvent, float]] = {}  # gaps filled lately -> when
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reads = 0  # how many times the table was read (for tests and benchmarks)

    async def follow(self) -> tuple[_Follower, list[DeskEvent]]:
        """A new follower: everything committed after this returns is handed to it. With it,
        the events that became visible late in the last GAP_SECONDS (a browser reconnecting
        after a higher id may not have had them)."""
        if self._idle:  # nobody followed: start from now
            position = await anyio.to_thread.run_sync(self._newest)
            if self._idle:
                self._position, self._gaps = position, {}
        follower = _Follower()
        self._followers.add(follower)
        if self._idle:
            self.loop = asyncio.get_running_loop()
            self._task = self.loop.create_task(self._run())
        now = time.monotonic()
        return follower, [e for e, at in self._late.values() if now - at < GAP_SECONDS]

    @property
    def _idle(self) -> bool:
        return self._task is None or self._task.done()

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
            for follower in list(self._followers) if fresh else []:
                if follower.queue.full():
                    follower.dropped = True
                    self.leave(follower)
                else:
                    follower.queue.put_nowait(fresh)
            if sum(not d.late for d in fresh) < BATCH:
                await asyncio.sleep(self._poll)

    def _read(self) -> list[Delivery]:
        """What is new since the last read, and any late event that filled a gap (one query
        each)."""
        self.reads += 1
        assert self._position is not None
        with Session(self._engine) as session:
            found = desk_events.since(session=session, after=self._position, limit=BATCH)
            filled = desk_events.by_ids(session=session, ids=list(self._gaps)[:MAX_GAP])
        now = time.monotonic()
        fresh: list[Delivery] = []
        for event in filled:
            assert event.id is not None
            del self._gaps[event.id]
            self._late[event.id] = (event, now)
            fresh.append(Delivery(event, late=True))
        for event in found:
            assert event.id is not None
            if event.id - self._position <= MAX_GAP:
                self._gaps.update(dict.fromkeys(range(self._position + 1, event.id), now))
            self._position = event.id
            fresh.append(Delivery(event, late=False))
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
        self._late = {i: v for i, v in self._late.items() if now - v[1] < GAP_SECONDS}
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
    try:
        reconnected = int((last_event_id or "").strip(), 10)
    except ValueError:
        reconnected = -1
    if 0 <= reconnected <= DB_INT_MAX:
        return reconnected
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
    allowed: Callable[[], bool] = lambda: True,
) -> EventSourceResponse:
    """The feed after `after` as server-sent events: `render` gives each event's (event name,
    JSON data); the stream ends after an event for which `last` is true, and when `allowed`
    (asked every RECHECK_SECONDS: is the caller's key or sign-in still valid?) says no."""
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
        follower, late = await feed.follow()  # first: nothing committed from now on is missed
        sent: set[int] = set()

        def send(event: DeskEvent) -> dict[str, str]:
            assert event.id is not None
            sent.add(event.id)
            name, data = render(event)
            return {"id": str(event.id), "event": name, "data": data}

        try:
            position = after
            yield {"event": "ready", "data": json.dumps({"last_event_id": position})}
            while True:  # what happened before (a reconnecting browser, or ?after=)
                batch = await anyio.to_thread.run_sync(backlog, position)
                for event in batch:
                    assert event.id is not None
                    position = event.id
                    yield send(event)
                    if last(event):
                        return
                if len(batch) < BATCH:
                    break
            for event in sorted(late, key=lambda e: e.id or 0):  # visible only lately: maybe
                if (event.id or 0) <= after and wanted(event) and not last(event):  # missed
                    yield send(event)
            deadline = time.monotonic() + settings.event_stream_seconds
            recheck = time.monotonic() + RECHECK_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                if follower.dropped and follower.queue.empty():
                    return  # too slow: the browser reconnects with Last-Event-ID
                if time.monotonic() >= recheck:
                    if not await anyio.to_thread.run_sync(allowed):
                        return
                    recheck = time.monotonic() + RECHECK_SECONDS
                try:
                    fresh = await asyncio.wait_for(
                        follower.queue.get(), timeout=min(left, recheck - time.monotonic())
                    )
                except TimeoutError:
                    continue
                for event, was_late in fresh:
                    assert event.id is not None
                    if (
                        event.id in sent
                        or not wanted(event)
                        or (event.id <= after and not was_late)
                    ):
                        continue
                    yield send(event)
                    if last(event):
                        return
        finally:
            feed.leave(follower)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})
