"""What of an email is the customer's new words: HTML read as text, and quoted history,
signatures and forwarded blocks taken off (mail-parser-reply, a maintained reply parser, plus
the forward markers of the common mail programs)."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from mailparser_reply import EmailReplyParser

# Languages whose "On … wrote:" lines and signature phrases the parser knows, for the
# customers a shop usually has; English is always included.
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "da", "sv", "pl", "cs"]
_PARSER = EmailReplyParser(languages=_LANGUAGES)

# Where a forwarded message starts (Gmail, Apple Mail, Outlook, Thunderbird), whole line.
_FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|"
    r"Mensaje reenviado|Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}|"
    r"Begin forwarded message:|Anfang der weitergeleiteten Nachricht:|"
    r"_{10,}|"  # Outlook's line above "From: … Sent: …"
    r"-{5,}\s*Original Message\s*-{5,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# Outlook's reply header, without a separator line above it.
_OUTLOOK_HEADER = re.compile(r"^\s*From:\s.+\n\s*(?:Sent|Date):\s.+$", re.MULTILINE)
_FORWARDED_WORDS = re.compile(r"forward|weitergeleitet|transféré|reenviado", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^\s*>.*$\n?", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """An HTML part as plain text: no scripts or styles, quoted history (Gmail's, Outlook's,
    Apple Mail's and Thunderbird's blockquotes) left out, block elements on lines of their
    own."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "meta"]):
        tag.decompose()
    for tag in soup.select(
        "blockquote, div.gmail_quote, div.gmail_extra, div.moz-cite-prefix, "
        "div#appendonsend, div#divRplyFwdMsg, div.yahoo_quoted"
    ):
        tag.decompose()
    for tag in soup.find_all(["br"]):
        tag.replace_with("\n")
    for tag in soup.find_all(["p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"]):
        tag.insert_after("\n")
    text = soup.get_text()
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def new_text(text: str) -> tuple[str, bool]:
    """The customer's own words in a plain-text body, and whether a forwarded message followed
    them (its text is left out: the customer did not write it)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    forwarded = False
    marker = _FORWARD.search(text)
    if marker is not None:
        forwarded = _FORWARDED_WORDS.search(marker.group(0)) is not None
        text = text[: marker.start()]
    outlook = _OUTLOOK_HEADER.search(text)
    if outlook is not None:
        text = text[: outlook.start()]
    try:
        replies = _PARSER.read(text).replies
        body = replies[0].body if replies else text
    except Exception:  # a parser fault never loses the message: keep it as it is
        body = text
    body = _QUOTED_LINE.sub("", body)
    return _BLANK_RUNS.sub("\n\n", body).strip(), forwarded
