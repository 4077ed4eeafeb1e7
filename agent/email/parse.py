"""An email as supportbot reads it: who it claims to be from, how it threads, the customer's
new words, their photos, and the other attachments by name and size only. Never raises:
malformed MIME (bad headers, unknown charsets, broken base64, parts missing) is read as far as
it goes, and what cannot be read is left out."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

from agent.email.cleaning import html_to_text, new_text
from agent.features.attachments import Upload, sniff

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_RE_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|fwd?|wg|tr|rv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_TOKEN = re.compile(r"\[#([A-Z2-9]{8})\]")


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass
class ParsedMail:
    message_id: str
    sender: str  # the From address, lower-case ("" when there is none or several)
    sender_name: str
    recipients: list[str]
    subject: str
    in_reply_to: list[str]
    references: list[str]
    text: str  # the customer's new words
    forwarded: bool  # a forwarded message followed them (left out)
    images: list[Upload] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    headers: Message | None = None
    defects: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        """The subject without Re:/Fwd: prefixes and our conversation token."""
        return _TOKEN.sub("", _RE_PREFIX.sub("", self.subject)).strip()

    @property
    def token(self) -> str | None:
        """The conversation token of our replies' subjects ("[#K7Q2M9XD]"), if any."""
        found = _TOKEN.search(self.subject)
        return found.group(1) if found else None

    def header(self, name: str) -> str:
        if self.headers is None:
            return ""
        try:
            value = self.headers.get(name)
            return _decoded(value) if value is not None else ""
        except Exception:
            return ""


def _decoded(value: object) -> str:
    """A header as text, its encoded words decoded (undecodable ones as they are)."""
    text = str(value)
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def _text_of(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return _decoded(name)[:200] if name else None


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    return disposition == "attachment" or (disposition != "inline" and bool(_filename(part)))


def parse(raw: bytes) -> ParsedMail:
    """Read `raw` (the message as it arrived); whatever is wrong with it, a ParsedMail."""
    try:
        message = message_from_bytes(raw, policy=policy.compat32)
    except Exception:  # pragma: no cover - the parser is lenient; this is the last resort
        message = Message()
    defects = [type(d).__name__ for d in getattr(message, "defects", [])]
    mail = ParsedMail(
        message_id="",
        sender="",
        sender_name="",
        recipients=[],
        subject="",
        in_reply_to=[],
        references=[],
        text="",
        forwarded=False,
        headers=message,
        defects=defects,
    )
    ids = _ids(mail.header("Message-ID"))
    # A message without an id of its own gets one from its bytes: the same message stored
    # twice is still one.
    mail.message_id = ids[0] if ids else f"<{hashlib.sha256(raw).hexdigest()}@no-message-id>"
    froms = getaddresses([mail.header("From")]) if mail.header("From") else []
    addresses = [a for _, a in froms if "@" in a]
    if len(addresses) == 1:  # several From addresses: no one sender to answer
        mail.sender_name = (froms[0][0] or "")[:100]
        mail.sender = addresses[0].strip().lower()[:320]
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        value = mail.header(name)
        if value:
            mail.recipients += [a.lower() for _, a in getaddresses([value]) if "@" in a]
    mail.subject = " ".join(mail.header("Subject").split())[:500]
    mail.in_reply_to = _ids(mail.header("In-Reply-To"))
    mail.references = _ids(mail.header("References"))
    _read_body(message, mail)
    return mail


def _read_body(message: Message, mail: ParsedMail) -> None:
    plain: list[str] = []
    html: list[str] = []
    try:
        parts = list(message.walk())
    except Exception:
        parts = [message]
    for part in parts:
        try:
            ctype = (part.get_content_type() or "text/plain").lower()
        except Exception:
            ctype = "application/octet-stream"
        if part.is_multipart():
            continue
        if ctype == "message/rfc822" or _inside_attached_message(part, message):
            continue
        if ctype.startswith("image/") and (_is_attachment(part) or not part.get("Content-ID")):
            data = _bytes_of(part)
            name = _filename(part) or f"photo{len(mail.images) + 1}"
            if data is not None and sniff(data) is not None:
                mail.images.append(Upload(name, ctype, data))
            else:
                mail.attachments.append(Attachment(name, ctype, len(data or b"")))
            continue
        if _is_attachment(part):
            data = _bytes_of(part)
            mail.attachments.append(
                Attachment(_filename(part) or "attachment", ctype, len(data or b""))
            )
            continue
        if ctype == "text/plain":
            plain.append(_text_of(part))
        elif ctype == "text/html":
            html.append(_text_of(part))
    for part in parts:  # attached messages (forwarded as attachments): named, never read
        if _safe_type(part) == "message/rfc822":
            mail.attachments.append(
                Attachment(
                    _filename(part) or "forwarded message",
                    "message/rfc822",
                    len(str(part)) if part else 0,
                )
            )
    body = "\n\n".join(p for p in plain if p.strip())
    if not body.strip() and html:
        body = "\n\n".join(html_to_text(h) for h in html)
    mail.text, mail.forwarded = new_text(body)


def _safe_type(part: Message) -> str:
    try:
        return (part.get_content_type() or "").lower()
    except Exception:
        return ""


def _inside_attached_message(part: Message, root: Message) -> bool:
    """Whether `part` belongs to a message attached to `root` (message/rfc822)."""
    for candidate in root.walk():
        if candidate is part:
            return False
        if _safe_type(candidate) == "message/rfc822":
            payload = candidate.get_payload()
            inner = payload if isinstance(payload, list) else [payload]
            for message in inner:
                if isinstance(message, Message) and any(p is part for p in message.walk()):
                    return True
    return False


def _bytes_of(part: Message) -> bytes | None:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return None
    return payload if isinstance(payload, bytes) else None


def address_of(text: str) -> str:
    """The address in a header value like 'Acme <shop@acme.example>', lower-case."""
    return parseaddr(text)[1].strip().lower()
