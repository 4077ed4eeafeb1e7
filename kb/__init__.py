"""Retrieval: embedder, Chroma store (embedded or server), BM25, fusion, and the facade."""

from kb.knowledge_base import KBConfig, KnowledgeBase
from kb.types import Chunk, DocumentInfo, Hit, context_text

__all__ = ["Chunk", "DocumentInfo", "Hit", "KBConfig", "KnowledgeBase", "context_text"]
