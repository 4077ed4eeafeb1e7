"""Requests sent with a body we encode (agent.models.messages_calls, request_body) are what
`messages.create` / `messages.stream` send: the same JSON and the same headers, as the
wire-level fake receives them from the real SDK, over a conversation with thinking blocks
(some dropped when the system prompt changes), a photo, text beyond ASCII, cache breakpoints,
a side request, streams, the asynchronous client and a retried call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider

from agent.config import Settings
from agent.models import messages_calls, request_body
from agent.models.base import ModelReply, ModelRequest
from agent.models.claude import ClaudeModel
from tests.conftest import ALL_THINKING_MODES, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, Recorded, Reply, error, text, tool_use
from tests.images import png

thinking_mode = ALL_THINKING_MODES

# Headers that differ between any two calls (and the user agent: the client class's name).
VOLATILE = {"idempotency-key", "x-stainless-retry-count", "content-length", "user-agent"}

TOOLS: list[dict[str, Any]] = [
    {
        "name": "list_orders",
        "description": "The customer's recent orders — newest first (« commandes »).",
        "input_schema": {
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 20}},
        },
    },
    {
        "name": "get_order",
        "description": "One order by its id, e.g. #W1234567.",
        "input_schema": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
]
POLICY = "You help the customers of a small shop. " * 120  # above the minimum cacheable prefix


class _SdkPrepared(anthropic.Anthropic):
    """Not exactly the first-party client: its calls go through `messages.create`."""


def _models(settings: Settings) -> tuple[ClaudeModel, ClaudeModel]:
    encoded = ClaudeModel(settings)
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    client = _SdkPrepared(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.max_retries,
        timeout=settings.request_timeout,
    )
    plain = ClaudeModel(settings, client=client)
    assert messages_calls.sends_encoded(encoded.client, {})
    assert not messages_calls.sends_encoded(plain.client, {})
    return encoded, plain


def _respond(
    model: ClaudeModel, request: ModelRequest, *, stream: bool, asynchronous: bool
) -> ModelReply:
    if asynchronous:

        async def run() -> list[Any]:
            try:
                return [piece async for piece in model.respond_async(request, stream=stream)]
            finally:
                await model.aclose()

        pieces = asyncio.run(run())
    else:
        pieces = list(model.respond(request, stream=stream))
    reply = pieces[-1]
    assert isinstance(reply, ModelReply)
    return reply


def _headers(recorded: Recorded, *, asynchronous: bool) -> dict[str, str]:
    # The asynchronous client says so in a header of its own.
    skip = VOLATILE | ({"x-stainless-async"} if asynchronous else set())
    return {k: v for k, v in recorded.headers.items() if k not in skip}


def _same_request(sent: Recorded, expected: Recorded, *, asynchronous: bool = False) -> None:
    assert sent.path == expected.path == "/v1/messages"
    assert sent.body == expected.body
    assert _headers(sent, asynchronous=asynchronous) == _headers(
        expected, asynchronous=asynchronous
    )


def _exchange(
    fake: FakeAnthropic,
    models: tuple[ClaudeModel, ClaudeModel],
    request: ModelRequest,
    reply: Reply,
    *,
    stream: bool = False,
    asynchronous: bool = False,
) -> ModelReply:
    """`request` through both models (ours first, the other always through the synchronous
    client); both bodies and headers must match."""
    encoded, plain = models
    fake.enqueue(reply, reply)
    got = _respond(encoded, request, stream=stream, asynchronous=asynchronous)
    _respond(plain, request, stream=stream, asynchronous=False)
    _same_request(fake.requests[-2], fake.requests[-1], asynchronous=asynchronous)
    return got


def _assistant(reply: ModelReply) -> dict[str, Any]:
    return {"role": "assistant", "content": reply.content}


def _result(reply: ModelReply, content: str, *, is_error: bool = False) -> dict[str, Any]:
    call = reply.tool_uses()[0]
    block = {"type": "tool_result", "tool_use_id": call["id"], "content": content}
    return {"role": "user", "content": [block | ({"is_error": True} if is_error else {})]}


def _thinking_blocks(body: dict[str, Any]) -> int:
    return sum(
        block["type"] in ("thinking", "redacted_thinking")
        for message in body["messages"]
        for block in message["content"]
        if isinstance(block, dict)
    )


@pytest.mark.parametrize(("prompt_caching", "display"), [(True, "omitted"), (False, "updates")])
def test_the_body_we_encode_is_what_messages_create_sends(
    make_settings: SettingsFactory,
    fake: FakeAnthropic,
    thinking_mode: str,
    prompt_caching: bool,
    display: str,
) -> None:
    models = _models(make_settings(prompt_caching=prompt_caching, thinking_display=display))
    history: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Où est ma commande ? 注文 😀 \u2028"}],
        }
    ]

    def request(system: str = POLICY, **kw: Any) -> ModelRequest:
        return ModelRequest(
            system=system, messages=list(history), tools=TOOLS, max_tokens=900, **kw
        )

    first = _exchange(
        fake, models, request(), tool_use("list_orders", {"limit": 3}, say="Je regarde.")
    )
    history += [_assistant(first), _result(first, json.dumps([{"id": "#W1", "total": 1.5}]))]
    second = _exchange(fake, models, request(), text("Votre commande #W1 — expédiée."), stream=True)
    photo = {
        "type": "base64",
        "media_type": "image/png",
        "data": __import__("base64").b64encode(png()).decode(),
    }
    history += [
        _assistant(second),
        {
            "role": "user",
            "content": [{"type": "image", "source": photo}, {"type": "text", "text": "Cassé !"}],
        },
    ]
    third = _exchange(fake, models, request(), tool_use("get_order", {"order_id": "#W1"}, say="Un instant."),
                      stream=True, asynchronous=True)  # fmt: skip
    history += [_assistant(third), _result(third, "not found", is_error=True)]
    # A new system prompt: the stored thinking blocks no longer match their prefix, and are
    # left out of the request (agent.models.thinking).
    _exchange(fake, models, request(system=POLICY + "The customer is verified."), text("Désolé."),
              asynchronous=True)  # fmt: skip
    _exchange(fake, models, request(auxiliary=True), text("Summary: order #W1, broken."))

    # A retried call sends the same body again, which is what `messages.create` sends.
    encoded, plain = models
    fake.enqueue(error(529, retry_after=0.01), text("Encore là."), text("Encore là."))
    _respond(encoded, request(), stream=False, asynchronous=False)
    _respond(plain, request(), stream=False, asynchronous=False)
    first_try, retried, expected = fake.requests[-3:]
    _same_request(first_try, expected)
    _same_request(retried, expected)
    assert retried.headers["x-stainless-retry-count"] == "1"

    # What the requests covered: thinking blocks sent back, then left out; cache breakpoints
    # on messages; the beta header of the `updates` display.
    bodies = [recorded.body for recorded in fake.requests]
    assert _thinking_blocks(bodies[4]) > 0 and _thinking_blocks(bodies[6]) == 0
    assert ("cache_control" in json.dumps(bodies[2]["messages"])) == prompt_caching
    if thinking_mode == "adaptive" and display == "updates":
        assert "anthropic-beta" in fake.requests[0].headers


def test_what_is_remembered_is_bounded() -> None:
    for n in range(request_body._ITEMS + 500):
        request_body.body({"messages": [{"role": "user", "content": f"message {n}"}] * 3})
    items, held, runs, runs_held = request_body.remembered()
    assert items <= request_body._ITEMS and held <= request_body._ITEM_BYTES
    assert runs <= request_body._RUNS and runs_held <= request_body._RUN_BYTES
    big = {"role": "user", "content": "x" * (request_body._RUN_BYTES // 4)}
    for _ in range(6):
        request_body.body({"messages": [dict(big), dict(big), dict(big), dict(big)]})
    _, held, _, runs_held = request_body.remembered()
    assert held <= request_body._ITEM_BYTES and runs_held <= request_body._RUN_BYTES


def test_a_growing_list_reuses_its_run_and_a_changed_one_does_not() -> None:
    def message(text: str) -> dict[str, Any]:
        return {"role": "user", "content": [{"type": "text", "text": text}]}

    history = [message(f"m{n} «ü»") for n in range(6)]
    for size in range(1, 7):  # a conversation growing, each request ending on a fresh copy
        sent = [*history[: size - 1], dict(history[size - 1])]
        assert json.loads(request_body.body({"messages": sent})) == {"messages": sent}
    cut = [message("first, merged anew"), *history[2:]]  # older turns cut
    assert json.loads(request_body.body({"messages": cut})) == {"messages": cut}
    changed = [history[0], history[1], message("other"), *history[3:]]
    assert json.loads(request_body.body({"messages": changed})) == {"messages": changed}
    shorter = history[:3]
    assert json.loads(request_body.body({"messages": shorter})) == {"messages": shorter}
    assert json.loads(request_body.body({"messages": history})) == {"messages": history}


def test_other_clients_and_traced_calls_go_through_messages_create(
    make_settings: SettingsFactory,
) -> None:
    encoded, _ = _models(make_settings())
    assert not messages_calls.sends_encoded(encoded.client, {"timeout": 5.0})
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("turn"):  # the SDK would carry its trace context
        assert not messages_calls.sends_encoded(encoded.client, {})
    assert messages_calls.sends_encoded(encoded.client, {})
    default_timeout = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9")
    assert not messages_calls.sends_encoded(default_timeout, {})
