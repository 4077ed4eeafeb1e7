"""Running a turn's steps: where its model calls are made, and where the rest runs.

A turn (agent.engine.loop) is a generator of steps. It yields events for the caller and, when it
needs the model, a `ModelCall`; the driver makes that call and sends the reply back in (or
throws the call's error in, so the turn handles an outage where it would have). The turn never
waits on the network itself, so one turn can be driven two ways:

- `drive`: everything in the calling thread, model calls blocking (the CLI, scripts, tests);
- `drive_async`: model calls on the running event loop, each stretch of database and tool work
  between them in a worker thread (the HTTP API). A turn waiting for Claude then holds no
  thread, and hundreds of turns in flight cost what their work costs, not hundreds of threads
  contending for the interpreter lock (bench/README.md, HTTP load).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import aclosing
from typing import Any

import anyio

from agent.engine.events import Event
from agent.models.base import ModelCall, ModelReply, ModelUnavailable, Piece

# What a turn yields, and what it is sent back (a model call's reply; None after an event).
Steps = Generator[Event | ModelCall, ModelReply | None, None]


def drive(steps: Steps) -> Generator[Event, None, None]:
    """Run `steps` here, making each model call with the model's blocking `respond`."""
    advance: Callable[[Any], Event | ModelCall] = steps.send
    value: Any = None
    try:
        while True:
            try:
                item = advance(value)
            except StopIteration:
                return
            advance, value = steps.send, None
            if isinstance(item, ModelCall):
                try:
                    value = yield from _drain(item.model.respond(item.request, stream=item.stream))
                except Exception as exc:  # the turn decides: fall back, compact, or give up
                    advance, value = steps.throw, exc
            else:
                yield item
    finally:
        steps.close()


async def drive_async(steps: Steps, *, streaming: bool) -> AsyncGenerator[Event, None]:
    """Run `steps` with model calls awaited on the event loop and the work between them in
    worker threads. When `streaming`, each event is passed on as soon as the turn yields it;
    otherwise a stretch of work runs in one thread up to the next model call.

    If the consumer goes away (a client disconnects mid-stream), the stretch in progress
    finishes, and the turn is closed: it stores nothing more, and what it stored is valid."""
    advance: Callable[[Any], Event | ModelCall] = steps.send
    value: Any = None
    try:
        while True:
            items, ended = await anyio.to_thread.run_sync(
                _stretch, steps, advance, value, streaming
            )
            advance, value = steps.send, None
            for item in items:
                if not isinstance(item, ModelCall):
                    yield item
                    continue
                try:
                    value = None
                    pieces = item.model.respond_async(item.request, stream=item.stream)
                    async with aclosing(pieces):  # the model's stream ends with this turn
                        async for piece in pieces:
                            if isinstance(piece, ModelReply):
                                value = piece
                            else:
                                yield piece
                    if value is None:
                        raise ModelUnavailable("the model ended without a reply")
                except Exception as exc:
                    advance, value = steps.throw, exc
            if ended:
                return
    finally:
        if inspect.getgeneratorstate(steps) == inspect.GEN_SUSPENDED:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(steps.close)


def _stretch(
    steps: Steps, advance: Callable[[Any], Event | ModelCall], value: Any, streaming: bool
) -> tuple[list[Event | ModelCall], bool]:
    """Advance `steps` (in a worker thread) up to and including the next model call, or the
    next event when streaming: (what it yielded, whether the turn ended)."""
    items: list[Event | ModelCall] = []
    while True:
        try:
            item = advance(value)
        except StopIteration:
            return items, True
        items.append(item)
        if streaming or isinstance(item, ModelCall):
            return items, False
        advance, value = steps.send, None


def _drain(items: Iterator[Piece | ModelReply]) -> Generator[Piece, None, ModelReply]:
    """Pass a model's streamed pieces on and return its reply."""
    reply: ModelReply | None = None
    for item in items:
        if isinstance(item, ModelReply):
            reply = item
        else:
            yield item
    if reply is None:
        raise ModelUnavailable("the model ended without a reply")
    return reply
