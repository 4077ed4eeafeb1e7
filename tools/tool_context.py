"""What a tool receives from the loop and the model never controls."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlmodel import Session

from agent.config import Settings

if TYPE_CHECKING:
    from kb import Hit, KnowledgeBase
    from tools.order_system import OrderSystem


def _plain(text: str) -> str:
    return re.sub(r"[\s#]+", "", text).lower()


class ToolError(Exception):
    """A failure the model should see and act on (becomes a tool_result with is_error)."""


# How a tool refuses before the customer is verified: the next step of the conversation, not
# a failure (the chat and the desk show it as such).
NOT_VERIFIED = "The customer is not verified yet."


# How verify_customer refuses while earlier failed checks pause identity checks for a few
# seconds (a back-off, tools/verify.py): the facts were not compared; the customer waits and
# sends them again. Not a failure either.
CHECKS_PAUSED = "Identity checks are paused"


def waits_for_verification(result: str) -> bool:
    """Whether a tool's error result is the refusal of an unverified customer."""
    return result.startswith(NOT_VERIFIED)


def waits(result: str) -> bool:
    """Whether a tool's error result is a wait rather than a failure: the refusal of an
    unverified customer, or of an identity check while checks are paused. Every channel shows
    such a call as waiting on the customer, not as failed."""
    return result.startswith((NOT_VERIFIED, CHECKS_PAUSED))


@dataclass(frozen=True)
class Citation:
    number: int
    title: str
    section: str
    source: str
    url: str | None
    page: int | None


@dataclass
class ToolContext:
    session: Session
    settings: Settings
    conversation_id: str
    customer_id: str | None  # the verified customer bound to this conversation, if any
    # The shop's order system (tools/order_system.py): the built-in store on this session, or
    # a connector to the shop's own.
    orders: OrderSystem
    kb: KnowledgeBase | None = None
    citations: list[Citation] = field(default_factory=list)  # numbered sources of this turn
    client: str | None = None  # the caller's address, when a channel knows it
    # What the customer typed in this conversation (their messages' text, never tool results,
    # documents or the model's words), read only when a tool needs it.
    customer_said: Callable[[], str] = lambda: ""
    # A change being checked for a proposal: every rule runs, nothing is carried out.
    dry_run: bool = False
    # What the order system answered to changes carried out in this call, and where it
    # differed from what the customer confirmed (kept with the action; staff see both).
    receipts: list[str] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)

    def typed_by_customer(self, *facts: str) -> bool:
        """Whether every fact appears in what the customer typed here (case, spaces and a
        leading # aside): identity facts must come from the customer, not from a document or
        a tool result the model read."""
        said = _plain(self.customer_said())
        return all(_plain(fact) in said for fact in facts if fact)

    def require_customer(self) -> str:
        if self.customer_id is None:
            raise ToolError(
                f"{NOT_VERIFIED} Ask for the email address on their account plus an order "
                "number or their zip code, then call verify_customer."
            )
        return self.customer_id

    def cite(self, hit: Hit) -> int:
        """The source number of `hit` in this turn, numbering it if it is new."""
        for existing in self.citations:
            if (existing.source, existing.section, existing.page) == (
                hit.source,
                hit.section,
                hit.page,
            ):
                return existing.number
        number = len(self.citations) + 1
        self.citations.append(
            Citation(number, hit.title, hit.section, hit.source, hit.url, hit.page)
        )
        return number
