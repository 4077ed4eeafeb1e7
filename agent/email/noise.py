"""Mail that must never be answered: auto-replies (out of office), bounces and delivery
reports, mailing lists and bulk mail, and our own messages coming back. Answering them makes
mail loops, so they are recorded and left alone (RFC 3834's rules for automatic responders)."""

from __future__ import annotations

from agent.email.parse import ParsedMail

_BULK = {"bulk", "list", "junk", "auto_reply"}
_DAEMONS = ("mailer-daemon@", "postmaster@", "noreply@", "no-reply@", "donotreply@")


def why_not_answered(mail: ParsedMail, shop_address: str) -> str | None:
    """Why this message gets no answer, or None for a person's message."""
    auto = mail.header("Auto-Submitted").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"automatic message (Auto-Submitted: {auto[:40]})"
    precedence = mail.header("Precedence").strip().lower()
    if precedence in _BULK:
        return f"bulk or list mail (Precedence: {precedence})"
    if mail.header("List-Id") or mail.header("List-Unsubscribe"):
        return "mailing-list mail (List-Id)"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if mail.header(name):
            return f"automatic reply ({name})"
    suppress = mail.header("X-Auto-Response-Suppress").strip().lower()
    out_of_office = mail.subject.lower().startswith(("automatic reply", "auto:", "out of office"))
    if suppress in ("all", "oof", "autoreply") and out_of_office:
        return "automatic reply (out of office)"
    try:
        ctype = mail.headers.get_content_type().lower() if mail.headers is not None else ""
    except Exception:
        ctype = ""
    if ctype == "multipart/report":
        return "delivery or read report (multipart/report)"
    if not mail.sender:
        return "no single sender address to answer"
    if mail.sender.startswith(_DAEMONS):
        return f"mail system or no-reply sender ({mail.sender.split('@')[0]})"
    if mail.header("Return-Path").strip() == "<>":
        return "bounce (empty Return-Path)"
    if mail.sender == shop_address.lower():
        return "our own address (a loop)"
    return None
