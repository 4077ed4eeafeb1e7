"""Every error is JSON `{"error": {"code", "message"}}` with a fitting status; never a trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as database
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import errors
from agent.api.schemas import ErrorOut
from agent.observability.logs import REQUEST_ID
from tools.tool_context import ToolError

log = logging.getLogger(__name__)

STATUS: dict[type[errors.SupportbotError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.ConversationClosed: 409,
    errors.Conflict: 409,
    errors.TurnInProgress: 409,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.ImportFailed: 422,
    errors.TooLarge: 413,
    errors.UnsupportedMedia: 415,
}


DESCRIPTIONS = {
    401: "No API key, an unknown or revoked one, or an invalid customer token",
    403: "This key's scope may not do this",
    404: "Not found, or not yours",
    409: "Conflicts with the current state (a claimed or resolved ticket, a conversation a "
    "person has, a turn in progress, the shop's order system unreachable: then with "
    "Retry-After)",
    413: "The request body, or a photo, is too large",
    415: "A photo that is not a JPEG, PNG, WebP or GIF image",
    422: "Invalid request: each invalid field is in `details`",
    429: "Rate-limited: retry after Retry-After seconds",
    503: "Not ready, or the database cannot be reached now: retry after Retry-After seconds",
}
_RETRY_AFTER = {"description": "Seconds to wait", "schema": {"type": "integer"}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    409: {"Retry-After": _RETRY_AFTER},
    429: {"Retry-After": {**_RETRY_AFTER, "required": True}},
    503: {"Retry-After": _RETRY_AFTER},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's error responses for its OpenAPI document, each `{"error": {"code",
    "message"}}`."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        declared[status] = {"model": ErrorOut, "description": DESCRIPTIONS[status]}
        if status in _HEADERS:
            declared[status]["headers"] = _HEADERS[status]
    return declared


AUTHENTICATED = (401, 422, 429, 503)  # any route behind an API key
STAFF = (401, 403, 422, 429, 503)  # admin keys only

# The database refused or lost the connection (a restart, a network cut, more connections
# than the server allows), or no pooled connection came free in time: the request changed
# nothing (its transaction is rolled back) and may simply be sent again.
UNREACHABLE = (database.OperationalError, database.InterfaceError, database.TimeoutError)
DATABASE_RETRY_SECONDS = 5


def error_response(
    status: int,
    code: str,
    message: str,
    details: list | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.SupportbotError)
    async def known(_: Request, exc: errors.SupportbotError) -> JSONResponse:
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 500)
        if status == 500:
            log.error("request failed: %s", exc)
        waits = isinstance(exc, errors.RateLimited | errors.TurnInProgress)
        headers = {"Retry-After": str(getattr(exc, "retry_after", 1))} if waits else None
        if isinstance(exc, errors.Unauthorized):
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(status, exc.code, str(exc), headers=headers)

    @app.exception_handler(ToolError)
    async def order_system(_: Request, exc: ToolError) -> JSONResponse:
        """The shop's order system could not answer (tools/order_system.py): the request
        changed nothing; retry shortly. Never a 5xx: our side is fine."""
        log.warning("request failed on the order system: %s", getattr(exc, "detail", exc))
        return error_response(409, "order_system_unavailable", str(exc).split(". Tell")[0] + ".",
                              headers={"Retry-After": "5"})  # fmt: skip

    @app.exception_handler(database.DBAPIError)
    @app.exception_handler(database.TimeoutError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        """The database unreachable: a 503 with Retry-After, logged once as a warning, never
        an "internal error" (nothing of ours is wrong); other database errors stay 500s."""
        if not isinstance(exc, UNREACHABLE):
            return await unexpected(request, exc)
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0])  # fmt: skip
        return error_response(
            503,
            "database_unavailable",
            "The service's database cannot be reached; retry shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_SECONDS)},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error_response(
            422, "invalid_request", f"{first['field']}: {first['message']}", details
        )

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8, ...)
            return error_response(422, "invalid_request", f"body: {exc.detail}")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # Its headers stay (a 405's `Allow`).
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Answered outside agent.observability.http's middleware: the request id added here.
        request_id = REQUEST_ID.get()
        headers = {"X-Request-ID": request_id} if request_id else None
        return error_response(
            500, "internal_error", "Something went wrong on our side.", headers=headers
        )


class BodyLimit:
    """Rejects request bodies over a size limit with 413: at once when Content-Length says
    so, otherwise as soon as the body read grows past it (a chunked upload)."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        received, over, started, replaced = 0, False, False, False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                raise _TooLarge
            return message

        async def checked(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the rest of the app's own answer
            if over and not started:
                # FastAPI catches any failure while it reads a body and answers 400 "There was
                # an error parsing the body" (a 422 here): over the limit, it is a 413.
                replaced = True
                await self._reject(scope, receive, send, limit)
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, checked)
        except _TooLarge:
            if started:  # too late for a 413
                raise
            if not replaced:
                await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413, "request_too_large", f"The request body is larger than {limit} bytes."
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
