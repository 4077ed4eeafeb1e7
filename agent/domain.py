"""Ground-level words of the product, shared by every layer: the states a conversation, a
ticket and a proposed change go through, and the clock. (No table, no engine, no HTTP here.)"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored time as UTC (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A time in a response model: always sent with its zone ("...Z"), whichever database it came
# from, so an API consumer never has to guess.
UtcTime = Annotated[datetime, AfterValidator(aware)]


class ConversationState(StrEnum):
    BOT = "bot"
    HUMAN = "human"
    CLOSED = "closed"


class TicketStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class ActionStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the customer's confirmation
    EXECUTED = "executed"  # confirmed and carried out
    FAILED = "failed"  # confirmed, but a rule refused it when it ran: nothing changed
    DECLINED = "declined"  # the customer said no
    EXPIRED = "expired"  # not confirmed in time
    SUPERSEDED = "superseded"  # the customer wrote something else instead of confirming
    # Confirmed and sent to the shop's order system, which never answered: it may or may not
    # have happened. Never retried; a ticket asks staff to find out.
    UNKNOWN = "unknown"
