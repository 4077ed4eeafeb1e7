"""A synchronous, robust link to one MCP server (a process over stdio, or Streamable HTTP).

supportbot's tools are synchronous code (they run inside a database transaction in a worker
thread), while the MCP SDK (`mcp` 2.x) is asynchronous. An `McpLink` owns one MCP client session
in a background thread with its own asyncio event loop and offers a blocking API: `tools()`,
`call()` and `close()`. Several threads may call at once; the session multiplexes their requests.

What a failed call means matters more than the failure itself, because a tool may have effects
(a refund): `LinkDown` says the call was not sent (safe to retry), `OutcomeUnknown` says it was
sent and no answer came (it may or may not have taken effect), and an answer, even an error
answer, comes back as a `CallAnswer`.

How "not sent" is known: each call runs with an `_Attempt` in a context variable. The link
wraps the transport's write stream, which the SDK's dispatcher writes the request into from the
calling task, so the attempt learns whether the request was handed to the transport at all. Over
HTTP the SDK posts each request from a task that inherits the sender's context, so an HTTP
transport wrapped around the SDK's client learns whether a POST got past connecting (a refused
or timed-out connection sends nothing) and the response hook records the HTTP status. A call
proven not sent is sent again once on a fresh session; anything else that fails after the
hand-off is `OutcomeUnknown`.

Sessions: the link connects on first use, and again after a session ends. A session ends when
its transport ends (the server process exits, an HTTP exchange fails) or when a call's outcome
is unknown (a timeout, a dropped answer): the session is retired, new calls go to a new
session, and the retired one closes once its calls in flight have finished, so one slow call
does not cost concurrent calls their answers.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import http
import json
import logging
import math
import os
import threading
import time
import urllib.request
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from types import TracebackType
from typing import IO, Any, Self, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import Client, StdioServerParameters, types
from mcp.client.session import IncomingMessage
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import TypeAdapter, ValidationError

log = logging.getLogger(__name__)
_stderr_log = logging.getLogger(__name__ + ".stderr")  # what stdio servers write to stderr

_T = TypeVar("_T")

_CONNECT_GRACE = 0.5  # how long past connect_timeout a caller waits for a failed start to unwind
_CALL_GRACE = 1.0  # past the SDK's own request timeout (which sends the courtesy cancel)
_CLOSE_TIMEOUT = 8.0  # the SDK stops a stdio server within ~6.5 s (stdin, SIGTERM, SIGKILL)
_TOOL_PAGES = 100  # a paginator that never ends cannot hang tools()
_HTTP_READ_TIMEOUT = 300.0  # the SDK's default; calls are bounded by their own timeouts
try:
    _CLIENT_INFO = types.Implementation(name="supportbot", version=metadata.version("supportbot"))
except metadata.PackageNotFoundError:  # a source tree that is not installed
    _CLIENT_INFO = types.Implementation(name="supportbot", version="0")
_CALL_RESULT: TypeAdapter[types.CallToolResult | types.InputRequiredResult] = TypeAdapter(
    types.CallToolResult | types.InputRequiredResult
)
# HTTP statuses with which a server (or a proxy) refuses a request without running it.
_REFUSED = frozenset({401, 403, 407, 408, 429})


@dataclass(frozen=True)
class McpServerSpec:
    """Where the MCP server is: exactly one of `command` (stdio) and `url` (Streamable HTTP)."""

    command: list[str] | None = None
    """stdio: the argv of the server process."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the process, merged over the SDK's default safe environment."""
    cwd: str | None = None
    url: str | None = None
    """Streamable HTTP endpoint, e.g. http://127.0.0.1:8931/mcp"""
    headers: dict[str, str] = field(default_factory=dict)
    """HTTP headers of every request, e.g. {"Authorization": "Bearer ..."}; never logged."""
    name: str | None = None
    """How logs and errors name the server; command[0] or the URL (without secrets) if unset."""
    mode: str = "auto"
    """The SDK's protocol negotiation: "auto" probes server/discover (2026-07-28) and falls back
    to the initialize handshake; "legacy" only does the handshake (for servers that mishandle
    the probe)."""

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError("McpServerSpec needs exactly one of command and url")
        if self.command is not None and not self.command:
            raise ValueError("McpServerSpec.command is empty")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("McpServerSpec.url must be an http:// or https:// URL")

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.command:
            return self.command[0]
        parts = urlsplit(self.url or "")
        # Neither userinfo nor the query string: either may carry a credential.
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


@dataclass(frozen=True)
class ToolInfo:
    name: str
    input_schema: dict[str, Any]
    read_only: bool
    """The tool's annotations.readOnlyHint is true (False when absent: a hint, from the server)."""
    description: str


@dataclass(frozen=True)
class CallAnswer:
    is_error: bool
    text: str
    """The answer's text content blocks joined with "\\n"."""
    structured: Any | None
    """structuredContent, when the server sent it."""


class LinkDown(Exception):
    """Could not reach the server; the call was NOT sent (safe to retry)."""


class OutcomeUnknown(Exception):
    """The call was sent but no answer came (timeout, the server died or the connection dropped
    mid-call): whether it took effect is unknown."""


class AnswerTooLarge(Exception):
    """The server answered, but the answer's text (or structured content) is larger than
    max_answer_bytes. The call did take effect."""


# -- what one request did on the wire -------------------------------------------------------


@dataclass
class _Attempt:
    """What became of one request (see the module docstring)."""

    http: bool
    handed: bool = False  # the request was given to the transport
    posts: int = 0  # HTTP requests for it that reached the HTTP transport
    posts_unsent: int = 0  # ... of which failed before sending anything (connect, pool)
    http_status: int | None = None  # the last HTTP status received

    @property
    def not_sent(self) -> bool:
        """Proven not sent. Without proof (an HTTP request that never reached our transport,
        e.g. posted from another context) a request counts as possibly sent."""
        if not self.handed:
            return True
        return self.http and self.posts > 0 and self.posts == self.posts_unsent


_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "mcp_link_attempt", default=None
)


class _Stream:
    """A wrapped end of the transport's streams: closing it closes the one it wraps."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool | None:
        await self.aclose()
        return None


class _WatchedRead(_Stream):
    """The transport's read end; reports the end of the connection (EOF, close, cancel)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        super().__init__(inner)
        self._on_end = on_end

    @property
    def last_context(self) -> contextvars.Context | None:  # the SDK's per-message context
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except BaseException:
            self._on_end()
            raise
        return item

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class _WatchedWrite(_Stream):
    """The transport's write end; records in the current `_Attempt` whether its request was
    handed to the transport (the SDK writes from the calling task)."""

    async def send(self, item: SessionMessage, /) -> None:
        attempt = _ATTEMPT.get()
        if attempt is None or attempt.handed or not isinstance(item.message, types.JSONRPCRequest):
            await self._inner.send(item)
            return
        attempt.handed = True  # before the await: a cancelled send may still have delivered
        try:
            await self._inner.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            attempt.handed = False  # refused: the transport never got it
            raise


class _TrackingTransport(httpx2.AsyncBaseTransport):
    """Counts, in the current `_Attempt`, the HTTP requests and those that sent nothing."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.posts += 1
        try:
            return await self._inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout):
            if attempt is not None:
                attempt.posts_unsent += 1
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _record_status(response: httpx2.Response) -> None:
    attempt = _ATTEMPT.get()
    if attempt is not None:
        attempt.http_status = response.status_code


def _http_transport(url: str) -> httpx2.AsyncHTTPTransport:
    """The transport httpx would pick for `url`, proxy from the environment included (a custom
    transport turns httpx's own environment proxies off)."""
    parts = urlsplit(url)
    proxy = None
    if not urllib.request.proxy_bypass(parts.hostname or ""):
        proxies = urllib.request.getproxies()
        proxy = proxies.get(parts.scheme) or proxies.get("all")
    return httpx2.AsyncHTTPTransport(proxy=proxy)


# -- one session ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Session:
    """One connection to the server: a process, or an HTTP session. Lives on the link's loop."""

    serial: int
    ready: anyio.Event = field(default_factory=anyio.Event)  # connected, or failed
    stop: anyio.Event = field(default_factory=anyio.Event)  # asks its task to disconnect
    done: anyio.Event = field(default_factory=anyio.Event)  # disconnected
    client: Client | None = None
    error: str | None = None  # why it could not connect
    ended: bool = False  # its transport is gone
    retired: bool = False  # takes no new calls; closes when `inflight` is 0
    why_retired: str = ""
    ended_by_itself: bool = False  # the transport ended without our asking
    lost: str = ""  # the error it ended with
    inflight: int = 0
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    stderr_pump: threading.Thread | None = None
    errlog: IO[str] | None = None  # our copy of the write end of the server's stderr pipe
    scope: anyio.CancelScope | None = None  # around the whole session, in its task

    @property
    def usable(self) -> bool:
        return self.client is not None and not (self.ended or self.retired or self.stop.is_set())

    def close_errlog(self) -> None:
        if self.errlog is not None:
            self.errlog.close()
            self.errlog = None


def _pump_stderr(fd: int, name: str, tail: deque[str]) -> None:
    """Logs what a stdio server writes to stderr, line by line, until the pipe closes."""
    with open(fd, "rb") as pipe:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.strip():
                tail.append(line.strip())
                _stderr_log.info("%s: %s", name, line)


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (anyio task groups wrap them in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _os_reason(exc: BaseException) -> str:
    """The OS-level reason under an httpx error, e.g. "Connection refused"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return os.strerror(seen.errno) if seen.errno else str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


# -- the link -------------------------------------------------------------------------------


class McpLink:
    """A blocking, thread-safe link to one MCP server; see the module docstring."""

    def __init__(
        self,
        spec: McpServerSpec,
        *,
        connect_timeout: float = 10.0,
        call_timeout: float = 15.0,
        max_answer_bytes: int = 1_000_000,
    ) -> None:
        self.spec = spec
        self.name = spec.display_name
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._max_answer_bytes = max_answer_bytes
        self._lock = threading.Lock()  # guards the loop's start and `_closed`
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # State below lives on the loop's thread only.
        self._connect_lock: anyio.Lock | None = None  # one connect at a time
        self._session: _Session | None = None  # the session new calls use
        self._sessions: set[_Session] = set()  # every session not yet disconnected
        self._tasks: set[asyncio.Task[None]] = set()  # sessions' tasks (the loop's refs are weak)
        self._serial = 0
        self._attempts_done = 0
        self._last_failure = ""
        self._tools: list[ToolInfo] | None = None

    # -- the blocking API --

    def tools(self) -> list[ToolInfo]:
        """The server's tools (every page), listed once and then cached; connects if needed.

        Raises LinkDown when the server cannot be reached or the listing fails.
        """
        bound = self._connect_timeout + _CONNECT_GRACE + self._call_timeout + _CALL_GRACE + 2.0
        return self._run(self._atools, bound, lambda: LinkDown(f"{self.name}: tools/list hung"))

    def call(
        self, name: str, arguments: dict[str, Any], *, timeout: float | None = None
    ) -> CallAnswer:
        """Calls a tool; connects (again) first if needed.

        Returns the answer, an error answer included (a tool error, or a JSON-RPC error such as
        an unknown tool). Raises LinkDown when the call could not be sent, OutcomeUnknown when it
        was sent and no answer came within `timeout` (default: call_timeout), AnswerTooLarge
        when the answer is larger than max_answer_bytes.
        """
        limit = self._call_timeout if timeout is None else timeout
        args = dict(arguments or {})
        # Two rounds at most: a call proven not sent is sent once more on a new session.
        bound = 2 * (self._connect_timeout + _CONNECT_GRACE + limit + _CALL_GRACE) + 2.0
        return self._run(
            lambda: self._acall(name, args, limit),
            bound,
            lambda: OutcomeUnknown(f"{self.name}: {name} did not finish within {bound:g}s"),
        )

    def close(self) -> None:
        """Disconnects (a stdio server process is stopped) and stops the link's thread.
        Idempotent, bounded; calls made later raise LinkDown."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        _open_links.discard(self)
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("McpLink.close() called from the link's own event loop")
        future = asyncio.run_coroutine_threadsafe(self._ashutdown(), loop)
        try:
            future.result(timeout=_CLOSE_TIMEOUT + 1.0)
        except Exception:
            future.cancel()
            log.warning("MCP link %s: did not close within %gs", self.name, _CLOSE_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2.0)

    def __enter__(self) -> McpLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"McpLink({self.name!r})"

    # -- the loop's thread --

    def _run(
        self,
        make: Callable[[], Awaitable[_T]],
        bound: float,
        overrun: Callable[[], Exception],
    ) -> _T:
        """Runs `make()` on the link's loop and waits for it, at most `bound` seconds."""
        with self._lock:
            if self._closed:
                raise LinkDown(f"{self.name}: the link is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop_main,
                    args=(self._loop,),
                    name=f"mcp-link {self.name}",
                    daemon=True,
                )
                self._thread.start()
                _open_links.add(self)
            if threading.current_thread() is self._thread:
                raise RuntimeError("McpLink's blocking API called from the link's own event loop")

            async def main() -> _T:
                return await make()

            # Under the lock: a close() that follows finds it queued before its own shutdown.
            future = asyncio.run_coroutine_threadsafe(main(), self._loop)
        try:
            return future.result(timeout=bound)
        except concurrent.futures.CancelledError:
            raise LinkDown(f"{self.name}: the link was closed") from None
        except TimeoutError:
            if future.done():  # the coroutine's own TimeoutError (not expected, all are mapped)
                raise
            future.cancel()
            raise overrun() from None

    def _loop_main(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=2.0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _ashutdown(self) -> None:
        sessions = list(self._sessions)
        for session in sessions:
            self._retire(session, "closing", force=True)
            if not session.ready.is_set() and session.scope is not None:
                session.scope.cancel()  # still starting: the SDK unwinds a cancelled start
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            for session in sessions:
                await session.done.wait()

    # -- sessions --

    async def _connected(self) -> _Session:
        """The session to use, connecting first if there is none; LinkDown if that fails."""
        session = self._session
        if session is not None and session.usable:
            return session
        if self._connect_lock is None:
            self._connect_lock = anyio.Lock()
        done_before = self._attempts_done
        async with self._connect_lock:
            if self._closed:
                raise LinkDown(f"{self.name}: the link is closed")
            session = self._session
            if session is not None and session.usable:
                return session
            if self._attempts_done != done_before and self._last_failure:
                # An attempt made while this call waited failed: share its verdict.
                raise LinkDown(self._last_failure)
            try:
                session = await self._connect()
            finally:
                self._attempts_done += 1
            self._session = session
            self._last_failure = ""
            return session

    async def _connect(self) -> _Session:
        self._serial += 1
        session = _Session(self._serial)
        self._sessions.add(session)
        self._tasks.add(task := asyncio.get_running_loop().create_task(self._run_session(session)))
        task.add_done_callback(self._tasks.discard)
        started = time.monotonic()
        with anyio.move_on_after(self._connect_timeout + _CONNECT_GRACE):
            await session.ready.wait()
        if session.ready.is_set() and session.error is None:
            assert session.client is not None
            return session
        if session.ready.is_set():
            reason = f"{self.name}: {session.error}"
        else:  # still starting or unwinding a failed start: the task finishes it in the background
            self._retire(session, "connect timed out", force=True)
            reason = f"{self.name}: initialize timed out after {self._connect_timeout:g}s"
        self._last_failure = reason
        log.warning(
            "MCP link %s: cannot connect (%.1fs): %s", self.name, time.monotonic() - started, reason
        )
        raise LinkDown(reason)

    async def _run_session(self, session: _Session) -> None:
        """The task owning one session: connects, waits until asked to stop, disconnects (anyio
        scopes must be entered and left in one task)."""
        connect = _Attempt(http=self.spec.url is not None)
        _ATTEMPT.set(connect)  # this task's own context: records the handshake's HTTP status
        connected = False
        # One scope around the whole session (a fail_after around the start alone would be left
        # while the SDK's scopes entered in it are still open): its deadline bounds the start.
        scope = session.scope = anyio.CancelScope(
            deadline=anyio.current_time() + self._connect_timeout
        )
        try:
            with scope:
                async with AsyncExitStack() as stack:
                    transport = await self._transport(session, stack)
                    client = Client(
                        transport,
                        mode=self.spec.mode,
                        cache=None,  # tools() keeps its own cache
                        client_info=_CLIENT_INFO,
                        message_handler=self._on_message,
                    )
                    try:
                        await stack.enter_async_context(client)
                    finally:
                        session.close_errlog()  # the process has its copy (or never started)
                    scope.deadline = math.inf
                    if session.stop.is_set():  # given up on while starting
                        return
                    info = client.server_info
                    log.info(
                        "MCP link %s: connected (session %d, protocol %s, server %s %s)",
                        self.name,
                        session.serial,
                        client.protocol_version,
                        info.name if info else "?",
                        info.version if info else "",
                    )
                    session.client = client
                    connected = True
                    session.ready.set()
                    await session.stop.wait()
            if not connected:  # the scope was cancelled: its deadline passed, or close()
                session.error = (
                    "the link was closed"
                    if self._closed
                    else f"initialize timed out after {self._connect_timeout:g}s"
                )
        except Exception as exc:  # ExceptionGroups of the SDK's task groups included
            if not connected:
                session.error = await self._connect_failure(exc, connect, session)
            elif session.ended_by_itself or not session.stop.is_set():
                session.lost = self._describe(exc, session)
        finally:
            session.close_errlog()
            session.ended = True
            if self._session is session:
                self._session = None
            self._sessions.discard(session)
            session.ready.set()
            session.done.set()
        if connected and (session.lost or session.ended_by_itself) and not self._closed:
            log.warning(
                "MCP link %s: session %d lost: %s%s",
                self.name,
                session.serial,
                session.lost or "the server closed the connection",
                self._stderr_hint(session),
            )
        elif connected:
            why = session.why_retired or "closed"
            log.info("MCP link %s: disconnected session %d (%s)", self.name, session.serial, why)

    async def _transport(self, session: _Session, stack: AsyncExitStack) -> Any:
        """The session's transport: the SDK's, with its streams watched (module docstring)."""
        spec = self.spec
        inner: Any
        if spec.command is not None:
            params = StdioServerParameters(
                command=spec.command[0],
                args=list(spec.command[1:]),
                env=dict(spec.env or {}) or None,
                cwd=spec.cwd,
            )
            read_fd, write_fd = os.pipe()
            session.errlog = os.fdopen(write_fd, "w", encoding="utf-8", errors="replace")
            session.stderr_pump = threading.Thread(
                target=_pump_stderr,
                args=(read_fd, self.name, session.stderr_tail),
                name=f"mcp-link {self.name} stderr",
                daemon=True,
            )
            session.stderr_pump.start()
            inner = stdio_client(params, errlog=session.errlog)
        else:
            assert spec.url is not None
            http_client = httpx2.AsyncClient(
                headers=dict(spec.headers or {}),
                timeout=httpx2.Timeout(self._connect_timeout, read=_HTTP_READ_TIMEOUT),
                transport=_TrackingTransport(_http_transport(spec.url)),
                event_hooks={"response": [_record_status]},
            )
            await stack.enter_async_context(http_client)
            # The SDK's default limit of one SSE event (1 MiB) would turn a large answer into a
            # dropped one; let it through so that max_answer_bytes decides.
            inner = streamable_http_client(
                spec.url,
                http_client=http_client,
                max_sse_event_size=max(4 * self._max_answer_bytes + 65_536, 1 << 20),
            )

        def ended() -> None:
            if not session.ended and not session.stop.is_set():  # not on our request
                session.ended_by_itself = True
            session.ended = True
            if self._session is session:
                self._session = None
            session.stop.set()

        @asynccontextmanager
        async def watched() -> AsyncIterator[tuple[_WatchedRead, _WatchedWrite]]:
            async with inner as (read_stream, write_stream):
                yield _WatchedRead(read_stream, ended), _WatchedWrite(write_stream)

        return watched()

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._tools = None
        elif isinstance(message, Exception):
            log.debug("MCP link %s: transport reported %r", self.name, message)

    def _retire(self, session: _Session, why: str, *, force: bool = False) -> None:
        """No new calls on `session`; it closes when its calls in flight are done (at once
        with `force`)."""
        if not session.retired:
            session.retired = True
            session.why_retired = why
        if self._session is session:
            self._session = None
        if force or session.inflight == 0:
            session.stop.set()

    def _stderr_hint(self, session: _Session) -> str:
        if session.stderr_tail:
            return f"; its stderr ended with: {_one_line(session.stderr_tail[-1], 200)}"
        return ""

    def _describe(self, exc: BaseException, session: _Session) -> str:
        leaf = _leaf(exc)
        if isinstance(leaf, httpx2.HTTPError):
            return f"{type(leaf).__name__}: {_one_line(str(leaf) or _os_reason(leaf))}"
        return _one_line(f"{type(leaf).__name__}: {leaf}") + self._stderr_hint(session)

    async def _connect_failure(
        self, exc: BaseException, connect: _Attempt, session: _Session
    ) -> str:
        """A one-line reason why a session could not start."""
        if session.stderr_pump is not None:  # let the pump catch the server's last words
            with anyio.move_on_after(0.5):
                while session.stderr_pump.is_alive():
                    await anyio.sleep(0.02)
        leaf = _leaf(exc)
        status = connect.http_status
        command = self.spec.command[0] if self.spec.command else ""
        if isinstance(leaf, TimeoutError):
            return f"initialize timed out after {self._connect_timeout:g}s"
        if status is not None and status >= 400:
            return _status_text(status)
        if isinstance(leaf, FileNotFoundError):
            return f"command not found: {command}"
        if isinstance(leaf, PermissionError):
            return f"permission denied: {command}"
        if isinstance(leaf, httpx2.ConnectTimeout):
            return f"connecting timed out after {self._connect_timeout:g}s"
        if isinstance(leaf, httpx2.ConnectError):
            return f"cannot connect: {_os_reason(leaf)}"
        if isinstance(leaf, httpx2.HTTPError):
            return f"{type(leaf).__name__}: {_one_line(str(leaf) or _os_reason(leaf))}"
        if isinstance(leaf, OSError) and not isinstance(leaf, httpx2.HTTPError):
            return f"cannot start {command}: {leaf.strerror or leaf}"
        if isinstance(leaf, MCPError) and leaf.code == types.CONNECTION_CLOSED:
            return "the server closed the connection during initialize" + self._stderr_hint(session)
        if isinstance(leaf, MCPError):
            return f"initialize failed: {_one_line(leaf.message)}"
        return f"initialize failed: {self._describe(leaf, session)}"

    # -- tools --

    async def _atools(self) -> list[ToolInfo]:
        if self._tools is not None:
            return self._tools
        session = await self._connected()
        client = session.client
        assert client is not None
        session.inflight += 1
        try:
            with anyio.fail_after(self._call_timeout):
                tools = await self._list_tools(client)
        except MCPError as exc:
            if exc.code == types.METHOD_NOT_FOUND:
                tools = []  # a server without tools
            else:
                if exc.code in (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT):
                    self._retire(session, f"tools/list failed: {exc.message}")
                raise LinkDown(f"{self.name}: tools/list failed: {_one_line(exc.message)}") from exc
        except TimeoutError as exc:
            self._retire(session, "tools/list timed out")
            raise LinkDown(
                f"{self.name}: tools/list timed out after {self._call_timeout:g}s"
            ) from exc
        except Exception as exc:
            self._retire(session, "tools/list failed")
            raise LinkDown(
                f"{self.name}: tools/list failed: {self._describe(exc, session)}"
            ) from exc
        finally:
            session.inflight -= 1
            if session.retired and session.inflight == 0:
                session.stop.set()
        self._tools = tools
        return tools

    async def _list_tools(self, client: Client) -> list[ToolInfo]:
        found: list[ToolInfo] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                annotations = tool.annotations
                found.append(
                    ToolInfo(
                        name=tool.name,
                        input_schema=dict(tool.input_schema),
                        read_only=bool(annotations and annotations.read_only_hint is True),
                        description=tool.description or "",
                    )
                )
            cursor = page.next_cursor
            if cursor is None or cursor in seen:
                break
            seen.add(cursor)
        return found

    # -- calls --

    async def _acall(self, name: str, arguments: dict[str, Any], limit: float) -> CallAnswer:
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name=name, arguments=arguments)
        )
        resent = relisted = False
        while True:
            session = await self._connected()  # LinkDown: nothing sent
            client = session.client
            assert client is not None
            attempt = _Attempt(http=self.spec.url is not None)
            result: types.CallToolResult | types.InputRequiredResult | None = None
            session.inflight += 1
            token = _ATTEMPT.set(attempt)
            try:
                with anyio.fail_after(limit + _CALL_GRACE):
                    result = await client.session.send_request(
                        request, _CALL_RESULT, request_read_timeout_seconds=limit
                    )
            except MCPError as exc:
                verdict, text = self._judge(exc, attempt, limit)
            except TimeoutError:
                verdict, text = "unknown", f"no answer within {limit:g}s"
            except ValidationError as exc:
                verdict, text = "unknown", f"malformed answer: {_one_line(str(exc), 200)}"
            except asyncio.CancelledError:  # the link is closing under the call
                if attempt.not_sent:
                    raise LinkDown(f"{self.name}: the link was closed") from None
                raise OutcomeUnknown(f"{self.name}: {name}: the link was closed") from None
            except Exception as exc:
                verdict = "resend" if attempt.not_sent else "unknown"
                text = self._describe(exc, session)
            finally:
                _ATTEMPT.reset(token)
                session.inflight -= 1
                if session.retired and session.inflight == 0:
                    session.stop.set()
            if result is not None:
                return self._answer(name, result)

            if verdict == "answer" or (verdict == "mismatch" and relisted):
                return CallAnswer(is_error=True, text=text, structured=None)
            if verdict == "mismatch":
                # 2026-07-28: the server rejected the call unrun, wanting the tool listed first
                # (the client mirrors arguments the listing marks into headers).
                relisted = True
                self._tools = None
                try:
                    with anyio.fail_after(self._call_timeout):
                        await self._list_tools(client)
                except Exception as exc:
                    raise LinkDown(
                        f"{self.name}: {name} refused ({text}) and tools/list failed: "
                        f"{self._describe(exc, session)}"
                    ) from exc
                continue
            if verdict == "too_large":
                raise AnswerTooLarge(f"{self.name}: {name}: {text}")
            if verdict == "down":
                raise LinkDown(f"{self.name}: {name} refused: {text}")
            if verdict == "resend":
                self._retire(session, f"{name} could not be sent: {text}", force=True)
                if resent:
                    raise LinkDown(f"{self.name}: {name} could not be sent: {text}")
                log.info(
                    "MCP link %s: %s did not reach the server (%s); sending it again",
                    self.name,
                    name,
                    text,
                )
                resent = True
                continue
            self._retire(session, f"{name}: outcome unknown ({text})")
            log.warning("MCP link %s: %s: outcome unknown: %s", self.name, name, text)
            raise OutcomeUnknown(f"{self.name}: {name}: {text}")

    def _judge(self, exc: MCPError, attempt: _Attempt, limit: float) -> tuple[str, str]:
        """What an MCPError from a call means: ("answer" | "mismatch" | "too_large" | "down" |
        "resend" | "unknown", text)."""
        message = _one_line(exc.message or f"error {exc.code}")
        status = attempt.http_status if attempt.http else None
        if exc.code == types.HEADER_MISMATCH:
            return "mismatch", message
        if status in _REFUSED:
            return "down", _status_text(status)
        if status == 404 and exc.code == types.INVALID_REQUEST:
            # The SDK's "Session terminated": the server no longer knows the HTTP session
            # (restarted, or expired it) and ran nothing.
            return "resend", message
        if status is not None and status >= 500:
            return "unknown", f"{_status_text(status)}: {message}"
        if exc.code == types.CONNECTION_CLOSED:
            if "byte limit" in message:  # an SSE event larger than the transport takes
                return "too_large", message
            if not attempt.not_sent:
                return "unknown", f"connection lost ({message})"
            return "resend", "cannot connect" if attempt.posts_unsent else "the session had ended"
        if exc.code == types.REQUEST_TIMEOUT:
            return "unknown", f"no answer within {limit:g}s"
        if exc.code == types.PARSE_ERROR and message.startswith("Failed to parse"):
            return "unknown", message  # the transport could not read the answer
        return "answer", message  # the server answered with a JSON-RPC error

    def _answer(
        self, name: str, result: types.CallToolResult | types.InputRequiredResult
    ) -> CallAnswer:
        if isinstance(result, types.InputRequiredResult):
            return CallAnswer(
                is_error=True,
                text="the server asked for input from the user (elicitation or sampling), "
                "which this link does not offer",
                structured=None,
            )
        text = "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))
        size = len(text.encode())
        if size <= self._max_answer_bytes and result.structured_content is not None:
            size = max(size, len(json.dumps(result.structured_content, default=str).encode()))
        if size > self._max_answer_bytes:
            raise AnswerTooLarge(
                f"{self.name}: {name}: the answer has {size} bytes, "
                f"more than max_answer_bytes ({self._max_answer_bytes})"
            )
        return CallAnswer(
            is_error=bool(result.is_error), text=text, structured=result.structured_content
        )


# -- no server process outlives us ----------------------------------------------------------

_open_links: weakref.WeakSet[McpLink] = weakref.WeakSet()


def _close_open_links() -> None:
    """At exit: closes every open link, in parallel, so no server process is left behind."""
    threads = [
        threading.Thread(target=link.close, name=f"close {link.name}", daemon=True)
        for link in list(_open_links)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + _CLOSE_TIMEOUT + 3.0
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


atexit.register(_close_open_links)
