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

from agent.domain import ActionStatus, ConversationState, utcnow
from agent.engine.history import interrupted_reply
from agent.engine.port import Decision, Found, NewMessage, PendingAction, Settled
from agent.errors import ActionDecided, Conflict, ConversationClosed, NotFound
from tools.order_system import OutcomeUnknown
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
WENT_TO_STAFF = (
    "Not carried out: the conversation went to a member of staff before the customer "
    "confirmed. Nothing was changed."
)
CUSTOMER_CHANGED = "Not carried out: the customer changed. Nothing was changed."
NOT_CONFIRMED = (
    "Not carried out: the customer replied without confirming (their message follows). "
    "Nothing was changed; propose the change again once it is what they want."
)

# What the model is told of a confirmed change while it is being sent to a remote order
# system, and what stays if its outcome is never recorded (the process died mid-call).
SENDING = str(OutcomeUnknown("sent; the process ended before its answer was recorded"))

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
        # Spanish, German, French: the languages the offline model answers in
        # (agent/models/offline_phrases.py); "sí" also as typed without its accent.
        "sí", "si", "sí por favor", "si por favor", "sí gracias", "si gracias", "sí adelante",
        "si adelante", "sí confirmo", "si confirmo", "confirmo", "vale", "de acuerdo",
        "adelante", "sí claro", "si claro", "claro",
        "ja", "ja bitte", "ja gerne", "ja danke", "jawohl", "ja genau", "genau", "bestätigt",
        "ich bestätige", "ja ich bestätige", "einverstanden", "ja einverstanden",
        "oui", "oui merci", "oui sil vous plaît", "oui sil vous plait", "daccord", "oui daccord",
        "je confirme", "oui je confirme", "confirmé", "allez y", "oui allez y",
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


# The reply that shows a proposal, in the customer's language (kb/language.py): the tool's
# summary is worded in it too (tools/proposal_words.py). Each asks for a word `_YES` holds.
PROMPTS: dict[str, str] = {
    "en": "Please confirm: {summary}\n\nReply “yes” to go ahead, or tell me what to change.",
    "es": "Confirme, por favor: {summary}\n\nResponda «sí» para seguir adelante, o dígame qué "
    "quiere cambiar.",
    "de": "Bitte bestätigen Sie: {summary}\n\nAntworten Sie „ja“, um fortzufahren, oder sagen "
    "Sie mir, was ich ändern soll.",
    "fr": "Veuillez confirmer : {summary}\n\nRépondez « oui » pour continuer, ou dites-moi ce "
    "qu'il faut modifier.",
}


def confirmation_prompt(summary: str, language: str = "en") -> str:
    """The reply that shows a proposal, in the customer's `language` (English for one it is
    not written in): the channel adds its buttons, or the customer answers in words."""
    return PROMPTS.get(language, PROMPTS["en"]).format(summary=summary)


class TurnOpening:
    """Everything a turn decides as it opens (agent.engine.port.Opening), for the store to
    record: whether it may open, how the pending action ends (by the explicit `decision`, or
    else by the message `text` that `speaker` posted: the audit trail names them, never anyone
    else), and the words for a message an earlier turn left unanswered. `context(session,
    customer_id)` is what a confirmed change runs with."""

    def __init__(
        self,
        tools: ToolRegistry,
        context: Callable[[Any, str], ToolContext],
        *,
        text: str = "",
        decision: Decision | None = None,
        speaker: str = "customer",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.tools, self.context, self.text, self.now = tools, context, text, now
        self.decision = decision  # the explicit answer this turn brings, if any
        self.by = decision.decided_by if decision is not None else speaker

    def check(self, found: Found) -> None:
        if found.state == ConversationState.CLOSED:
            raise ConversationClosed(f"Conversation {found.conversation_id} is closed")
        if self.decision is None:
            return
        named = found.named
        if named is None or named.conversation_id != found.conversation_id:
            raise NotFound(f"Action {self.decision.action_id} not found")
        if found.pending_action_id != named.id:
            raise ActionDecided(
                f"Action {named.id} was settled already ({named.status.value}).", named.id
            )
        if found.state == ConversationState.HUMAN:
            raise Conflict("A member of our team has this conversation now; tell them instead.")

    def settle(self, session: Any, found: Found, pending: PendingAction) -> Settled:
        if found.customer_id != pending.customer_id:  # cannot happen: identity never changes
            return Settled(ActionStatus.SUPERSEDED, CUSTOMER_CHANGED, True, self.by)
        if found.state == ConversationState.HUMAN:
            return Settled(ActionStatus.SUPERSEDED, WENT_TO_STAFF, True, self.by)
        if pending.expires_at <= self.now():
            return Settled(ActionStatus.EXPIRED, EXPIRED, True, self.by)
        decision = self.decision
        confirmed = decision.confirm if decision is not None else is_unambiguous_yes(self.text)
        if not confirmed:
            if decision is not None:
                return Settled(ActionStatus.DECLINED, DECLINED, True, self.by)
            return Settled(ActionStatus.SUPERSEDED, NOT_CONFIRMED, True, self.by)
        ctx = self.context(session, pending.customer_id)
        if not ctx.orders.local:  # a remote call: made once the confirmation is recorded
            return Settled(ActionStatus.UNKNOWN, SENDING, True, self.by, sending=True)
        return self._run(ctx, pending)

    def carry_out(self, session: Any, pending: PendingAction) -> Settled:
        return self._run(self.context(session, pending.customer_id), pending)

    def _run(self, ctx: ToolContext, pending: PendingAction) -> Settled:
        """The confirmed change, every rule checked again on the order system as it is."""
        ran = self.tools.run(pending.tool, pending.arguments, ctx)
        if ran.unknown:  # sent, never answered: staff find out what happened
            status = ActionStatus.UNKNOWN
        else:
            status = ActionStatus.FAILED if ran.is_error else ActionStatus.EXECUTED
        return Settled(status, ran.content, ran.is_error, self.by,
                       receipt="\n".join(ctx.receipts) or None,
                       discrepancy="; ".join(ctx.discrepancies) or None)  # fmt: skip

    def acknowledgement(self) -> NewMessage:
        return interrupted_reply()
