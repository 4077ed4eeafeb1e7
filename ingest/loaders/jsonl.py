"""JSON Lines: one document per record {"id", "title", "content", "url"?, "breadcrumb"?}; content
is Markdown. Without a breadcrumb, the words of a readable id stand for it."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.documents import Document, LoadError, breadcrumb_text, id_words
from ingest.loaders.markdown import load_markdown_text
from ingest.loaders.text import read_text


def load_jsonl(path: Path) -> tuple[list[Document], list[str]]:
    """(documents, problems): a bad record is reported by line and the rest still load."""
    documents: list[Document] = []
    problems: list[str] = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise LoadError("not a JSON object")
            missing = [k for k in ("id", "content") if not record.get(k)]
            if missing:
                raise LoadError(f"missing {', '.join(missing)}")
            doc = load_markdown_text(
                str(record["content"]),
                source=str(record["id"]),
                origin=str(path),
                fallback_title=str(record.get("title") or record["id"]),
                fmt="jsonl",
            )
            if record.get("title"):
                doc.title = str(record["title"])
            if record.get("url"):
                doc.url = str(record["url"])
            doc.breadcrumb = (
                breadcrumb_text(record.get("breadcrumb")) or doc.breadcrumb or id_words(doc.source)
            )
            extra = {
                k: v
                for k, v in record.items()
                if k not in ("id", "title", "content", "url", "breadcrumb")
            }
            doc.metadata.update(extra)
            documents.append(doc)
        except (json.JSONDecodeError, LoadError) as exc:
            problems.append(f"line {line_no}: {exc}")
    return documents, problems
