"""How a conversation ended: resolved by the bot, handed off (and why), or abandoned.

Decided at report time from facts recorded as they happened: the stored messages (who wrote
when, answers by the offline model while Claude was unavailable, refusals), the hand-off
tickets with their reason, the identity checks, the proposed order changes, and the customer's
end of the conversation ("I'm done", agent/features/closing.py). Nothing is classified by a
model: the model's free-text hand-off reason is mapped onto fixed reasons here, in code, and
facts take precedence over it.

- **handed off**: the conversation has a ticket (the first one gives the reason, below).
- **resolved** (by the bot): the customer ended it after at least one answer from the bot
  (`confirmed`), or did not come back within the window after the bot's last answer
  (`no_return`: SUPPORTBOT_RESOLUTION_WINDOW_HOURS, 24 h by default).
- **abandoned**: past the window, the customer left without a usable answer: their last
  message has no reply, a proposed order change was left unanswered, or the bot's last answer
  was a refusal; or they ended the conversation before the bot answered at all.
- **ongoing**: none of these yet (the window has not passed since the last message).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from agent.store.tables import aware


class Outcome(StrEnum):
    RESOLVED = "resolved"
    HANDED_OFF = "handed_off"
    ABANDONED = "abandoned"
    ONGOING = "ongoing"  # not decided yet: inside the window


class Resolution(StrEnum):
    CONFIRMED = "confirmed"  # the customer ended the conversation ("I'm done")
    NO_RETURN = "no_return"  # the customer did not come back within the window


class HandOffReason(StrEnum):
    CUSTOMER_ASKED = "customer_asked"
    TOOL_CAP = "tool_cap"  # too many tool rounds in one turn
    REFUSAL = "refusal"  # the model declined, and the conversation went to a person
    IDENTITY_LOCKED = "identity_locked"  # identity checks were locked for this customer
    MODEL_UNAVAILABLE = "model_unavailable"  # Claude was unavailable; the offline model answered
    NEEDS_PERSON = "needs_person"  # a request the assistant cannot or may not carry out


# -- the model's (or the engine's) free-text reason -------------------------------------------

_PERSON = (
    r"(?:a\s+|an\s+|some\s+|the\s+|your\s+|one\s+of\s+your\s+)?(?:real\s+|live\s+|actual\s+|"
    r"human\s+)?(?:human(?:\s+being)?|person|people|agent|someone|somebody|representative|rep|"
    r"operator|staff|colleague|team\s+member|manager|supervisor)\b"
)
_TO_PERSON = (
    r"(?:(?:for|me)\s+|to\s+(?:talk|speak|chat)\s+(?:to|with)\s+|"
    r"to\s+be\s+(?:connected|transferred|put\s+through)\s+to\s+)?"
)
_TEXT_RULES: list[tuple[HandOffReason, re.Pattern[str]]] = [
    # agent.engine.loop opens this ticket itself ("The assistant hit its tool-call limit ...").
    (HandOffReason.TOOL_CAP, re.compile(
        r"tool[- ]?call limit|tool[- ]rounds?\b|too many (?:tool|steps)", re.I)),
    (HandOffReason.IDENTITY_LOCKED, re.compile(
        r"(?:verif|identity)[^.]{0,40}\block(?:ed|-?out)\b|\block(?:ed|-?out)\b[^.]{0,40}"
        r"(?:verif|identity)|too many failed (?:verification|identity)", re.I)),
    (HandOffReason.MODEL_UNAVAILABLE, re.compile(
        r"\b(?:model|assistant|ai|claude)\b[^.]{0,40}\b(?:unavailable|outage|offline)\b", re.I)),
    (HandOffReason.CUSTOMER_ASKED, re.compile(
        r"\b(?:customer|user|caller|client|shopper|they|he|she)(?:'s)?\b(?:\s+\w+){0,2}?\s+"
        r"(?:asks?|asked|asking|requests?|requested|requesting|wants?|wanted|would\s+like|"
        rf"prefers?|prefered|preferred|insists?\s+on|insisted\s+on)\s+{_TO_PERSON}{_PERSON}"
        r"|\b(?:human|person|agent|representative)\s+(?:was\s+|is\s+)?requested\b"
        r"|\brequest(?:ed|s)?\s+(?:for\s+)?(?:a\s+)?(?:human|person|live\s+agent|representative)\b"
        r"|^\s*(?:customer\s+)?asked\s+for\s+(?:a\s+)?(?:human|person|agent)\b", re.I)),
]  # fmt: skip

# The customer's own words asking for a person: "I'd like to talk to a human, please",
# "agent please", "can I speak to someone?", "transfer me to a real person". Stricter than the
# offline model's cue (agent/models/intent.py), which also fires on "someone stole my parcel".
_CUSTOMER_ASKS = re.compile(
    rf"\b(?:talk|speak|chat)\s+(?:to|with)\s+{_PERSON}"
    rf"|\b(?:want|need|like|get|prefer|request|give)\s+(?:me\s+)?{_PERSON}"
    rf"|\b(?:transfer|connect|put)\s+me\s+(?:through\s+)?to\s+{_PERSON}"
    r"|\b(?:real|live|actual)\s+(?:human|person|agent)\b"
    r"|^\W*(?:a\s+)?(?:human|agent|person|representative|operator)(?:\s+please)?\W*$",
    re.IGNORECASE,
)


def reason_from_text(text: str) -> HandOffReason | None:
    """The fixed reason a hand-off's free text names, or None when it names none of them."""
    return next((reason for reason, rule in _TEXT_RULES if rule.search(text or "")), None)


def customer_asks_for_person(text: str) -> bool:
    return bool(_CUSTOMER_ASKS.search(text or ""))


@dataclass(frozen=True)
class HandOffFacts:
    """What was recorded about one hand-off, as it happened."""

    reason_text: str  # the ticket's reason: the model's free text, or the engine's own
    customer_text: str = ""  # the customer's words in the turn that handed off
    locked: bool = False  # identity checks were locked for this conversation by then
    previous_refused: bool = False  # the bot's last answer before that turn was a refusal
    previous_degraded: bool = False  # ... came from the offline model (Claude unavailable)
    turn_degraded: bool = False  # the turn that handed off ran on the offline model


def classify_hand_off(facts: HandOffFacts) -> HandOffReason:
    """The reason of a hand-off: the first cause a shop can act on, facts before words.

    1. `tool_cap`: the engine's own ticket for one tool round too many.
    2. `identity_locked`: identity checks were locked for the conversation before it (an
       account or a client locked out, or the conversation's failed checks at their limit).
    3. `refusal`: the bot's answer just before was a refusal (the customer then asked for a
       person, or the model handed over).
    4. `model_unavailable`: the answer just before came from the offline model while Claude
       was unavailable, or the offline model handed over without the customer asking.
    5. `customer_asked`: the customer asked for a person in that turn (their own words, or the
       model's reason says so).
    6. `needs_person`: the model handed over on its own: something its tools cannot do or the
       policy does not allow.
    """
    said = reason_from_text(facts.reason_text)
    if said == HandOffReason.TOOL_CAP:
        return HandOffReason.TOOL_CAP
    if facts.locked or said == HandOffReason.IDENTITY_LOCKED:
        return HandOffReason.IDENTITY_LOCKED
    if facts.previous_refused:
        return HandOffReason.REFUSAL
    in_words = customer_asks_for_person(facts.customer_text)
    # (The offline model writes "Customer asked for a person" whenever it hands over, so
    # during an outage only the customer's own words count.)
    if (
        facts.previous_degraded
        or (facts.turn_degraded and not in_words)
        or said == HandOffReason.MODEL_UNAVAILABLE
    ):
        return HandOffReason.MODEL_UNAVAILABLE
    if in_words or said == HandOffReason.CUSTOMER_ASKED:
        return HandOffReason.CUSTOMER_ASKED
    return HandOffReason.NEEDS_PERSON


# -- facts of one conversation from its stored rows ---------------------------------------------


class StoredMessage(Protocol):
    """A stored message (agent.store.tables.Message, or a row of its columns)."""

    @property
    def role(self) -> str: ...
    @property
    def content(self) -> list[dict[str, Any]]: ...
    @property
    def stop_reason(self) -> str | None: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def author(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


class StoredTicket(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class StoredCheck(Protocol):
    @property
    def outcome(self) -> str: ...  # failed | locked
    @property
    def created_at(self) -> datetime: ...


@dataclass
class ConversationFacts:
    """One conversation, as its records tell it."""

    conversation_id: str
    first_customer_at: datetime | None = None  # the customer's first message
    first_reply_at: datetime | None = None  # the first answer they saw (bot or staff)
    last_bot_reply_at: datetime | None = None
    last_message_at: datetime | None = None
    bot_replied: bool = False
    waiting_for_reply: bool = False  # the last word is the customer's
    last_bot_refused: bool = False  # the bot's last answer was a refusal
    pending_action: bool = False  # a proposed order change waits (or lapsed) unanswered
    ended_at: datetime | None = None  # the customer ended it ("I'm done")
    hand_off: HandOffReason | None = None
    hand_off_resolved_at: datetime | None = None  # every ticket resolved, the last at this


def _has_words(message: StoredMessage) -> bool:
    return any(
        (b.get("type") == "text" and str(b.get("text", "")).strip()) or b.get("type") == "image"
        for b in message.content
    )


def _words(message: StoredMessage) -> str:
    return "\n".join(str(b.get("text", "")) for b in message.content if b.get("type") == "text")


def _proposes(message: StoredMessage, proposal_ids: set[str]) -> bool:
    """An assistant tool_use message that holds a proposed change: its turn ends there, and
    the customer answers it in the next message (the Confirm/Decline buttons send no words)."""
    return message.role == "assistant" and any(
        b.get("type") == "tool_use" and b.get("id") in proposal_ids for b in message.content
    )


def _customer_spoke(messages: Sequence[StoredMessage], i: int, proposal_ids: set[str]) -> bool:
    """Whether message `i` is the customer's doing (not only a tool round's results)."""
    m = messages[i]
    if m.role != "user":
        return False
    return _has_words(m) or (i > 0 and _proposes(messages[i - 1], proposal_ids))


def _visible(message: StoredMessage, proposal_ids: set[str]) -> bool:
    """An answer the customer saw: text from the bot or staff, or a proposed change."""
    return message.role == "assistant" and (_has_words(message) or _proposes(message, proposal_ids))


def facts_of(
    conversation_id: str,
    messages: Sequence[StoredMessage],
    *,
    tickets: Sequence[StoredTicket] = (),
    checks: Sequence[StoredCheck] = (),
    proposal_ids: set[str] | None = None,
    pending_action: bool = False,
    ended_at: datetime | None = None,
    max_failed_verifications: int = 3,
) -> ConversationFacts:
    """The facts of a conversation from its messages (in order), tickets (in order), failed or
    locked identity checks, the tool_use ids of its proposed changes, whether one is still
    waiting, and when the customer ended it."""
    ids = proposal_ids or set()
    facts = ConversationFacts(conversation_id, pending_action=pending_action,
                              ended_at=aware(ended_at) if ended_at else None)  # fmt: skip
    for i, m in enumerate(messages):
        at = aware(m.created_at)
        facts.last_message_at = at
        if _customer_spoke(messages, i, ids):
            facts.first_customer_at = facts.first_customer_at or at
            facts.waiting_for_reply = True
        elif _visible(m, ids):
            if facts.first_customer_at is not None and facts.first_reply_at is None:
                facts.first_reply_at = at
            facts.waiting_for_reply = False
            if m.author is None:  # the bot's (staff replies carry "staff:<name>")
                facts.bot_replied = True
                facts.last_bot_reply_at = at
                facts.last_bot_refused = m.stop_reason == "refusal"
    if tickets:
        facts.hand_off = classify_hand_off(
            _hand_off_facts(messages, tickets[0], checks, ids, max_failed_verifications)
        )
        resolved = [t.resolved_at for t in tickets]
        if all(r is not None for r in resolved):
            facts.hand_off_resolved_at = max(aware(r) for r in resolved if r is not None)
    return facts


def _hand_off_facts(
    messages: Sequence[StoredMessage],
    ticket: StoredTicket,
    checks: Sequence[StoredCheck],
    proposal_ids: set[str],
    max_failed: int,
) -> HandOffFacts:
    """The facts around a hand-off: the turn that opened its ticket (from the customer's
    message before it) and the bot's answer before that turn."""
    at = aware(ticket.created_at)
    before = [m for m in messages if aware(m.created_at) <= at]
    opening = next(
        (i for i in range(len(before) - 1, -1, -1) if _customer_spoke(before, i, proposal_ids)),
        None,
    )
    turn = before[opening + 1 :] if opening is not None else before
    earlier = before[:opening] if opening is not None else []
    previous = next((m for m in reversed(earlier) if _visible(m, proposal_ids)), None)
    failed = sum(1 for c in checks if c.outcome == "failed" and aware(c.created_at) <= at)
    locked = any(c.outcome == "locked" and aware(c.created_at) <= at for c in checks)
    return HandOffFacts(
        reason_text=ticket.reason,
        customer_text=_words(before[opening]) if opening is not None else "",
        locked=locked or failed >= max_failed,
        previous_refused=previous is not None and previous.stop_reason == "refusal",
        previous_degraded=previous is not None and previous.degraded,
        turn_degraded=any(m.degraded for m in turn if m.role == "assistant"),
    )


# -- the outcome ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationOutcome:
    conversation_id: str
    outcome: Outcome
    reason: HandOffReason | None = None  # for hand-offs
    resolution: Resolution | None = None  # for resolutions
    first_reply_seconds: float | None = None
    # Resolved by the bot: from the customer's first message to the bot's last answer.
    resolution_seconds: float | None = None
    # Handed off, every ticket resolved: from the customer's first message to the last.
    hand_off_resolution_seconds: float | None = None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def decide(facts: ConversationFacts, *, now: datetime, window: timedelta) -> ConversationOutcome:
    """The outcome of a conversation as of `now` (see the module's docstring)."""
    first_reply = _seconds(facts.first_customer_at, facts.first_reply_at)
    if facts.hand_off is not None:
        return ConversationOutcome(
            facts.conversation_id,
            Outcome.HANDED_OFF,
            reason=facts.hand_off,
            first_reply_seconds=first_reply,
            hand_off_resolution_seconds=_seconds(
                facts.first_customer_at, facts.hand_off_resolved_at
            ),
        )
    resolved = ConversationOutcome(
        facts.conversation_id,
        Outcome.RESOLVED,
        first_reply_seconds=first_reply,
        resolution_seconds=_seconds(facts.first_customer_at, facts.last_bot_reply_at),
    )
    abandoned = ConversationOutcome(
        facts.conversation_id, Outcome.ABANDONED, first_reply_seconds=first_reply
    )
    if facts.ended_at is not None:
        if not facts.bot_replied:
            return abandoned
        return replace(resolved, resolution=Resolution.CONFIRMED)
    last = facts.last_message_at
    if last is None or now - last < window:
        return ConversationOutcome(
            facts.conversation_id, Outcome.ONGOING, first_reply_seconds=first_reply
        )
    if (
        facts.waiting_for_reply
        or facts.pending_action
        or facts.last_bot_refused
        or not facts.bot_replied
    ):
        return abandoned
    return replace(resolved, resolution=Resolution.NO_RETURN)
