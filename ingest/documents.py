"""A loaded document, before chunking."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


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

    def content_hash(self) -> str:
        payload = json.dumps(
            [
                self.title,
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
