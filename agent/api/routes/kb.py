"""Knowledge-base management for support ops (admin keys)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, File, Query, UploadFile

from agent.api.deps import AdminDep, DocumentId, StateDep
from agent.api.errors import STAFF, responses
from agent.api.schemas import DocumentOut, HitOut, IngestOut
from agent.errors import InvalidInput, NotFound
from kb import KnowledgeBase

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])


def _kb(state: StateDep) -> KnowledgeBase:
    kb = state.runtime.agent.kb
    if kb is None:
        raise NotFound("The knowledge base is unavailable (see /readyz).")
    return kb


def document_id(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()[:16]


def _safe_name(filename: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).name).strip(".-")
    return name or "upload"


@router.post(
    "/documents", response_model=IngestOut, status_code=201, responses=responses(*STAFF, 404, 413)
)
async def upload(
    _: AdminDep, state: StateDep, files: Annotated[list[UploadFile], File(description="Documents")]
) -> IngestOut:
    """Upload documents (Markdown, HTML, PDF, text, JSON Lines) and ingest them. Uploading a
    file with the same name again replaces that document. 422 when no file could be ingested
    (each file's reason is listed); a partial success lists the failures in `errors`."""
    # Loaded with the first upload: a server that serves turns needs neither (~18 MiB).
    from ingest.loaders import SUPPORTED
    from ingest.pipeline import ingest

    folder = state.settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    for upload in files:
        name = _safe_name(upload.filename or "upload")
        if Path(name).suffix.lower() not in SUPPORTED:
            raise InvalidInput(
                f"{upload.filename}: unsupported file type; use {', '.join(SUPPORTED)}"
            )
        path = folder / name
        path.write_bytes(await upload.read())
        saved.append(path)
    kb = _kb(state)
    settings = state.settings
    report = await anyio.to_thread.run_sync(
        lambda: ingest(
            kb, saved, max_tokens=settings.kb_chunk_tokens, overlap_tokens=settings.kb_chunk_overlap
        )
    )
    errors = [e.replace(str(folder) + "/", "") for e in report.errors]
    if errors and not (report.added or report.updated or report.unchanged):
        for path in saved:
            path.unlink(missing_ok=True)
        raise InvalidInput("No document could be ingested: " + "; ".join(errors))
    return IngestOut(
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        chunks_embedded=report.chunks_embedded,
        errors=errors,
    )


@router.get("/documents", response_model=list[DocumentOut], responses=responses(*STAFF, 404))
async def documents(_: AdminDep, state: StateDep) -> list[DocumentOut]:
    """Every document in the knowledge base."""
    docs = await anyio.to_thread.run_sync(_kb(state).documents)
    return [
        DocumentOut(
            id=document_id(d.source),
            source=d.source,
            title=d.title,
            format=d.format,
            chunks=d.chunks,
            url=d.url,
        )
        for d in sorted(docs.values(), key=lambda d: d.source)
    ]


@router.delete("/documents/{doc_id}", status_code=204, responses=responses(*STAFF, 404))
async def delete_document(doc_id: DocumentId, _: AdminDep, state: StateDep) -> None:
    """Remove one document (its id as listed) and its chunks."""
    kb = _kb(state)
    docs = await anyio.to_thread.run_sync(kb.documents)
    source = next((s for s in docs if document_id(s) == doc_id), None)
    if source is None:
        raise NotFound(f"Document {doc_id} not found")
    await anyio.to_thread.run_sync(kb.delete, source)


@router.get("/search", response_model=list[HitOut], responses=responses(*STAFF, 404))
async def search(
    _: AdminDep,
    state: StateDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[HitOut]:
    """Search as the agent does; an empty list means nothing relevant."""
    hits = await anyio.to_thread.run_sync(lambda: _kb(state).search(q, k=k))
    return [
        HitOut(
            text=h.text,
            score=h.score,
            source=h.source,
            title=h.title,
            section=h.section,
            url=h.url,
            page=h.page,
        )
        for h in hits
    ]
