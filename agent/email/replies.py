"""What a turn's answer says by email, queued in the outbox: the assistant's words; a proposed
change set apart with its summary, how to confirm it (reply "yes", or a one-time link) and
that anything else declines it; and, when the conversation went to a person, that a person
will answer."""

from __future__ import annotations

from sqlmodel import Session

from agent.config import Settings
from agent.domain import ConversationState
from agent.engine.consent import PROMPTS, confirmation_prompt
from agent.engine.events import TurnResult
from agent.engine.port import PendingAction
from agent.features.email_links import sign_link
from agent.store import email as mail_store
from agent.store.tables import EmailOutbox

RULE = "—" * 24
PERSON_WILL_ANSWER = "A member of our team will answer you by email; you don't need to write again."


def link_url(
    settings: Settings, session: Session, pending: PendingAction, conversation_id: str
) -> str | None:
    """A one-time confirmation link for `pending`, or None when links are not set up."""
    secret, base = settings.email_link_secret, settings.email_link_base_url
    if secret is None or not base:
        return None
    link = mail_store.create_link(
        session=session,
        action_id=pending.id,
        conversation_id=conversation_id,
        expires_at=pending.expires_at,
    )
    token = sign_link(
        secret.get_secret_value(),
        link_id=link.id,
        action_id=pending.id,
        expires=pending.expires_at.timestamp(),
    )
    return f"{base.rstrip('/')}/email/actions/{pending.id}?t={token}"


def proposal_block(pending: PendingAction, url: str | None) -> str:
    expires = pending.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    how = 'reply to this email with "yes"'
    if url:
        how += f", or confirm on this page:\n{url}"
    return (
        f"{RULE}\nThe change to confirm:\n\n{pending.summary}\n\n"
        f"To go ahead, {how}\n"
        f"Any other reply declines it. It expires on {expires}.\n{RULE}"
    )


def turn_text(settings: Settings, session: Session, result: TurnResult) -> str:
    """The email for a turn's answer (a link for a proposal is created with it)."""
    text = result.reply.strip()
    pending = result.pending_action
    if pending is not None:
        said = text
        for language in PROMPTS:  # the prompt is in the customer's language
            said = said.removesuffix(confirmation_prompt(pending.summary, language))
        said = said.strip()
        url = link_url(settings, session, pending, result.conversation_id)
        text = "\n\n".join(p for p in (said, proposal_block(pending, url)) if p)
    if result.state == ConversationState.HUMAN:
        text = f"{text}\n\n{PERSON_WILL_ANSWER}" if text else PERSON_WILL_ANSWER
    return text


def enqueue_turn(
    settings: Settings, session: Session, result: TurnResult, *, key: str
) -> EmailOutbox | None:
    """Queue the email for a turn's answer, once per `key`."""
    if mail_store.enqueue_exists(session=session, key=key):
        return None
    return mail_store.enqueue(
        session=session,
        key=key,
        conversation_id=result.conversation_id,
        text=turn_text(settings, session, result),
    )
