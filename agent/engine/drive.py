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

Either driver may be given a `TurnWatch` (agent.observability.turns: metrics, traces, log
fields): it is told what the turn yields and what each model call returns, and never changes
what the turn does.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from contextlib import AbstractContextManager, aclosing, nullcontext
from types import TracebackType
from typing import Any, Protocol

import anyio

from agent.engine.events import Event
from agent.models.base import ModelCall, ModelReply, ModelUnavailable, Piece

# What a turn yields, and what it is sent back (a model call's reply; None after an event).
Steps = Generator[Event | ModelCall, ModelReply | None, None]


class CallWatch(Protocol):
    """Watches one model call: entered before it is made, left when it ended (with its error,
    if it failed)."""

    def __enter__(self) -> CallWatch: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def inside(self) -> AbstractContextManager[object]:
        """Entered around each step of the call (each time the model's reply is read on)."""
        ...

    def replied(self, reply: ModelReply) -> None: ...


class TurnWatch(Protocol):
    """Watches a turn being driven: `begin` as it starts, each event it yields, each model call,
    and `end` with the error that ended it, if any. `inside()` is entered around every stretch
    of the turn's own work (in the worker thread's context too) and a call's `inside()` around
    each step of a model call: what they set (a trace context, log fields) holds there and
    never across a yield, as whoever reads the events may move to another task between them."""

    def begin(self) -> None: ...

    def inside(self) -> AbstractContextManager[object]: ...

    def event(self, event: Event) -> None: ...

    def call(self, call: ModelCall) -> CallWatch: ...

    def end(self, error: BaseException | None) -> None: ...


class _Unwatched:
    """The watch of a turn nobody watches."""

    def __enter__(self) -> _Unwatched:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> None:
        return None

    def inside(self) -> AbstractContextManager[object]:
        return nullcontext()

    def event(self, event: Event) -> None:
        return None

    def call(self, call: ModelCall) -> _Unwatched:
        return self

    def replied(self, reply: ModelReply) -> None:
        return None

    def end(self, error: BaseException | None) -> None:
        return None


UNWATCHED = _Unwatched()


def drive(steps: Steps, watch: TurnWatch | None = None) -> Generator[Event, None, None]:
    """Run `steps` here, making each model call with the model's blocking `respond`."""
    watching = watch or UNWATCHED
    advance: Callable[[Any], Event | ModelCall] = steps.send
    value: Any = None
    failure: BaseException | None = None
    watching.begin()
    try:
        while True:
            try:
                with watching.inside():
                    item = advance(value)
            except StopIteration:
                return
            advance, value = steps.send, None
            if isinstance(item, ModelCall):
                try:
                    with watching.call(item) as call:
                        pieces = item.model.respond(item.request, stream=item.stream)
                        value = yield from _drain(pieces, call)
                        call.replied(value)
                except Exception as exc:  # the turn decides: fall back, compact, or give up
                    advance, value = steps.throw, exc
            else:
                watching.event(item)
                yield item
    except BaseException as exc:
        failure = exc
        raise
    finally:
        with watching.inside():
            steps.close()
        watching.end(failure)


async def drive_async(
    steps: Steps, *, streaming: bool, watch: TurnWatch | None = None
) -> AsyncGenerator[Event, None]:
    """Run `steps` with model calls awaited on the event loop and the work between them in
    worker threads. When `streaming`, each event is passed on as soon as the turn yields it;
    otherwise a stretch of work runs in one thread up to the next model call.

    If the consumer goes away (a client disconnects mid-stream), the stretch in progress
    finishes, and the turn is closed: it stores nothing more, and what it stored is valid."""
    watching = watch or UNWATCHED
    advance: Callable[[Any], Event | ModelCall] = steps.send
    value: Any = None
    failure: BaseException | None = None
    watching.begin()
    try:
        while True:
            with watching.inside():  # the worker thread runs in a copy of this context
                items, ended = await anyio.to_thread.run_sync(
                    _stretch, steps, advance, value, streaming
                )
            advance, value = steps.send, None
            for item in items:
                if not isinstance(item, ModelCall):
                    watching.event(item)
                    yield item
                    continue
                try:
                    with watching.call(item) as call:
                        value = None
                        pieces = item.model.respond_async(item.request, stream=item.stream)
                        async with aclosing(pieces):  # the model's stream ends with this turn
                            while True:
                                with call.inside():
                                    piece = await anext(pieces, None)
                                if piece is None:
                                    break
                                if isinstance(piece, ModelReply):
                                    value = piece
                                else:
                                    yield piece
                        if value is None:
                            raise ModelUnavailable("the model ended without a reply")
                        call.replied(value)
                except Exception as exc:
                    advance, value = steps.throw, exc
            if ended:
                return
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if inspect.getgeneratorstate(steps) == inspect.GEN_SUSPENDED:
            with anyio.CancelScope(shield=True), watching.inside():
                await anyio.to_thread.run_sync(steps.close)
        watching.end(failure)


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


def _drain(
    items: Iterator[Piece | ModelReply], call: CallWatch
) -> Generator[Piece, None, ModelReply]:
    """Pass a model's streamed pieces on and return its reply."""
    reply: ModelReply | None = None
    while True:
        with call.inside():
            item = next(items, None)
        if item is None:
            break
        if isinstance(item, ModelReply):
            reply = item
        else:
            yield item
    if reply is None:
        raise ModelUnavailable("the model ended without a reply")
    return reply
