"""Retrieval: embedder, Chroma store (embedded or server), BM25, fusion, and the facade.

The facade is imported when first asked for, so that a process that only encodes
(kb.encoder_process) loads neither Chroma nor BM25."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kb.types import Chunk, DocumentInfo, Hit, context_text

if TYPE_CHECKING:
    from kb.knowledge_base import KBConfig, KnowledgeBase

__all__ = ["Chunk", "DocumentInfo", "Hit", "KBConfig", "KnowledgeBase", "context_text"]


def __getattr__(name: str) -> Any:
    if name in ("KBConfig", "KnowledgeBase"):
        from kb import knowledge_base

        return getattr(knowledge_base, name)
    raise AttributeError(f"module 'kb' has no attribute {name!r}")
