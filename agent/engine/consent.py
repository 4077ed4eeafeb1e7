"""A store-changing call proposes; the customer disposes.

The model's call of a `Kind.CHANGE` tool does not run: it is checked against the store as it
stands (a dry run), held as a proposal with a summary the customer reads, and the turn ends.
The customer's answer settles it when the next turn opens: a confirmation (a button, the API,
the terminal's prompt, or a reply that is an unambiguous yes) runs it, every rule checked
again; a decline, an expiry or any other message leaves everything as it was. Either way the
model receives the outcome as the tool's result. This module decides; the port records.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.engine.port import Decision, PendingAction, Settled
from agent.store.tables import ActionStatus, utcnow
from tools.registry import ToolRegistry
from tools.tool_context import ToolContext

ONE_AT_A_TIME = (
    "Not proposed: the customer confirms one change at a time. Propose this one after they "
    "have answered the first."
)
DECLINED = "The customer declined this change. Nothing was changed."
EXPIRED = (
    "The customer did not confirm this change in time, so it was not carried out. Nothing was "
    "changed; propose it again if they still want it."
)
NOT_CONFIRMED = (
    "Not carried out: the customer replied without confirming (their message follows). "
    "Nothing was changed; propose the change again once it is what they want."
)

# Replies that confirm, and nothing else: compared whole, after lower-casing and dropping
# punctuation, emoji and extra spaces. "yes but…", "yes?" or "ok, and the other order?" are
# not on the list and go to the model as ordinary messages.
_YES = frozenset(
    {
        "yes", "y", "yes please", "yes pls", "yep", "yeah", "yup", "sure", "ok", "okay",
        "ok go ahead", "okay go ahead", "confirm", "confirmed", "i confirm", "yes i confirm",
        "yes confirm", "go ahead", "yes go ahead", "please go ahead", "go ahead please",
        "please do", "yes please do", "do it", "yes do it", "please proceed", "proceed",
        "yes proceed", "yes thats right", "yes that is right", "yes thats correct",
        "yes that is correct", "thats right", "correct", "yes correct", "sounds good",
        "yes sounds good", "yes thank you", "yes thanks",
    }
)  # fmt: skip
_NOT_WORD = re.compile(r"[^\w\s]")


def is_unambiguous_yes(text: str) -> bool:
    """Whether a customer's whole reply confirms a proposal, by a fixed rule (never by the
    model: a confirmation is the customer's act). A question mark makes any reply a question."""
    if "?" in text or len(text) > 60:
        return False
    plain = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("’", "")
    plain = " ".join(_NOT_WORD.sub(" ", plain).split())
    return plain in _YES


def confirmation_prompt(summary: str) -> str:
    """The reply that shows a proposal: the channel adds its buttons, or the customer answers
    in words."""
    return f"Please confirm: {summary}\n\nReply “yes” to go ahead, or tell me what to change."


def settler(
    tools: ToolRegistry,
    context: Callable[[Any, str], ToolContext],
    *,
    text: str = "",
    decision: Decision | None = None,
    speaker: str = "customer",
    now: Callable[[], datetime] = utcnow,
) -> Callable[[Any, PendingAction], Settled]:
    """How this turn settles a pending action: by the explicit `decision`, or else by the
    message `text` that `speaker` posted (the audit trail names them, never anyone else).
    `context(session, customer_id)` is what the tool runs with."""
    by = decision.decided_by if decision is not None else speaker

    def settle(session: Any, pending: PendingAction) -> Settled:
        if pending.expires_at <= now():
            return Settled(ActionStatus.EXPIRED, EXPIRED, True, by)
        confirmed = decision.confirm if decision is not None else is_unambiguous_yes(text)
        if not confirmed:
            if decision is not None:
                return Settled(ActionStatus.DECLINED, DECLINED, True, by)
            return Settled(ActionStatus.SUPERSEDED, NOT_CONFIRMED, True, by)
        ran = tools.run(pending.tool, pending.arguments, context(session, pending.customer_id))
        status = ActionStatus.FAILED if ran.is_error else ActionStatus.EXECUTED
        return Settled(status, ran.content, ran.is_error, by)

    return settle
