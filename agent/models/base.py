"""The model interface: one request in, text deltas and one reply out."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    system: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    max_tokens: int
    # A side request (a summary) rather than a customer turn: the least thinking and effort.
    auxiliary: bool = False


@dataclass
class ModelReply:
    content: list[dict[str, Any]]
    stop_reason: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    # Why the model declined, on a `refusal`: {"type", "category", "explanation"}.
    stop_details: dict[str, Any] | None = None

    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.content if b.get("type") == "text")

    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Working:
    """The model started thinking: nothing to show but that work is under way."""


@dataclass(frozen=True)
class ProgressDelta:
    """Text of a progress update the model wrote between tool calls (or, where a setting says
    so, of its summarized reasoning): shown to the customer as the assistant's working notes."""

    text: str


Piece = TextDelta | Working | ProgressDelta  # what a model streams before its reply


class ModelUnavailable(Exception):
    """The model could not answer (after the SDK's retries); the fallback takes over."""


class ContextTooLong(Exception):
    """The request does not fit the model's context window."""


class ImageRejected(Exception):
    """The model could not process an image of the request (a 400 naming the image)."""


class Model(Protocol):
    name: str
    offline: bool

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[Piece | ModelReply]:
        """Yield pieces (when streaming) and, last, exactly one ModelReply."""
        ...

    def respond_async(
        self, request: ModelRequest, *, stream: bool = False
    ) -> AsyncGenerator[Piece | ModelReply, None]:
        """As `respond`, on the running event loop (the HTTP API's turns)."""
        ...

    async def aclose(self) -> None:
        """Release what `respond_async` opened on the running event loop."""
        ...


@dataclass(frozen=True)
class ModelCall:
    """A model call a turn needs made: the driver running the turn makes it (see
    agent.engine.drive) and sends the reply back, or throws the call's error in."""

    model: Model
    request: ModelRequest
    stream: bool
