"""Messages API calls: `messages.create` / `messages.stream`, or the same request with a body
we encode (agent.models.request_body), sent through the SDK's own request machinery.

The SDK walks and copies a request's body and encodes it anew on every call, in Python: work
that grows with the conversation (bench/README.md, "Long conversations"). Where nothing reads
the body's fields but the API, the body goes as bytes we encoded instead, through the client's
`post` (its `content`: the SDK's supported way to send a body it does not prepare), so that
everything else is the SDK's as with `messages.create`: headers (auth, `anthropic-version`, our
`anthropic-beta`), retries and `retry-after`, timeouts, errors, the response's parsing and, for
a stream, its `MessageStreamManager` and `get_final_message()`. That is:

- only the first-party clients, exactly `anthropic.Anthropic` / `AsyncAnthropic`: Bedrock's and
  Vertex's rewrite a request from its body's fields, and a subclass might too;
- only with a timeout of ours: under the SDK's default one `messages.create` works out a
  non-streaming call's timeout from `max_tokens`;
- only while the SDK would neither record a span of the call nor send a trace context with it
  (no OpenTelemetry tracer provider is set, and no span is current): its span of
  `messages.create` starts from the body's fields. With tracing on, calls go through
  `messages.create` as before.

What `messages.create` does besides that and this does not: its warnings about deprecated
models and about `thinking.type=enabled` (which we never send: agent/capabilities.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anthropic
from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager
from anthropic.types import Message, RawMessageStreamEvent
from opentelemetry import trace

from agent.models import request_body

PATH = "/v1/messages"
_NO_TRACER = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
# Options of `messages.create` that are not body fields; of them only `extra_headers` is sent
# as `messages.create` would send it.
_OTHER_OPTIONS = frozenset({"extra_query", "extra_body", "timeout"})
# The SDK's telemetry headers of `messages.stream`, sent as it sends them.
_STREAM_HEADERS = {"x-stainless-helper-method": "stream", "x-stainless-stream-helper": "messages"}


def sends_encoded(client: Any, params: dict[str, Any]) -> bool:
    """Whether a call of `params` through `client` goes with a body we encode (see the
    module)."""
    if type(client) not in (anthropic.Anthropic, anthropic.AsyncAnthropic):
        return False
    if not _OTHER_OPTIONS.isdisjoint(params):
        return False
    if client.timeout == anthropic.DEFAULT_TIMEOUT:
        return False
    if not isinstance(trace.get_tracer_provider(), _NO_TRACER):
        return False
    return not trace.get_current_span().get_span_context().is_valid


def create(client: Any, params: dict[str, Any]) -> Message:
    if not sends_encoded(client, params):
        return client.messages.create(**params)  # type: ignore[no-any-return]
    content, options = _request(params, stream=False)
    return client.post(PATH, content=content, options=options, cast_to=Message)  # type: ignore[no-any-return]


def stream(client: Any, params: dict[str, Any]) -> MessageStreamManager[Any]:
    if not sends_encoded(client, params):
        return client.messages.stream(**params)  # type: ignore[no-any-return]
    content, options = _request(params, stream=True)
    send = partial(
        client.post,
        PATH,
        content=content,
        options=options,
        cast_to=Message,
        stream=True,
        stream_cls=anthropic.Stream[RawMessageStreamEvent],
    )
    return MessageStreamManager(send, output_format=anthropic.NOT_GIVEN)


async def create_async(client: Any, params: dict[str, Any]) -> Message:
    if not sends_encoded(client, params):
        return await client.messages.create(**params)  # type: ignore[no-any-return]
    content, options = _request(params, stream=False)
    return await client.post(PATH, content=content, options=options, cast_to=Message)  # type: ignore[no-any-return]


def stream_async(client: Any, params: dict[str, Any]) -> AsyncMessageStreamManager[Any]:
    if not sends_encoded(client, params):
        return client.messages.stream(**params)  # type: ignore[no-any-return]
    content, options = _request(params, stream=True)
    send = client.post(
        PATH,
        content=content,
        options=options,
        cast_to=Message,
        stream=True,
        stream_cls=anthropic.AsyncStream[RawMessageStreamEvent],
    )
    return AsyncMessageStreamManager(send)


def _request(params: dict[str, Any], *, stream: bool) -> tuple[bytes, dict[str, Any]]:
    """(the body, the request options) for `params`, the keyword arguments of
    `messages.create`: its fields, and `extra_headers` (the only option we pass)."""
    fields = {k: v for k, v in params.items() if k != "extra_headers"}
    headers = dict(params.get("extra_headers") or {})
    if stream:
        fields["stream"] = True
        headers = _STREAM_HEADERS | headers
    return request_body.body(fields), ({"headers": headers} if headers else {})
