"""What the knowledge base stores and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One indexed passage. `embed_text` carries its context: "Breadcrumb > Title > Section:
    text"."""

    id: str
    text: str
    embed_text: str
    metadata: dict[str, Any]


@dataclass
class Hit:
    text: str
    score: float  # fused relevance, 0..1
    source: str
    title: str
    section: str = ""
    url: str | None = None
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None  # cosine similarity, when dense search found it
    lexical_score: float | None = None  # BM25 score, when lexical search found it


@dataclass
class DocumentInfo:
    source: str
    title: str
    origin: str
    format: str
    doc_hash: str
    chunks: int
    url: str | None = None


def context_text(text: str, title: str, section: str, breadcrumb: str = "") -> str:
    """The text that is embedded and indexed: the passage with its document context (where the
    document sits in the help centre, its title, the heading path)."""
    where = " > ".join(p for p in (breadcrumb, title, section) if p)
    return f"{where}: {text}" if where else text


def stored_context(text: str, metadata: dict[str, Any]) -> str:
    """`context_text` of a stored chunk, from the metadata it was stored with."""
    return context_text(
        text,
        str(metadata.get("title", "")),
        str(metadata.get("section", "")),
        str(metadata.get("breadcrumb", "")),
    )
