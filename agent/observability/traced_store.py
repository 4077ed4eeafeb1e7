"""The turn's storage port with a span around each of its writes (see agent/tracing.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind

from agent import tracing

if TYPE_CHECKING:
    from agent.engine.port import TurnStore


class TracedTurnStore:
    """The turn's storage port (agent.engine.port.TurnStore) with a span around each of its
    writes: `store open_turn`, `store record_round` (the round's tools run inside it, in its
    transaction), `store record_answer`, ... Without a tracer each call goes straight through."""

    def __init__(self, inner: TurnStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _traced(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.inner, operation)
        current = tracing.tracer()
        if current is None:
            return method(*args, **kwargs)
        with current.start_as_current_span(
            f"store {operation}",
            kind=SpanKind.INTERNAL,
            attributes={"supportbot.store.operation": operation},
        ):
            return method(*args, **kwargs)

    def start_conversation(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("start_conversation", *args, **kwargs)

    def open_turn(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("open_turn", *args, **kwargs)

    def record_round(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("record_round", *args, **kwargs)

    def record_answer(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("record_answer", *args, **kwargs)

    def record_hand_off(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("record_hand_off", *args, **kwargs)

    def move_cut(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("move_cut", *args, **kwargs)

    def set_aside_images(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("set_aside_images", *args, **kwargs)

    def release(self, *args: Any, **kwargs: Any) -> Any:
        return self._traced("release", *args, **kwargs)
