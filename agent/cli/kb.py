"""`supportbot ingest` and `supportbot kb list|delete|stats|search|reindex|export-encoder`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli.common import console, err, fail, load_settings

if TYPE_CHECKING:
    from kb import KnowledgeBase

app = typer.Typer(help="Inspect and manage the knowledge base.", no_args_is_help=True)


def _open_kb() -> KnowledgeBase:
    from kb import KnowledgeBase

    settings = load_settings()
    try:
        return KnowledgeBase.open(settings)
    except Exception as exc:  # Chroma raises a variety of types for an unreachable server
        raise fail(f"cannot open the knowledge base: {exc}") from exc


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive).")],
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove documents no longer found under PATHS.")
    ] = False,
) -> None:
    """Load documents into the knowledge base.

    Markdown, HTML, PDF, plain text and JSON Lines; folders are walked recursively.
    Incremental: unchanged documents are not embedded again; changed ones are replaced.
    Exit code 1 when any file failed (the others are still ingested).
    """
    from ingest.pipeline import ingest as run_ingest
    from kb.embedder import set_threads

    settings = load_settings()
    set_threads(os.cpu_count() or 1)  # batches of chunks: every core helps
    kb = _open_kb()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("documents", total=None)
        report = run_ingest(
            kb,
            paths,
            prune=prune,
            max_tokens=settings.kb_chunk_tokens,
            overlap_tokens=settings.kb_chunk_overlap,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if report.reindexed:
        err.print(f"[yellow]re-embedded[/yellow] {escape(report.reindexed)}", soft_wrap=True)
    for problem in report.errors:
        err.print(f"[red]failed[/red] {escape(problem)}", soft_wrap=True)
    console.print(
        f"added {len(report.added)}, updated {len(report.updated)}, unchanged {report.unchanged}, "
        f"removed {len(report.removed)}, failed {len(report.errors)}; "
        f"{report.chunks_embedded} chunks embedded"
    )
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_documents(
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """List the documents in the knowledge base, with their chunks."""
    docs = sorted(_open_kb().documents().values(), key=lambda d: d.source)
    if as_json:
        print(json.dumps([asdict(d) for d in docs], ensure_ascii=False))
        return
    table = Table("source", "title", "format", "chunks")
    for d in docs:
        table.add_row(escape(d.source), escape(d.title), d.format, str(d.chunks))
    console.print(table)


@app.command()
def delete(
    source: Annotated[str, typer.Argument(help="The document's source, as `kb list` shows it.")],
) -> None:
    """Delete one document and its chunks."""
    removed = _open_kb().delete(source)
    if not removed:
        raise fail(f"no document with source {source!r}")
    console.print(f"deleted {source} ({removed} chunks)")


@app.command()
def stats() -> None:
    """Count the documents and chunks, per format."""
    print(json.dumps(_open_kb().stats(), indent=2))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many passages.", min=1, max=50)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the passages as JSON.")] = False,
) -> None:
    """Search the knowledge base as the agent does.

    Hybrid (dense and BM25) and thresholded: a query nothing answers well finds nothing.
    """
    from kb.knowledge_base import EncoderMismatch

    try:
        hits = _open_kb().search(query, k=k)
    except EncoderMismatch as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps([asdict(h) for h in hits], ensure_ascii=False, default=str))
        return
    if not hits:
        console.print("nothing relevant found")
        return
    for n, hit in enumerate(hits, start=1):
        where = " > ".join(p for p in (hit.title, hit.section) if p)
        page = f" (page {hit.page})" if hit.page else ""
        console.print(f"[bold][{n}] {escape(where)}[/bold]{page}  score {hit.score:.3f}")
        console.print(f"    [dim]{escape(hit.url or hit.source)}[/dim]")
        console.print(f"    {escape(hit.text[:300])}")


@app.command()
def reindex() -> None:
    """Re-embed the knowledge base with the configured encoder.

    Every chunk is embedded again from the text stored in the index (no document is read
    again): needed after the embedding model changes, and done by the next `supportbot
    ingest` too. The old vectors are replaced, never mixed with the new ones.
    """
    from kb.embedder import set_threads

    set_threads(os.cpu_count() or 1)
    kb = _open_kb()
    before = kb.index_model()
    with console.status("re-embedding"):
        count = kb.reindex()
    console.print(
        f"re-embedded {count} chunks with {kb.embedder.name} (the index held {before or 'nothing'})"
    )


@app.command("export-encoder")
def export_encoder() -> None:
    """Export the embedding model to ONNX now, as a build step.

    With SUPPORTBOT_ENCODER=onnx, `serve`, `ingest` and searches then load it from the encoder
    cache instead of exporting it on first use. Uses only the weights installed with the
    package; nothing is downloaded.
    """
    import subprocess

    from kb.embedder import default_model_path, export_key, onnx_model_file, resolve_cache_dir

    settings = load_settings()
    folder = resolve_cache_dir(settings.encoder_cache, settings.data_dir)
    model_dir = str(default_model_path())
    target = folder / f"all-MiniLM-L6-v2-{export_key(model_dir)}.onnx"
    existed = target.is_file()
    try:
        path = onnx_model_file(model_dir, folder)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{'already exported' if existed else 'exported'}: {path}", soft_wrap=True)
