"""One-time confirmation links of changes proposed by email. Opening the link (GET) shows the
change and a Confirm button and changes nothing: mail scanners and link previews fetch every
link in a message. Only the button's POST confirms, once: the link is signed, expires with the
proposal, names its action, and is marked used in the transaction that carries the change
out. The outcome goes to the customer by email, like every answer in their conversation."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from agent.api.deps import ActionId, StateDep
from agent.config import Settings
from agent.domain import ActionStatus, utcnow
from agent.email.replies import enqueue_turn
from agent.engine.port import Decision
from agent.errors import ActionDecided, Conflict, NotFound, SupportbotError
from agent.features.email_links import LinkRefused, read_link
from agent.store import email as mail_store
from agent.store import proposals
from agent.store.conversations import lock_conversation
from agent.store.db import transaction

router = APIRouter(prefix="/email", include_in_schema=False)

Token = Annotated[str, Query(alias="t", max_length=600)]
DECIDED_BY = "customer (email link)"
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def _page(settings: Settings, title: str, body: str, status: int = 200) -> HTMLResponse:
    company = html.escape(settings.company_name)
    text = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · {company}</title>"
        "<style>body{font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
        "line-height:1.5}.change{border:1px solid #ccc;border-radius:6px;padding:1rem;"
        "white-space:pre-wrap}button{font-size:1.1rem;padding:.5rem 1.5rem;margin-top:1rem}"
        "</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}<p><small>{company} support</small></p>"
        "</body></html>"
    )
    headers = {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
    }
    return HTMLResponse(text, status_code=status, headers=headers)


def _secret(settings: Settings) -> str:
    if settings.email_link_secret is None:
        raise LinkRefused("Confirmation links are not enabled.")
    return settings.email_link_secret.get_secret_value()


def _usable(session: Session, link_id: str, action_id: str) -> Any:
    link = mail_store.get_link(session=session, link_id=link_id)
    if link is None or link.action_id != action_id:
        raise LinkRefused("This link is not valid.")
    if link.used_at is not None:
        raise LinkRefused("This link was used already; each link works once.")
    if link.expires_at <= utcnow():
        raise LinkRefused("This link has expired, so the change was not made.")
    return link


def _check(state: Any, action_id: str, token: str) -> tuple[str, str, str]:
    """(link id, conversation id, the change's summary), or LinkRefused."""
    link_id = read_link(_secret(state.settings), token, action_id=action_id)
    with Session(state.runtime.engine) as session:
        link = _usable(session, link_id, action_id)
        action = proposals.get_action(session=session, action_id=action_id)
        if action is None or action.conversation_id != link.conversation_id:
            raise LinkRefused("This link is not valid.")
        status = proposals.current_status(action)
        if status != ActionStatus.PROPOSED:
            raise LinkRefused(f"This change was settled already ({status.value}).")
        return link_id, link.conversation_id, action.summary


@router.get("/actions/{action_id}", response_class=HTMLResponse)
async def show_change(action_id: ActionId, state: StateDep, t: Token) -> HTMLResponse:
    """The change and a Confirm button; nothing changes here."""
    try:
        _, _, summary = await anyio.to_thread.run_sync(_check, state, action_id, t)
    except LinkRefused as refused:
        return _page(
            state.settings, "Nothing was changed", f"<p>{html.escape(str(refused))}</p>", 410
        )
    body = (
        f'<p>The change to confirm:</p><div class="change">{html.escape(summary)}</div>'
        f'<form method="post" action="?t={html.escape(t)}"><button type="submit">Confirm'
        "</button></form><p>If this is not what you want, close this page: nothing changes "
        "unless you confirm. You can also reply to our email.</p>"
    )
    return _page(state.settings, "Confirm your change", body)


@dataclass(frozen=True)
class LinkAdmission:
    """Admits a link's confirmation in its turn's first transaction: the link is used there,
    once, or refused."""

    link_id: str
    action_id: str
    conversation_id: str
    speaker: str = DECIDED_BY

    def __call__(self, session: Session) -> Any:
        link = mail_store.get_link(session=session, link_id=self.link_id, lock=True)
        if link is None or link.used_at is not None or link.action_id != self.action_id:
            raise Conflict("This link was used already; each link works once.")
        conversation = lock_conversation(session=session, conversation_id=self.conversation_id)
        mail_store.use_link(session=session, link=link)
        return conversation


@router.post("/actions/{action_id}", response_class=HTMLResponse)
async def confirm_change(action_id: ActionId, state: StateDep, t: Token) -> HTMLResponse:
    """Confirm the change: it runs now, every rule checked again, and the outcome is sent by
    email."""
    settings = state.settings
    try:
        link_id, conversation_id, _ = await anyio.to_thread.run_sync(_check, state, action_id, t)
    except LinkRefused as refused:
        return _page(settings, "Nothing was changed", f"<p>{html.escape(str(refused))}</p>", 410)
    admit = LinkAdmission(link_id, action_id, conversation_id)
    decision = Decision(action_id, True, DECIDED_BY)
    try:
        result = await state.runtime.agent.turn(
            conversation_id, decision, admit=admit
        ).result_async()
    except ActionDecided:
        return _page(
            settings, "Nothing was changed", "<p>This change was settled already.</p>", 409
        )
    except (SupportbotError, NotFound) as exc:
        return _page(settings, "Nothing was changed", f"<p>{html.escape(str(exc))}</p>", 409)

    def queue() -> None:
        with transaction(state.runtime.engine) as session:
            enqueue_turn(settings, session, result, key=f"link:{link_id}")

    await anyio.to_thread.run_sync(queue)
    settled = result.settled[1].status if result.settled else None
    if settled == ActionStatus.EXECUTED:
        title, said = "Done", "Your change was made."
    elif settled == ActionStatus.EXPIRED:
        title, said = "Nothing was changed", "This change had expired, so it was not made."
    else:
        title, said = "Nothing was changed", "The change could not be made."
    return _page(settings, title, f"<p>{said} We have sent you the details by email.</p>")
