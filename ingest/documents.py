"""A loaded document, before chunking."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

# Words of a record id that name no place: "doc_cards_gold_003" -> "cards gold".
_GENERIC_ID_WORDS = frozenset({"doc", "docs", "document", "article", "page", "id", "kb"})
_HEX = re.compile(r"[0-9a-f]{6,}")
_HASH_ID = re.compile(r"[0-9a-f]+(?:-[0-9a-f]+)*", re.IGNORECASE)  # a UUID or a digest


class LoadError(Exception):
    """A file (or record) that cannot be ingested; the message says why."""


@dataclass
class Section:
    heading: str  # heading path, e.g. "Returns > Damaged items"; "" before the first heading
    text: str
    page: int | None = None


@dataclass
class Document:
    source: str  # identity: file path, or record id for JSON Lines
    origin: str  # the file it came from (what --prune compares against)
    title: str
    format: str
    sections: list[Section]
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Where the document sits in the help centre ("business checking accounts beige"), for the
    # context each chunk is embedded and indexed with: a page's title often does not name the
    # product it is about ("Security: Dual Authorization"), its place does.
    breadcrumb: str = ""

    def content_hash(self) -> str:
        payload = json.dumps(
            [
                self.title,
                self.breadcrumb,
                self.url,
                self.metadata,
                [(s.heading, s.text, s.page) for s in self.sections],
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def is_empty(self) -> bool:
        return not any(s.text.strip() for s in self.sections)


def breadcrumb_text(value: Any) -> str:
    """A breadcrumb given by a document ("Cards > Gold", or a list of names), as one line."""
    if isinstance(value, list | tuple):
        return " > ".join(str(v).strip() for v in value if str(v).strip())
    return " ".join(str(value or "").split())


def id_words(identifier: str) -> str:
    """The words of a readable record id, which help centres' exports make of the article's
    place: "doc_business_checking_accounts_beige_005" -> "business checking accounts beige".
    Numbers, hashes and generic words are dropped; "" when no word is left (a UUID)."""
    if _HASH_ID.fullmatch(identifier.strip()):
        return ""
    words = [
        w
        for w in re.split(r"[\W_]+", identifier.lower())
        if w.isalpha() and w not in _GENERIC_ID_WORDS and not _HEX.fullmatch(w)
    ]
    return " ".join(words)
