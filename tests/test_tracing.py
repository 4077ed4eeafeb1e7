"""OpenTelemetry traces of a turn over HTTP: the server span, the turn (`invoke_agent`), its
model calls (`chat {model}`, GenAI attributes), its tools (`execute_tool {name}`) and its store
writes, exported to the SDK's in-memory exporter; the context crosses into the worker threads
that run the turn's database and tool work; with no OTLP endpoint configured nothing is traced;
with one, spans reach a collector over OTLP/HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent import tracing
from agent.api.app import create_app
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, error, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-5-5"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class ThreadOfSpan(SpanProcessor):
    """Records the thread each span started in."""

    def __init__(self) -> None:
        self.threads: dict[int, int] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.threads[span.context.span_id] = threading.get_ident()


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    threads: ThreadOfSpan

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        return next((s for s in self.spans() if s.context.span_id == span.parent.span_id), None)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.parent and s.parent.span_id == span.context.span_id]


@pytest.fixture
def traced() -> Iterator[Traced]:
    exporter, threads = InMemorySpanExporter(), ThreadOfSpan()
    provider = TracerProvider()
    provider.add_span_processor(threads)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield Traced(exporter, threads)
    finally:
        tracing.use(None)
        provider.shutdown()


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    key: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def start(self) -> str:
        body = {"customer_email": IVAN["email"]}
        return str(
            self.client.post("/v1/conversations", json=body, headers=self.headers()).json()["id"]
        )


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime = build_runtime(make_settings())
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        key = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, key)


def _tool_turn(api: Api, fake: FakeAnthropic, *, stream: bool) -> str:
    conversation = api.start()
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("Delivered."))
    url = f"/v1/conversations/{conversation}/messages" + ("?stream=true" if stream else "")
    response = api.client.post(url, json={"text": "where is my order?"},
                               headers=api.headers(traceparent=TRACEPARENT))  # fmt: skip
    assert response.status_code == 200, response.text
    return conversation


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_turn_over_http_is_one_trace_of_http_turn_model_calls_tools_and_store_writes(
    api: Api, fake: FakeAnthropic, traced: Traced, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = _tool_turn(api, fake, stream=stream)

    (server,) = traced.named("POST /v1/conversations/{conversation_id}/messages")
    assert server.kind == SpanKind.SERVER
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.route"] == "/v1/conversations/{conversation_id}/messages"
    # The caller's trace is continued.
    assert format(server.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert server.parent is not None and server.parent.is_remote

    (turn,) = traced.named("invoke_agent supportbot")
    assert traced.parent(turn) == server
    assert turn.attributes is not None
    assert turn.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert turn.attributes["gen_ai.conversation.id"] == conversation
    assert turn.attributes["supportbot.turn.outcome"] == "answered"

    under_turn = [s.name for s in sorted(traced.children(turn), key=lambda s: s.start_time or 0)]
    assert under_turn == ["store open_turn", f"chat {MODEL}", "store record_round",
                          f"chat {MODEL}", "store record_answer"]  # fmt: skip
    first, second = traced.named(f"chat {MODEL}")
    for chat, finish in ((first, "tool_use"), (second, "end_turn")):
        assert chat.kind == SpanKind.CLIENT
        attributes = dict(chat.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "anthropic"
        assert attributes["gen_ai.request.model"] == MODEL
        assert attributes["gen_ai.response.model"] == MODEL
        assert attributes["gen_ai.response.finish_reasons"] == (finish,)
        assert attributes["gen_ai.request.stream"] is stream
        assert attributes["gen_ai.usage.output_tokens"] > 0
        # Input tokens include the cached ones (the conventions' definition).
        assert (
            attributes["gen_ai.usage.input_tokens"]
            >= (
                attributes["gen_ai.usage.cache_read.input_tokens"]
                + attributes["gen_ai.usage.cache_creation.input_tokens"]
            )
            > 0
        )

    (tool,) = traced.named("execute_tool order_status")
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.name"] == "order_status"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.status.status_code != StatusCode.ERROR
    store_round = traced.parent(tool)
    assert store_round is not None and store_round.name == "store record_round"
    assert traced.parent(store_round) == turn
    # One trace, and the context crossed threads: the tool and the store write ran in a worker
    # thread, the model calls on the event loop's.
    assert {s.context.trace_id for s in traced.spans() if s.name != "POST /v1/conversations"} == {
        server.context.trace_id
    }
    assert (
        traced.threads.threads[tool.context.span_id]
        != traced.threads.threads[first.context.span_id]
    )
    assert "Failed to detach context" not in caplog.text


def test_failed_model_calls_and_the_offline_answer_are_spans_too(
    api: Api, fake: FakeAnthropic, traced: Traced
) -> None:
    conversation = api.start()
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])
    response = api.client.post(f"/v1/conversations/{conversation}/messages",
                               json={"text": "hello"}, headers=api.headers())  # fmt: skip
    assert response.json()["degraded"] is True

    (failed,) = traced.named(f"chat {MODEL}")
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == "OverloadedError"
    offline = traced.named("chat offline")  # the offline model answers the rest of the turn
    assert offline
    (turn,) = traced.named("invoke_agent supportbot")
    assert traced.parent(failed) == turn
    for call in offline:
        assert call.attributes is not None and traced.parent(call) == turn
        assert call.attributes["gen_ai.provider.name"] == "supportbot.offline"
        assert call.attributes["supportbot.degraded"] is True
    assert turn.attributes is not None and turn.attributes["supportbot.turn.degraded"] is True


def test_without_an_otlp_endpoint_nothing_is_traced(api: Api, fake: FakeAnthropic) -> None:
    assert tracing.tracer() is None
    assert not tracing.configure_from_env()
    _tool_turn(api, fake, stream=False)  # runs as ever, no span made anywhere
    assert tracing.tracer() is None


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            _Collector.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_the_standard_otlp_variables_export_a_turns_spans_to_a_collector(
    tmp_path: Path, fake: FakeAnthropic
) -> None:
    """A real process configured by the environment alone, its model the fake over loopback:
    the spans reach a collector over OTLP/HTTP, and the Anthropic SDK's own span of each API
    call hangs under the turn's `chat` span (the provider is the global one)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    _Collector.received = []
    fake.enqueue(tool_use("escalate_to_human", {"reason": "asked", "summary": "x"}),
                 text("A colleague will reply."))  # fmt: skip
    script = (
        "from pathlib import Path\n"
        "from agent.config import Settings\n"
        "from agent.runtime import build_runtime\n"
        "from agent.store.importer import import_path\n"
        f"runtime = build_runtime(Settings(data_dir={str(tmp_path)!r}))\n"
        f"import_path(runtime.engine, Path({str(RETAIL_SLICE)!r}))\n"
        "agent = runtime.agent\n"
        "agent.ask(agent.start_conversation(), 'A person, please.')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
            "OTEL_SERVICE_NAME": "supportbot-test", "PYTHONPATH": str(ROOT),
            "ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": "sk-ant-test"}  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                              timeout=120, capture_output=True, text=True)  # fmt: skip
    finally:
        collector.shutdown()
    assert done.returncode == 0, done.stderr
    spans, services = [], set()
    for body in _Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                spans += list(scope_spans.spans)
    names = [span.name for span in spans]
    assert services == {"supportbot-test"}
    assert names.count(f"chat {MODEL}") == 2, json.dumps(names)
    assert {"invoke_agent supportbot", "execute_tool escalate_to_human", "store open_turn",
            "store record_round", "store record_answer"} <= set(names)  # fmt: skip
    chats = {span.span_id for span in spans if span.name == f"chat {MODEL}"}
    sdk = [span for span in spans if span.name == "anthropic.messages.create"]
    assert len(sdk) == 2 and all(span.parent_span_id in chats for span in sdk)
