"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from agent.api import docs, errors, message_body
from agent.api.deps import AppState, StateDep
from agent.api.pages import WEB, page
from agent.api.routes import (
    actions,
    closing,
    conversation_events,
    conversations,
    email_links,
    health,
    identity,
    kb,
    products,
    reports,
    staff,
    tickets,
    usage,
)
from agent.api.routes import metrics as metrics_route
from agent.config import Settings
from agent.features.lost_sends import Sweeper, grace_seconds
from agent.observability import logs
from agent.observability.http import RequestTelemetry
from agent.runtime import Runtime, build_runtime, needs_warm_up, warm_up
from agent.store.db import transaction
from agent.store.keys import create_key, find_key
from agent.store.tables import KeyScope

log = logging.getLogger(__name__)


def web_widget_key(settings: Settings, runtime: Runtime) -> str:
    """The widget key the served chat page uses: configured, or created once and kept in the
    data directory (mode 0600)."""
    if settings.web_widget_key:
        return settings.web_widget_key.get_secret_value()
    path = settings.data_dir / "web-widget.key"
    with transaction(runtime.engine) as session:
        if path.exists():
            secret = path.read_text().strip()
            if find_key(session=session, secret=secret) is not None:
                return secret
        _, secret = create_key(session=session, name="web-chat", scope=KeyScope.WIDGET)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def _warm(runtime: Runtime, state: AppState, settle: bool) -> None:
    try:
        warm_up(runtime)
    finally:
        if settle:
            settle_heap()
        state.warmed.set()


def settle_heap() -> None:
    """Collect what start-up left, then freeze the rest: the ~385,000 objects of the loaded
    product (modules, classes, schemas, the encoder) leave the garbage collector's view. A
    full collection of them took 235 ms here, with the interpreter lock held, whenever enough
    new objects had piled up, stalling every request in flight; now it walks only what
    requests made (bench/README.md, "Many conversations at once"). Then the C heap's free
    pages go back to the system."""
    gc.collect()
    gc.freeze()
    _trim_malloc()


def _trim_malloc() -> None:
    """Give the C heap's free pages back to the system (glibc): loading the encoder's model
    leaves ~20 MiB freed but resident."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, *, settle: bool = False
) -> FastAPI:
    """The app; with `settle` (a server process of its own: `supportbot serve`), the heap is
    frozen once start-up is done (see settle_heap)."""
    settings = settings or Settings()
    runtime = runtime or build_runtime(settings)
    state = AppState(settings=settings, runtime=runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The database and tool work of turns runs in worker threads (agent.engine.drive); model
        # calls are awaited on the event loop and hold none.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        # A worker thread that comes back from the database (which releases the interpreter
        # lock) waits for the lock, up to the switch interval, often while holding SQLite's
        # write lock that every other writer queues on: a shorter interval keeps that queue
        # moving (measured in bench/README.md).
        sys.setswitchinterval(settings.api_switch_interval_ms / 1000)
        state.web_widget_key = web_widget_key(settings, runtime)
        # Ready (GET /readyz) once the encoder and indexes are loaded; alive at once.
        if needs_warm_up(runtime):
            threading.Thread(target=_warm, args=(runtime, state, settle), name="warm-up",
                             daemon=True).start()  # fmt: skip
        else:
            if settle:
                settle_heap()
            state.warmed.set()
        # Changes whose sender died mid-call go to staff (agent.features.lost_sends).
        spec = runtime.connector.spec if runtime.connector is not None else None
        grace = grace_seconds(spec, settings.turn_lease_seconds)
        sweeper = Sweeper(runtime.engine, grace=grace)
        sweeper.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(sweeper.stop)  # a sweep in progress ends first
            await runtime.agent.model.aclose()  # its HTTP connections on this event loop

    logs.configure(settings)
    app = FastAPI(
        title="supportbot",
        version="1",
        summary="A customer-support agent on Claude's Messages API",
        lifespan=lifespan,
        docs_url=None,  # served by agent.api.docs, from local assets
        redoc_url=None,
    )
    docs.install(app)
    app.state.supportbot = state
    errors.install(app)

    def limit_for(path: str) -> int:
        if path.startswith("/v1/kb/documents"):
            return settings.max_upload_bytes
        if path.startswith("/v1/conversations/") and path.endswith("/messages"):
            return message_body.body_limit(settings)  # with room for photos
        return settings.max_request_bytes

    app.add_middleware(errors.BodyLimit, limit_for=limit_for)
    app.add_middleware(RequestTelemetry)  # outermost: request ids, server spans, 429s
    for module in (
        health,
        conversations,
        conversation_events,
        closing,
        actions,
        products,
        identity,
        tickets,
        staff,
        kb,
        usage,
        reports,
    ):
        app.include_router(module.router)
    app.include_router(metrics_route.router)
    app.include_router(email_links.router)  # one-time confirmation links of email changes
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_page(state: StateDep) -> str:
        return page("chat.html", settings, WIDGET_KEY=state.web_widget_key or "",
                    MAX_MESSAGE_CHARS=str(settings.max_message_chars))  # fmt: skip

    @app.get("/staff", response_class=HTMLResponse, include_in_schema=False)
    def staff_page() -> str:
        return page("staff.html", settings)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """The pages link /static/favicon.svg; a browser (or a page without the link, such as
        a JSON response opened in a tab) asks for /favicon.ico: the same icon."""
        return FileResponse(WEB / "static" / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip

    return app
