"""The knowledge base facade: hybrid search over Chroma (dense) and BM25 (lexical)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kb.chroma_store import ChromaStore
from kb.embedder import Embedder
from kb.fusion import fuse, identifiers
from kb.lexical import LexicalIndex
from kb.normalise import known_stems
from kb.passages import SectionKey, Sections, section_key
from kb.types import Chunk, DocumentInfo, Hit, stored_context

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "lexical"]
# Every index was built by this model before indexes named theirs.
FIRST_MODEL = "all-MiniLM-L6-v2"


class EncoderMismatch(RuntimeError):
    """The index holds another model's vectors: a query's embedding cannot be compared with
    them until the index is re-embedded (`supportbot kb reindex`, or the next ingest)."""


@dataclass(frozen=True)
class KBConfig:
    data_dir: Path
    chroma_url: str | None = None
    collection: str = "kb_chunks"
    candidates: int = 30
    dense_threshold: float = 0.35
    fusion: Literal["rrf", "convex"] = "convex"
    lexical_weight: float = 0.3
    # BM25 counts only within this distance of the best cosine (None: everywhere): kb/fusion.py.
    lexical_window: float | None = 0.1
    # A hit in a section of at most this many tokens shows the whole section (0: the chunk
    # alone), and the section's other chunks are not listed again: kb/passages.py.
    passage_tokens: int = 320
    embedding_batch_size: int = 64
    lexical_refresh_seconds: float = 2.0
    # Misspelt words corrected (both searches), one spelling per word (BM25): kb/normalise.py.
    normalise_queries: bool = True
    encoder: Literal["onnx", "onnx-int8", "torch"] = "onnx"  # kb/embedder.py
    encoder_cache: Path | None = None
    encoder_socket: str | None = None  # an encoder process to encode through (serve's)

    @classmethod
    def from_settings(cls, settings: Any) -> KBConfig:
        """Reads the `kb_*` fields of the application's settings (duck-typed on purpose:
        the knowledge base knows nothing of the agent)."""
        return cls(
            data_dir=Path(settings.data_dir),
            chroma_url=settings.chroma_url,
            collection=settings.kb_collection,
            candidates=settings.kb_candidates,
            dense_threshold=settings.kb_dense_threshold,
            fusion=settings.kb_fusion,
            lexical_weight=settings.kb_lexical_weight,
            lexical_window=getattr(settings, "kb_lexical_window", 0.1),
            passage_tokens=getattr(settings, "kb_passage_tokens", 320),
            embedding_batch_size=settings.embedding_batch_size,
            encoder=getattr(settings, "encoder", "onnx"),
            encoder_cache=getattr(settings, "encoder_cache", None),
            encoder_socket=getattr(settings, "encoder_socket", None),
        )


class KnowledgeBase:
    """`KnowledgeBase.open(settings).search("how do I return a kettle?", k=5)`."""

    def __init__(self, config: KBConfig, store: ChromaStore, embedder: Embedder) -> None:
        self.config = config
        self.store = store
        self.embedder = embedder
        self._lexical: LexicalIndex | None = None
        self._lexical_meta: dict[str, tuple[str, dict[str, Any]]] = {}
        self._sections = Sections(())
        self._lexical_revision = -1
        self._checked_at = 0.0
        self._vocabulary: set[str] | None = None
        self._lock = threading.Lock()
        self._mismatch: str | None = None
        self._mismatch_checked = float("-inf")

    @classmethod
    def open(cls, settings: Any, embedder: Embedder | None = None) -> KnowledgeBase:
        config = settings if isinstance(settings, KBConfig) else KBConfig.from_settings(settings)
        store = ChromaStore.open(
            path=config.data_dir / "chroma", url=config.chroma_url, collection=config.collection
        )
        return cls(
            config,
            store,
            embedder
            or Embedder(
                batch_size=config.embedding_batch_size,
                backend=config.encoder,
                cache_dir=config.encoder_cache,
                data_dir=config.data_dir,
                address=config.encoder_socket,
            ),
        )

    # -- writing (used by ingest) -----------------------------------------------------------

    def replace_documents(
        self,
        documents: Sequence[tuple[str, Sequence[Chunk]]],
        embeddings: np.ndarray[Any, Any],
        *,
        new_sources: set[str] | None = None,
    ) -> None:
        """Store documents' chunks (replacing older versions); `embeddings` rows follow the
        chunks in order."""
        self.store.replace_documents(
            documents, embeddings, new_sources=new_sources, model=self.embedder.name
        )
        self._lexical = None

    def index_model(self) -> str | None:
        """The embedding model whose vectors the index holds (None when it is empty)."""
        return self.store.model() or (FIRST_MODEL if self.store.count() else None)

    def encoder_mismatch(self) -> str | None:
        """Why the index cannot be searched with this encoder, or None when it can."""
        model = self.index_model()
        if model is None or model == self.embedder.name:
            return None
        return (
            f"the index holds vectors of {model}, the encoder is {self.embedder.name}: "
            "run `supportbot kb reindex` (or ingest) to re-embed it"
        )

    def reindex(self, *, skip: set[str] | None = None) -> int:
        """Re-embed every stored chunk with this encoder, from the text and context it was
        stored with (no source file is read), into a fresh collection that replaces the old
        one: vectors of two models are never mixed in one index. Documents whose source is in
        `skip` are dropped instead (an ingest about to embed them anew). Returns the number of
        chunks embedded."""
        rows = [r for r in self.store.all() if str(r[2].get("source", "")) not in (skip or ())]
        vectors = self.embedder.encode([stored_context(t, m) for _, t, m in rows])
        self.store.rebuild(rows, vectors, model=self.embedder.name)
        self._lexical = None
        self._mismatch_checked = float("-inf")
        return len(rows)

    def delete(self, source: str) -> int:
        removed = self.store.delete_source(source)
        self._lexical = None
        return removed

    # -- reading ----------------------------------------------------------------------------

    def documents(self) -> dict[str, DocumentInfo]:
        docs: dict[str, DocumentInfo] = {}
        stale: set[str] = set()
        for _id, _text, meta in self.store.all(include_documents=False):
            source = str(meta.get("source", ""))
            info = docs.get(source)
            if info is None:
                docs[source] = DocumentInfo(
                    source=source,
                    title=str(meta.get("title", "")),
                    origin=str(meta.get("origin", source)),
                    format=str(meta.get("format", "")),
                    doc_hash=str(meta.get("doc_hash", "")),
                    chunks=1,
                    url=meta.get("url"),
                )
            else:
                info.chunks += 1
                if info.doc_hash != meta.get("doc_hash"):
                    stale.add(source)
        for source in stale:  # an interrupted replacement: make the next ingest redo it
            docs[source].doc_hash = "stale"
        return docs

    def stats(self) -> dict[str, Any]:
        docs = self.documents()
        formats: dict[str, int] = {}
        for d in docs.values():
            formats[d.format] = formats.get(d.format, 0) + 1
        return {
            "documents": len(docs),
            "chunks": sum(d.chunks for d in docs.values()),
            "formats": formats,
            "store": self.config.chroma_url or str(self.config.data_dir / "chroma"),
            "collection": self.config.collection,
            "embedding_model": self.embedder.name,
            "index_embedding_model": self.index_model(),
            "reindex_needed": self.encoder_mismatch() is not None,
        }

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        filters: dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The k most relevant passages, or [] when nothing is relevant enough."""
        return self.search_many([query], k, filters=filters, mode=mode)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        filters: dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> list[list[Hit]]:
        """`search` for each query, in order: the queries are embedded in one encoder call
        (in batches of `embedding_batch_size`) and sent to the vector store together."""
        stripped = [q.strip() for q in queries]
        found: list[list[Hit]] = [[] for _ in stripped]
        live = [i for i, q in enumerate(stripped) if q]
        if not live or k <= 0:
            return found
        n = max(self.config.candidates, k)
        dense: list[list[tuple[str, str, dict[str, Any], float]]] = [[] for _ in live]
        if mode in ("hybrid", "dense"):
            self._check_encoder()
            asked = [stripped[i] for i in live]
            if self.config.normalise_queries:
                speller = self._lexical_index().speller
                asked = [speller.correct_text(q) for q in asked]
            embeddings = self.embedder.encode_queries(asked)
            # Texts and metadata come from the lexical index's copy of every chunk (current to
            # within `lexical_refresh_seconds`), not from Chroma with each query.
            self._lexical_index()
            dense = self._with_texts(
                self.store.query_many(embeddings, n, _where(filters), texts=False)
            )
        lexical: list[list[tuple[str, float]]] = [[] for _ in live]
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical_search([stripped[i] for i in live], n, filters)
        for j, i in enumerate(live):
            found[i] = self._ranked(stripped[i], k, dense[j], lexical[j])
        return found

    def _check_encoder(self) -> None:
        """Raises EncoderMismatch when the index holds another model's vectors (read with the
        lexical index's refresh, not with every search)."""
        now = time.monotonic()
        if now - self._mismatch_checked >= self.config.lexical_refresh_seconds:
            self._mismatch = self.encoder_mismatch()
            self._mismatch_checked = now
        if self._mismatch:
            raise EncoderMismatch(self._mismatch)

    def _with_texts(
        self, dense: list[list[tuple[str, str, dict[str, Any], float]]]
    ) -> list[list[tuple[str, str, dict[str, Any], float]]]:
        """Dense results with their chunks' text and metadata; a chunk written since the
        lexical index was read is fetched from the store (one that is gone is dropped)."""
        known = self._lexical_meta
        missing = {i for rows in dense for i, *_ in rows if i not in known}
        fetched = self.store.get(sorted(missing)) if missing else {}
        out = []
        for rows in dense:
            filled = []
            for chunk_id, _, _, score in rows:
                entry = known.get(chunk_id) or fetched.get(chunk_id)
                if entry is not None:
                    filled.append((chunk_id, entry[0], entry[1], score))
            out.append(filled)
        return out

    def _ranked(
        self,
        query: str,
        k: int,
        dense: list[tuple[str, str, dict[str, Any], float]],
        lexical: list[tuple[str, float]],
    ) -> list[Hit]:
        codes = identifiers(query)
        # Chunks that carry a code from the query verbatim (in their text, title or section).
        exact = {i for i, _ in lexical if codes and _contains_any(self._lexical_text(i), codes)}
        best_dense = max((s for *_, s in dense), default=0.0)
        if best_dense < self.config.dense_threshold and not exact:
            return []  # nothing relevant: better no answer than noise

        fused = fuse(
            [i for i, *_ in dense], lexical, method=self.config.fusion,
            lexical_weight=self.config.lexical_weight, dense_scores={i: s for i, *_, s in dense},
            lexical_window=self.config.lexical_window,
        )  # fmt: skip
        # A verbatim identifier match (a product or part code) outranks everything else.
        # They come first, in the order relevance gives them: the code picks the document,
        # the question picks the passage.
        ranked = [p for p in fused if p[0] in exact] + [p for p in fused if p[0] not in exact]
        # Text and metadata: from the dense results, else from the lexical index's copy.
        found = {i: (t, m) for i, t, m, _ in dense}
        dense_scores = {i: s for i, *_, s in dense}
        lexical_scores = dict(lexical)
        hits: list[Hit] = []
        shown: set[SectionKey] = set()
        for chunk_id, score in ranked:
            if len(hits) == k:
                break
            text, meta = found.get(chunk_id) or self._lexical_meta[chunk_id]
            # A short section is shown whole, once, where its best chunk ranks.
            passage = self._sections.passage(meta, self.config.passage_tokens)
            if passage is not None:
                if section_key(meta) in shown:
                    continue
                shown.add(section_key(meta))
                text = passage
            hits.append(
                Hit(
                    text=text,
                    score=round(score, 4),
                    source=str(meta.get("source", "")),
                    title=str(meta.get("title", "")),
                    section=str(meta.get("section", "")),
                    url=meta.get("url"),
                    page=meta.get("page"),
                    metadata=dict(meta),  # the index's copy stays as it is
                    dense_score=dense_scores.get(chunk_id),
                    lexical_score=lexical_scores.get(chunk_id),
                )
            )
        return hits

    # -- lexical index ----------------------------------------------------------------------

    def _lexical_search(
        self, queries: list[str], n: int, filters: dict[str, Any] | None
    ) -> list[list[tuple[str, float]]]:
        index = self._lexical_index()
        found = []
        for results in index.search_many(queries, n * 4 if filters else n):
            if filters:
                results = [
                    (i, s)
                    for i, s in results
                    if all(self._lexical_meta[i][1].get(k) == v for k, v in filters.items())
                ]
            found.append(results[:n])
        return found

    def _lexical_index(self) -> LexicalIndex:
        with self._lock:
            now = time.monotonic()
            index = self._lexical
            if index is not None and index.normalise != self.config.normalise_queries:
                index = None  # built for other settings
            if index is not None and now - self._checked_at < self.config.lexical_refresh_seconds:
                return index
            revision = self.store.revision()
            self._checked_at = now
            if index is None or revision != self._lexical_revision:
                rows = self.store.all()
                self._lexical_meta = {i: (t, m) for i, t, m in rows}
                self._sections = Sections(rows)
                index = LexicalIndex(
                    [i for i, _, _ in rows],
                    [stored_context(t, m) for _, t, m in rows],
                    normalise=self.config.normalise_queries,
                    known_stems=self._known_stems(),
                )
                self._lexical = index
                self._lexical_revision = revision
            return index

    def _known_stems(self) -> set[str]:
        """Stems of the whole words of the encoder's vocabulary: spelt right, even when no
        document uses them. Read from the model's folder, without loading the model; once."""
        if self._vocabulary is None:
            folder = str(getattr(self.embedder, "model_path", "") or "")
            lines: list[str] = []
            if folder:
                with contextlib.suppress(OSError):
                    lines = (Path(folder) / "vocab.txt").read_text(encoding="utf-8").splitlines()
            self._vocabulary = known_stems(w for w in lines if w.isalpha() and w.islower())
        return self._vocabulary

    def _lexical_text(self, chunk_id: str) -> str:
        text, meta = self._lexical_meta.get(chunk_id, ("", {}))
        return stored_context(text, meta)


def _contains_any(text: str, codes: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(code.lower() in lowered for code in codes)


def _where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    if not filters:
        return None
    if len(filters) == 1:
        key, value = next(iter(filters.items()))
        return {key: value}
    return {"$and": [{k: v} for k, v in filters.items()]}
