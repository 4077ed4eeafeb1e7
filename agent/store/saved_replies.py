"""Saved replies: canned answers staff pick on the desk and edit before sending."""

from __future__ import annotations

from sqlmodel import Session, col, select

from agent.errors import Conflict, InvalidInput, NotFound
from agent.store.tables import SavedReply

TITLE_MAX, TEXT_MAX = 100, 4000


def list_replies(*, session: Session) -> list[SavedReply]:
    return list(session.exec(select(SavedReply).order_by(col(SavedReply.title))).all())


def add_reply(*, session: Session, title: str, text: str, created_by: str) -> SavedReply:
    title, text = " ".join((title or "").split()), (text or "").strip()
    if not title or len(title) > TITLE_MAX:
        raise InvalidInput(f"A saved reply needs a title of 1-{TITLE_MAX} characters.")
    if not text or len(text) > TEXT_MAX:
        raise InvalidInput(f"A saved reply needs a text of 1-{TEXT_MAX} characters.")
    if session.exec(select(SavedReply).where(SavedReply.title == title)).first():
        raise Conflict(f"There is already a saved reply titled {title!r}.")
    reply = SavedReply(title=title, text=text, created_by=created_by[:100])
    session.add(reply)
    session.flush()
    return reply


def delete_reply(*, session: Session, reply_id: int) -> None:
    reply = session.get(SavedReply, reply_id)
    if reply is None:
        raise NotFound(f"Saved reply {reply_id} not found")
    session.delete(reply)
    session.flush()
