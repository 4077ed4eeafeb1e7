"""Chunk storage in Chroma: embedded (PersistentClient) or a Chroma server (HttpClient)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from kb.types import Chunk

log = logging.getLogger(__name__)

PAGE = 5000  # rows per `get` when reading the whole collection
UPSERT_BATCH = 4000  # below Chroma's maximum batch size
QUERY_BATCH = 1000  # query embeddings per Chroma call


REBUILDING = "__rebuilding"  # suffix of the collection a re-embedding fills before the swap


class ChromaStore:
    def __init__(self, client: Any, collection: str) -> None:
        self._client = client
        self._name = collection
        names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
        if collection not in names and collection + REBUILDING in names:
            # A re-embedding stopped between dropping the old collection and renaming the new.
            client.get_collection(collection + REBUILDING).modify(name=collection)
        self.collection = self._open(collection)

    def _open(self, name: str) -> Any:
        return self._client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    @classmethod
    def open(cls, *, path: Path | None, url: str | None, collection: str) -> ChromaStore:
        settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            client = chromadb.HttpClient(
                host=parsed.hostname or "localhost",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=settings)
        return cls(client, collection)

    def count(self) -> int:
        return int(self.collection.count())

    def revision(self) -> int:
        """Bumped by every write, so other processes know to rebuild their lexical index."""
        fresh = self._client.get_collection(self._name)
        return int((fresh.metadata or {}).get("revision", 0))

    def model(self) -> str | None:
        """The embedding model whose vectors this collection holds, as its writers named it."""
        fresh = self._client.get_collection(self._name)
        return (fresh.metadata or {}).get("embedding_model")

    def _bump(self, model: str | None = None) -> None:
        metadata = dict(self._client.get_collection(self._name).metadata or {})
        metadata["revision"] = int(metadata.get("revision", 0)) + 1
        if model:
            metadata["embedding_model"] = model
        self.collection.modify(metadata=metadata)

    def rebuild(
        self,
        rows: Sequence[tuple[str, str, dict[str, Any]]],
        embeddings: np.ndarray[Any, Any],
        *,
        model: str,
    ) -> None:
        """Replace the whole collection with `rows` (id, text, metadata) and their new
        `embeddings`, written by `model`: filled under another name, then swapped in, so the
        collection never holds vectors of two models (and may change dimensions)."""
        revision = self.revision()
        staging = self._name + REBUILDING
        with contextlib.suppress(Exception):  # left over from an interrupted rebuild
            self._client.delete_collection(staging)
        target = self._open(staging)
        for start in range(0, len(rows), UPSERT_BATCH):
            part = rows[start : start + UPSERT_BATCH]
            target.upsert(
                ids=[i for i, _, _ in part],
                embeddings=embeddings[start : start + len(part)],
                documents=[t for _, t, _ in part],
                metadatas=[m for _, _, m in part],
            )
        target.modify(metadata={"revision": revision + 1, "embedding_model": model})
        self._client.delete_collection(self._name)
        target.modify(name=self._name)
        self.collection = self._open(self._name)

    def replace_documents(
        self,
        documents: Sequence[tuple[str, Sequence[Chunk]]],
        embeddings: np.ndarray[Any, Any],
        *,
        new_sources: set[str] | None = None,
        model: str | None = None,
    ) -> None:
        """Write several documents' chunks in one upsert (rows of `embeddings` in order), then
        drop any older chunks of the replaced documents. Sources in `new_sources` are known to
        have no older chunks, which saves a look-up. `model` names the embedding model (kept
        with the collection)."""
        chunks = [c for _, doc_chunks in documents for c in doc_chunks]
        if chunks:
            for start in range(0, len(chunks), UPSERT_BATCH):
                part = chunks[start : start + UPSERT_BATCH]
                self.collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=embeddings[start : start + len(part)],
                    documents=[c.text for c in part],
                    metadatas=[c.metadata for c in part],
                )
        replaced = [s for s, _ in documents if s not in (new_sources or set())]
        if replaced:
            keep = {c.id for c in chunks}
            old = self.collection.get(where={"source": {"$in": replaced}}, include=[])
            stale = [i for i in old["ids"] if i not in keep]
            if stale:
                self.collection.delete(ids=stale)
        self._bump(model)

    def delete_source(self, source: str) -> int:
        ids = self.collection.get(where={"source": source}, include=[])["ids"]
        if ids:
            self.collection.delete(ids=ids)
            self._bump()
        return len(ids)

    def query(
        self, embedding: np.ndarray[Any, Any], n: int, where: dict[str, Any] | None
    ) -> list[tuple[str, str, dict[str, Any], float]]:
        """(id, text, metadata, cosine similarity) for the n nearest chunks."""
        return self.query_many(np.asarray([embedding]), n, where)[0]

    def query_many(
        self,
        embeddings: np.ndarray[Any, Any],
        n: int,
        where: dict[str, Any] | None,
        *,
        texts: bool = True,
    ) -> list[list[tuple[str, str, dict[str, Any], float]]]:
        """`query` for each row of `embeddings`, sent to Chroma QUERY_BATCH rows at a time.
        `texts=False`: ids and similarities only (text "" and metadata {}), for a caller that
        has the texts already: reading them is most of what a query costs (2.0 → 0.7 ms)."""
        # No count() first: Chroma returns what it has when asked for more (and [] when the
        # collection is empty), and counting cost a round trip per search.
        if len(embeddings) == 0:
            return []
        include = ["documents", "metadatas", "distances"] if texts else ["distances"]
        found: list[list[tuple[str, str, dict[str, Any], float]]] = []
        for start in range(0, len(embeddings), QUERY_BATCH):
            result = self.collection.query(
                query_embeddings=list(embeddings[start : start + QUERY_BATCH]),
                n_results=n,
                where=where or None,
                include=include,  # type: ignore[arg-type]
            )
            rows = len(result["ids"])
            for ids, docs, metas, dists in zip(
                result["ids"],
                result.get("documents") or [None] * rows,
                result.get("metadatas") or [None] * rows,
                result["distances"],  # type: ignore[arg-type]
                strict=True,
            ):
                docs = docs or [""] * len(ids)
                metas = metas or [{}] * len(ids)
                found.append([
                    (i, d or "", dict(m or {}), 1.0 - float(dist))
                    for i, d, m, dist in zip(ids, docs, metas, dists, strict=True)
                ])  # fmt: skip
        return found

    def get(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Text and metadata of the chunks with these ids (those that exist)."""
        if not ids:
            return {}
        page = self.collection.get(ids=list(ids), include=["documents", "metadatas"])  # type: ignore[list-item]
        docs = page.get("documents") or [""] * len(page["ids"])
        metas = page.get("metadatas") or [{}] * len(page["ids"])
        return {
            i: (d or "", dict(m or {})) for i, d, m in zip(page["ids"], docs, metas, strict=True)
        }

    def all(self, include_documents: bool = True) -> list[tuple[str, str, dict[str, Any]]]:
        """Every chunk as (id, text, metadata), read page by page."""
        rows: list[tuple[str, str, dict[str, Any]]] = []
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=PAGE, offset=offset)  # type: ignore[arg-type]
            docs = page.get("documents") or [""] * len(page["ids"])
            rows += [
                (i, d or "", dict(m or {}))
                for i, d, m in zip(page["ids"], docs, page["metadatas"] or [], strict=True)
            ]
            if len(page["ids"]) < PAGE:
                return rows
            offset += PAGE
