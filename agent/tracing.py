"""OpenTelemetry traces: an HTTP request, the turn it runs, the turn's model calls, its tools
and its writes to the store, as one tree.

Spans are exported only when the standard variables name a collector
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; OTLP over HTTP, or gRPC
with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` where its exporter is installed; `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_SDK_DISABLED` as usual). Without
them `tracer()` is None and nothing here calls OpenTelemetry: each hook is one `is None` test.

Names and attributes follow the OpenTelemetry GenAI semantic conventions (the agent's turn is
`invoke_agent supportbot`, a model call `chat {model}`, a tool `execute_tool {name}`;
`gen_ai.provider.name`, which replaced `gen_ai.system`), kept here as strings: the installed
`opentelemetry-semantic-conventions` lists them only as moved to the GenAI conventions' own
repository.

Ground level: tools, models and the engine open spans here, and it imports none of them. (The
store's spans wrap the turn-store port: agent/observability/traced_store.py.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

SCOPE = "supportbot"
AGENT_NAME = "supportbot"

# GenAI semantic conventions.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT = "gen_ai.agent.name"
CONVERSATION = "gen_ai.conversation.id"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"  # all input tokens, cached ones included
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"
# Providers by SUPPORTBOT_PROVIDER, as the conventions name them.
PROVIDERS = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}
OFFLINE_PROVIDER = "supportbot.offline"  # the local responder

_tracer: Tracer | None = None
_configured = False


def tracer() -> Tracer | None:
    """The tracer, or None when traces are off."""
    return _tracer


def use(provider: Any) -> None:
    """Trace with `provider` (an SDK TracerProvider; tests pass one with an in-memory exporter),
    or stop tracing with None. It is not made the global provider."""
    global _tracer, _configured
    _configured = True
    _tracer = None if provider is None else provider.get_tracer(SCOPE)


def configure_from_env() -> bool:
    """Once per process: trace when the environment names an OTLP endpoint. The provider is
    also made OpenTelemetry's global one, so the spans the Anthropic SDK makes of its API calls
    (with request ids and retries) join the turn's under its `chat` spans."""
    global _configured
    if _configured:
        return _tracer is not None
    _configured = True
    wanted = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    if not wanted or disabled or os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": AGENT_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    use(provider)
    log.info("exporting traces to %s", wanted)
    return True


def _exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc; using HTTP")
        else:
            return OTLPSpanExporter()
    elif protocol != "http/protobuf":
        log.warning("OTLP protocol %s is not supported here; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def failed(span: trace.Span, error: BaseException) -> None:
    """Mark `span` as ended by `error`."""
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
    cause = error.__cause__ or error
    span.set_attribute(ERROR_TYPE, type(cause).__qualname__)


def _ignore(is_error: bool) -> None:
    pass


@contextmanager
def tool_call(name: str, *, dry_run: bool = False) -> Iterator[Callable[[bool], None]]:
    """A span around one tool call (tools.registry), current while the tool runs; yields the
    function that records whether the call ended in an error result."""
    current = _tracer
    if current is None:
        yield _ignore
        return
    attributes: dict[str, Any] = {OPERATION: "execute_tool", TOOL_NAME: name, TOOL_TYPE: "function"}
    if dry_run:
        attributes["supportbot.tool.dry_run"] = True  # a store-changing call, proposed
    with current.start_as_current_span(
        f"execute_tool {name}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:

        def done(is_error: bool) -> None:
            if is_error:
                span.set_attribute(ERROR_TYPE, "tool_error")
                span.set_status(Status(StatusCode.ERROR, "the tool returned an error"))

        yield done
