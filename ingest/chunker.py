"""Structure-aware chunking: sections first, then a token budget with overlap.

A section is cut into paragraphs, an over-long paragraph into sentences, an over-long sentence
into word runs; the units are packed into chunks of at most `max_tokens`, each new chunk
starting with the last units of the previous one (up to `overlap_tokens`) for context.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest.documents import Document
from kb.types import Chunk, context_text

TokenCounter = Callable[[str], int]
CHUNKER_VERSION = "1"  # part of the content hash: a new chunker re-ingests everything
# What `context_text` made of a chunk when CHUNKER_VERSION was last set.
HEADER_FORMAT = "{title} > {section}: {text}"

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
RESERVED = {"source", "origin", "doc_hash", "title", "section", "url", "page", "chunk", "format",
            "ingested_at"}  # fmt: skip


def approximate_tokens(text: str) -> int:
    """About 1.3 word pieces per word: a stand-in when no tokenizer is at hand."""
    return int(len(text.split()) * 1.3) + 1


def _units(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count(paragraph) <= max_tokens:
            units.append(paragraph)
            continue
        for sentence in _SENTENCE.split(paragraph):
            if count(sentence) <= max_tokens:
                units.append(sentence)
                continue
            words = sentence.split()
            step = max(1, int(max_tokens / 1.5))  # words per piece, with room for long words
            units.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
    return units


def split_text(text: str, max_tokens: int, overlap_tokens: int, count: TokenCounter) -> list[str]:
    units = _units(text, max_tokens, count)
    sizes = [count(u) for u in units]
    chunks: list[str] = []
    current: list[int] = []  # indices into units
    total = 0
    for index, size in enumerate(sizes):
        if current and total + size > max_tokens:
            chunks.append("\n\n".join(units[i] for i in current))
            carried: list[int] = []
            carried_total = 0
            for i in reversed(current):
                if (
                    carried_total + sizes[i] > overlap_tokens
                    or carried_total + sizes[i] + size > max_tokens
                ):
                    break
                carried.insert(0, i)
                carried_total += sizes[i]
            current, total = carried, carried_total
        current.append(index)
        total += size
    if current:
        chunks.append("\n\n".join(units[i] for i in current))
    return chunks


def chunk_format() -> str:
    """Names what is embedded for a chunk: the chunker's version, and the header format when it
    differs from the one that version was set with. Part of every document's hash, so changing
    either re-embeds every document on its next ingest (existing indexes upgrade in place)."""
    header = context_text("{text}", "{title}", "{section}")
    if header == HEADER_FORMAT:
        return CHUNKER_VERSION
    return f"{CHUNKER_VERSION}+{hashlib.sha1(header.encode()).hexdigest()[:8]}"


def chunk_id(source: str, index: int) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:16]}-{index:04d}"


def _metadata_value(value: Any) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def chunk_document(
    doc: Document,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    count: TokenCounter = approximate_tokens,
    doc_hash: str | None = None,
) -> list[Chunk]:
    doc_hash = doc_hash or doc.content_hash()
    extra = {
        k: _metadata_value(v)
        for k, v in doc.metadata.items()
        if k not in RESERVED and v is not None
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    chunks: list[Chunk] = []
    for section in doc.sections:
        # Room for the "Title > Section: " prefix that is embedded with the text.
        budget = max(32, max_tokens - count(context_text("", doc.title, section.heading)))
        for text in split_text(section.text, budget, overlap_tokens, count):
            metadata: dict[str, Any] = {
                **extra,
                "source": doc.source,
                "origin": doc.origin,
                "doc_hash": doc_hash,
                "title": doc.title,
                "section": section.heading,
                "format": doc.format,
                "chunk": len(chunks),
                "ingested_at": now,
            }
            if doc.url:
                metadata["url"] = doc.url
            if section.page is not None:
                metadata["page"] = section.page
            chunks.append(
                Chunk(
                    id=chunk_id(doc.source, len(chunks)),
                    text=text,
                    embed_text=context_text(text, doc.title, section.heading),
                    metadata=metadata,
                )
            )
    return chunks
