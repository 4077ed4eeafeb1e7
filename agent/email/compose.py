"""A queued reply as the email that goes out: from the shop's address, to the conversation's
own, a proper reply in its thread (In-Reply-To, References, the subject kept with Re:), with a
plain-text part and a simple HTML one, and a Message-ID supportbot recognises when the
customer answers it."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from agent.domain import utcnow
from agent.store.tables import EmailOutbox

_URL = re.compile(r"https?://[^\s<>\"]+")


def to_html(text: str) -> str:
    """The reply's text as simple HTML: paragraphs, line breaks, links."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block.strip())
        escaped = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        if escaped:
            paragraphs.append(f"<p>{escaped.replace(chr(10), '<br>')}</p>")
    body = "\n".join(paragraphs)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family: sans-serif; line-height: 1.4">{body}</body></html>'
    )


def compose(row: EmailOutbox, *, from_name: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((from_name, row.from_address))
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at or utcnow())
    message["Message-ID"] = row.message_id
    if row.in_reply_to:
        message["In-Reply-To"] = row.in_reply_to
    if row.references:
        message["References"] = row.references
    if row.kind != "staff":
        # RFC 3834: an automatic answer, so that other automatic responders do not answer it.
        message["Auto-Submitted"] = "auto-replied"
    message.set_content(row.text)
    message.add_alternative(to_html(row.text), subtype="html")
    return message
