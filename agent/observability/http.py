"""The HTTP side of monitoring, as one ASGI middleware: a request id for every request (the
caller's `X-Request-ID` when it is a sane token, otherwise a new one; returned in the response's
`X-Request-ID`), the request's and the conversation's ids in its log lines, the server span
every turn's span hangs under (the caller's `traceparent` continued), and a count of 429s."""

from __future__ import annotations

import re
import uuid

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import tracing
from agent.observability import logs, metrics

HEADER = "x-request-id"
VALID_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")
CONVERSATION_PATH = re.compile(r"/v1/conversations/([^/]{1,64})")
UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})  # scrapes and probes: no spans


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            if VALID_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope.get("headers") or [])
        # Set in this request's own task and left set: an unhandled error is logged (and its
        # 500 answered, agent.api.errors) by Starlette's outermost middleware, after this one.
        logs.REQUEST_ID.set(request_id)
        found = CONVERSATION_PATH.match(scope["path"])
        if found:
            logs.CONVERSATION_ID.set(found.group(1))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
                if status == 429:
                    metrics.RATE_LIMITED.inc()
            await send(message)

        tracer = tracing.tracer()
        if tracer is None or scope["path"] in UNTRACED:
            await self.app(scope, receive, send_with_id)
            return
        method = scope.get("method", "GET")
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        span = tracer.start_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "supportbot.request_id": request_id,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            tracing.failed(span, exc)
            status = status or 500
            raise
        finally:
            otel_context.detach(token)
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if status:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
