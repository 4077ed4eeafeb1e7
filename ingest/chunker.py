"""Structure-aware chunking: sections first, then a token budget with overlap.

A section is cut into paragraphs; an over-long table between its rows (each piece repeating
the header row), an over-long list between its items (each piece repeating the line that
introduces it), any other over-long paragraph into sentences, an over-long sentence into word
runs. The units are packed into chunks of at most `max_tokens`, each new chunk starting with
the last units of the previous one (up to `overlap_tokens`) for context. A table or list that
fits the budget is never cut: a question whose answer is a table gets the whole table.
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
# Chunk size and overlap in word pieces (settings kb_chunk_tokens, kb_chunk_overlap): 128 found
# the banking tuning half's answers best of 64-256 (bench/README.md, "Chunk size").
CHUNK_TOKENS = 128
CHUNK_OVERLAP = 24
CHUNKER_VERSION = "2"  # part of the content hash: a new chunker re-ingests everything
# What `context_text` made of a chunk when CHUNKER_VERSION was last set.
HEADER_FORMAT = "{breadcrumb} > {title} > {section}: {text}"

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,3}[.)])\s+\S")
RESERVED = {"source", "origin", "doc_hash", "title", "section", "url", "page", "chunk", "format",
            "ingested_at", "breadcrumb"}  # fmt: skip


def approximate_tokens(text: str) -> int:
    """About 1.3 word pieces per word: a stand-in when no tokenizer is at hand."""
    return int(len(text.split()) * 1.3) + 1


def _word_runs(text: str, max_tokens: int) -> list[str]:
    words = text.split()
    step = max(1, int(max_tokens / 1.5))  # words per piece, with room for long words
    return [" ".join(words[i : i + step]) for i in range(0, len(words), step)]


def _pack_lines(
    head: list[str], blocks: list[list[str]], max_tokens: int, count: TokenCounter
) -> list[str]:
    """Blocks of lines packed into pieces of at most `max_tokens`, each piece starting with
    `head`; a block too long even alone is cut into word runs."""
    head_size = sum(count(line) for line in head)
    room = max(1, max_tokens - head_size)
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for block in blocks:
        block_size = sum(count(line) for line in block)
        if current and size + block_size > room:
            pieces.append("\n".join(head + current))
            current, size = [], 0
        if block_size > room:
            pieces += ["\n".join([*head, run]) for run in _word_runs(" ".join(block), room)]
            continue
        current += block
        size += block_size
    if current:
        pieces.append("\n".join(head + current))
    return pieces


def _table_pieces(lines: list[str], max_tokens: int, count: TokenCounter) -> list[str] | None:
    """A Markdown table cut between rows, each piece with the header row and its rule; None
    when the lines are not a table."""
    if len(lines) < 3 or not all(line.lstrip().startswith("|") for line in lines):
        return None
    if not _TABLE_RULE.match(lines[1]):
        return None
    return _pack_lines(lines[:2], [[row] for row in lines[2:]], max_tokens, count)


def _list_pieces(lines: list[str], max_tokens: int, count: TokenCounter) -> list[str] | None:
    """A list cut between its items (an item keeps its continuation lines and sub-items), each
    piece with the lines that introduce the list; None when the lines are not a list."""
    first = next((i for i, line in enumerate(lines) if _LIST_ITEM.match(line)), None)
    if first is None:
        return None
    match = _LIST_ITEM.match(lines[first])
    assert match is not None
    indent = len(match.group(1))
    items: list[list[str]] = []
    for line in lines[first:]:
        item = _LIST_ITEM.match(line)
        if item and len(item.group(1)) <= indent:
            items.append([line])
        else:
            items[-1].append(line)
    if len(items) < 2:
        return None
    return _pack_lines(lines[:first], items, max_tokens, count)


def _units(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count(paragraph) <= max_tokens:
            units.append(paragraph)
            continue
        lines = [line for line in paragraph.splitlines() if line.strip()]
        pieces = _table_pieces(lines, max_tokens, count) or _list_pieces(lines, max_tokens, count)
        if pieces:
            units += pieces
            continue
        for sentence in _SENTENCE.split(paragraph):
            if count(sentence) <= max_tokens:
                units.append(sentence)
                continue
            units += _word_runs(sentence, max_tokens)
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
    header = context_text("{text}", "{title}", "{section}", "{breadcrumb}")
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
    max_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = CHUNK_OVERLAP,
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
        # Room for the "Breadcrumb > Title > Section: " prefix that is embedded with the text.
        header = context_text("", doc.title, section.heading, doc.breadcrumb)
        budget = max(32, max_tokens - count(header))
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
            if doc.breadcrumb:
                metadata["breadcrumb"] = doc.breadcrumb
            if section.page is not None:
                metadata["page"] = section.page
            chunks.append(
                Chunk(
                    id=chunk_id(doc.source, len(chunks)),
                    text=text,
                    embed_text=context_text(text, doc.title, section.heading, doc.breadcrumb),
                    metadata=metadata,
                )
            )
    return chunks
