"""What one turn reports as it runs. The CLI prints these; the HTTP API streams them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.domain import ConversationState
from agent.engine.port import PendingAction, Settled
from agent.models.base import ProgressDelta, TextDelta, Working
from tools.tool_context import Citation


class Outcome(StrEnum):
    ANSWERED = "answered"
    HANDED_OFF = "handed_off"  # the model escalated; a human takes over
    QUEUED_FOR_HUMAN = "queued_for_human"  # a human has the conversation; the bot stayed silent
    REFUSED = "refused"
    ITERATION_CAP = "iteration_cap"  # too many tool rounds; handed off
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # a proposed change waits for the customer


@dataclass(frozen=True)
class ToolStarted:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    id: str
    name: str
    is_error: bool
    content: str


@dataclass(frozen=True)
class Degraded:
    reason: str


@dataclass(frozen=True)
class ActionProposed:
    """A store-changing call is held for the customer's confirmation; the turn ends."""

    action: PendingAction


@dataclass
class ToolCall:
    name: str
    input: dict[str, Any]
    is_error: bool
    needs_verification: bool = False  # refused only because the customer is not verified yet
    # Refused as a wait, not a failure (tools.tool_context.waits): not verified yet, or
    # identity checks paused for a few seconds. Channels show it as waiting.
    waits: bool = False


@dataclass
class TurnResult:
    conversation_id: str
    reply: str
    outcome: Outcome
    degraded: bool
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    message_id: int | None = None
    citations: list[Citation] = field(default_factory=list)  # sources the reply cites as [n]
    state: ConversationState = ConversationState.BOT  # the conversation's state after the turn
    pending_action: PendingAction | None = None  # the change waiting for the customer
    settled: tuple[PendingAction, Settled] | None = None  # the change this turn answered


@dataclass(frozen=True)
class TurnFinished:
    result: TurnResult


Event = (
    TextDelta
    | Working
    | ProgressDelta
    | ToolStarted
    | ToolFinished
    | ActionProposed
    | Degraded
    | TurnFinished
)
