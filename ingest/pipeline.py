"""The incremental ingest pipeline: load, hash, chunk, embed in batches, replace, prune.

A document's identity is its source (file path, or record id for JSON Lines); its content hash
decides whether it is re-embedded. Embedding is batched across documents so the encoder runs
full batches, which is where nearly all of the time goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunker import CHUNK_OVERLAP, CHUNK_TOKENS, chunk_document, chunk_format
from ingest.documents import Document, LoadError
from ingest.loaders import SUPPORTED, load
from kb.knowledge_base import KnowledgeBase
from kb.types import Chunk, DocumentInfo

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total) documents


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    errors: list[str] = field(default_factory=list)  # "path: reason"
    failed_files: set[str] = field(default_factory=set)  # files that could not be read at all
    # Set when the index held another embedding model's vectors: what was re-embedded, and why.
    reindexed: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files under `paths` (recursive) with a supported suffix, and problems with the paths."""
    files: list[Path] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED and not p.name.startswith(".")
            )  # fmt: skip
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return [f.resolve() for f in files], errors


def _load_all(files: list[Path], report: IngestReport) -> Iterator[Document]:
    for path in files:
        try:
            documents, problems = load(path)
        except (LoadError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            report.errors.append(f"{path}: {reason}")
            report.failed_files.add(str(path))
            continue
        report.errors += [f"{path}: {p}" for p in problems]
        for doc in documents:
            if doc.is_empty():
                report.errors.append(f"{path}: empty document" + (
                    f" (record {doc.source})" if doc.source != str(path) else ""))  # fmt: skip
                continue
            yield doc


def ingest(
    kb: KnowledgeBase,
    paths: Iterable[Path],
    *,
    prune: bool = False,
    max_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = CHUNK_OVERLAP,
    batch_chunks: int = 1024,
    progress: Progress | None = None,
) -> IngestReport:
    report = IngestReport()
    paths = [Path(p) for p in paths]
    files, path_errors = discover(paths)
    report.errors += path_errors
    documents = list(_load_all(files, report))
    mismatch = kb.encoder_mismatch()
    if mismatch:
        # Every stored chunk is re-embedded with this encoder (those of the documents loaded
        # now are embedded below, as new): never two models' vectors in one index.
        before = kb.index_model()
        kept = kb.reindex(skip={doc.source for doc in documents})
        report.reindexed = (
            f"the index held vectors of {before}: every document is embedded again with "
            f"{kb.embedder.name} ({kept} chunks of documents not given here re-embedded from "
            "the index)"
        )
        log.warning("%s", report.reindexed)
    existing = kb.documents()
    seen: set[str] = set()
    pending: list[tuple[Document, list[Chunk]]] = []
    pending_chunks = 0
    count = kb.embedder.count_tokens
    chunking = f"{chunk_format()}-{max_tokens}-{overlap_tokens}"  # a change re-embeds all

    def flush() -> None:
        nonlocal pending_chunks
        if not pending:
            return
        texts = [c.embed_text for _, chunks in pending for c in chunks]
        vectors = kb.embedder.encode(texts)
        kb.replace_documents(
            [(doc.source, chunks) for doc, chunks in pending],
            vectors,
            new_sources={doc.source for doc, _ in pending if doc.source not in existing},
        )
        for doc, _ in pending:
            (report.updated if doc.source in existing else report.added).append(doc.source)
        report.chunks_embedded += len(texts)
        pending.clear()
        pending_chunks = 0

    for done, doc in enumerate(documents, start=1):
        if doc.source in seen:
            report.errors.append(f"{doc.origin}: duplicate document id {doc.source!r} skipped")
            continue
        seen.add(doc.source)
        doc_hash = f"{chunking}-{doc.content_hash()}"
        if existing.get(doc.source) and existing[doc.source].doc_hash == doc_hash:
            report.unchanged += 1
        else:
            chunks = chunk_document(
                doc,
                max_tokens=max_tokens,
                overlap_tokens=overlap_tokens,
                count=count,
                doc_hash=doc_hash,
            )
            pending.append((doc, chunks))
            pending_chunks += len(chunks)
            if pending_chunks >= batch_chunks:
                flush()
        if progress:
            progress(done, len(documents))
    flush()

    if prune:
        report.removed = _prune(kb, paths, seen, existing, report.failed_files)
    return report


def _prune(
    kb: KnowledgeBase,
    paths: list[Path],
    seen: set[str],
    existing: dict[str, DocumentInfo],
    failed_files: set[str],
) -> list[str]:
    """Remove documents that came from the given paths but are no longer there.

    A file that failed to load this time keeps its documents: a parse error is not a deletion.
    """
    roots = [p.resolve() for p in paths]
    removed = []
    for source, info in existing.items():
        origin = Path(info.origin)
        inside = any(origin == r or r in origin.parents for r in roots)
        if inside and source not in seen and str(origin) not in failed_files:
            kb.delete(source)
            removed.append(source)
    return removed
