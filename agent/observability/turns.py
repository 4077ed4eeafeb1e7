"""What watches each turn (agent.engine.drive.TurnWatch): its metrics, its spans and the
conversation id of its log lines, all from what the turn already reports: the events it
yields (tools finished, degraded, the result with its outcome) and the model calls the driver
makes for it. Nothing here changes what a turn does; a failure here is logged, never raised."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from agent import tracing
from agent.engine.events import Degraded, Event, Outcome, ToolFinished, TurnFinished, TurnResult
from agent.models.base import ModelCall, ModelReply
from agent.observability import logs, metrics

if TYPE_CHECKING:
    from agent.config import Settings

log = logging.getLogger(__name__)

HANDOFF_OUTCOMES = (Outcome.HANDED_OFF, Outcome.ITERATION_CAP)


def watcher(settings: Settings) -> Callable[[str], ObservedTurn]:
    """The Agent's `watch`: a fresh ObservedTurn for each turn of a conversation."""
    provider = tracing.PROVIDERS.get(settings.provider, settings.provider)

    def watch(conversation_id: str) -> ObservedTurn:
        return ObservedTurn(conversation_id, provider)

    return watch


def handoff_reason(result: TurnResult) -> str:
    """Why a turn handed its conversation to a person, as a metric label."""
    if result.outcome == Outcome.ITERATION_CAP:
        return "tool_round_cap"
    return "model_unavailable" if result.degraded else "escalated"


class ObservedTurn:
    def __init__(self, conversation_id: str, provider: str) -> None:
        self.conversation_id = conversation_id
        self.provider = provider
        self.started = 0.0
        self.opened = False  # the turn got past admission (it yielded something)
        self.degraded = False
        self.result: TurnResult | None = None
        self.span: trace.Span | None = None
        self.context: otel_context.Context | None = None

    def begin(self) -> None:
        self.started = perf_counter()
        tracer = tracing.tracer()
        if tracer is None:
            return
        self.span = tracer.start_span(
            f"invoke_agent {tracing.AGENT_NAME}",
            kind=SpanKind.INTERNAL,
            attributes={
                tracing.OPERATION: "invoke_agent",
                tracing.AGENT: tracing.AGENT_NAME,
                tracing.PROVIDER: self.provider,
                tracing.CONVERSATION: self.conversation_id,
            },
        )
        self.context = trace.set_span_in_context(self.span)

    @contextmanager
    def inside(self) -> Iterator[None]:
        """The turn's span current and its conversation id in the log fields."""
        logged = logs.CONVERSATION_ID.set(self.conversation_id)
        token = otel_context.attach(self.context) if self.context is not None else None
        try:
            yield
        finally:
            if token is not None:
                otel_context.detach(token)
            logs.CONVERSATION_ID.reset(logged)

    def event(self, event: Event) -> None:
        self.opened = True
        try:
            if isinstance(event, ToolFinished):
                metrics.child(metrics.TOOL_CALLS, event.name).inc()
                if event.is_error:
                    metrics.child(metrics.TOOL_ERRORS, event.name).inc()
            elif isinstance(event, Degraded):
                self.degraded = True
            elif isinstance(event, TurnFinished):
                self.result = event.result
        except Exception:
            log.exception("recording a turn's event failed")

    def call(self, call: ModelCall) -> ObservedCall:
        self.opened = True
        return ObservedCall(self, call)

    def end(self, error: BaseException | None) -> None:
        try:
            self._end(error)
        except Exception:
            log.exception("recording a turn failed")

    def _end(self, error: BaseException | None) -> None:
        elapsed = perf_counter() - self.started
        result = self.result
        outcome: str | None = None
        if result is not None:
            outcome = result.outcome.value
            if result.degraded:
                metrics.DEGRADED_TURNS.inc()
            if result.outcome in HANDOFF_OUTCOMES:
                metrics.child(metrics.HANDOFFS, handoff_reason(result)).inc()
        elif self.opened:  # a turn refused at admission (429, 409, 404, 422) is no turn
            outcome = "error" if isinstance(error, Exception) else "interrupted"
        if outcome is not None:
            metrics.child(metrics.TURNS, outcome).inc()
            metrics.child(metrics.TURN_SECONDS, outcome).observe(elapsed)
        span = self.span
        if span is None:
            return
        if result is not None:
            span.set_attributes(
                {
                    "supportbot.turn.outcome": result.outcome.value,
                    "supportbot.turn.degraded": result.degraded,
                    "supportbot.turn.tool_calls": len(result.tool_calls),
                    **_usage_attributes(result.usage),
                }
            )
        elif isinstance(error, Exception):
            tracing.failed(span, error)
        elif error is not None:
            span.set_attribute("supportbot.turn.outcome", "interrupted")
        span.end()


class ObservedCall:
    """One model call of a turn: its metrics (by model and outcome: ok, error, or degraded
    when the offline model answered for an unavailable Claude) and its `chat {model}` span."""

    def __init__(self, turn: ObservedTurn, call: ModelCall) -> None:
        self.turn = turn
        self.call = call
        self.model = call.model.name
        self.reply: ModelReply | None = None
        self.started = 0.0
        self.span: trace.Span | None = None
        self.context: otel_context.Context | None = None

    def __enter__(self) -> ObservedCall:
        self.started = perf_counter()
        tracer = tracing.tracer()
        if tracer is None or self.turn.context is None:
            return self
        offline = self.call.model.offline
        self.span = tracer.start_span(
            f"chat {self.model}",
            context=self.turn.context,
            kind=SpanKind.INTERNAL if offline else SpanKind.CLIENT,
            attributes={
                tracing.OPERATION: "chat",
                tracing.PROVIDER: tracing.OFFLINE_PROVIDER if offline else self.turn.provider,
                tracing.REQUEST_MODEL: self.model,
                tracing.REQUEST_MAX_TOKENS: self.call.request.max_tokens,
                tracing.REQUEST_STREAM: self.call.stream,
                tracing.CONVERSATION: self.turn.conversation_id,
            },
        )
        self.context = trace.set_span_in_context(self.span)
        return self

    def inside(self) -> AbstractContextManager[object]:
        return _attached(self.context)

    def replied(self, reply: ModelReply) -> None:
        self.reply = reply

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._record(error)
        except Exception:
            log.exception("recording a model call failed")

    def _record(self, error: BaseException | None) -> None:
        elapsed = perf_counter() - self.started
        reply = self.reply
        outcome: str | None = None
        if error is None and reply is not None:
            outcome = "degraded" if self.turn.degraded else "ok"
            metrics.count_usage(self.model, reply.usage)
        elif isinstance(error, Exception):
            outcome = "error"
        if outcome is not None:  # else cancelled: the client left mid-call
            metrics.child(metrics.MODEL_CALLS, self.model, outcome).inc()
            metrics.child(metrics.MODEL_CALL_SECONDS, self.model, outcome).observe(elapsed)
        span = self.span
        if span is None:
            return
        if reply is not None and error is None:
            span.set_attributes(
                {
                    tracing.RESPONSE_MODEL: reply.model,
                    tracing.FINISH_REASONS: [reply.stop_reason],
                    **_usage_attributes(reply.usage),
                }
            )
            if outcome == "degraded":
                span.set_attribute("supportbot.degraded", True)
        elif isinstance(error, Exception):
            tracing.failed(span, error)
        else:
            span.set_attribute("supportbot.cancelled", True)
        span.end()


@contextmanager
def _attached(context: otel_context.Context | None) -> Iterator[None]:
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def _usage_attributes(usage: dict[str, int]) -> dict[str, Any]:
    """Token counts as the GenAI conventions want them: input tokens include the cached ones
    (Anthropic reports them apart), with the cache reads and writes also on their own."""
    read = usage.get("cache_read_input_tokens", 0)
    written = usage.get("cache_creation_input_tokens", 0)
    return {
        tracing.INPUT_TOKENS: usage.get("input_tokens", 0) + read + written,
        tracing.OUTPUT_TOKENS: usage.get("output_tokens", 0),
        tracing.CACHE_READ_TOKENS: read,
        tracing.CACHE_WRITE_TOKENS: written,
    }
