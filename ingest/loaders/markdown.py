"""Markdown with optional YAML front matter; sections follow the headings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from ingest.documents import Document, LoadError, Section, breadcrumb_text

_md = MarkdownIt("commonmark")


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines()
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                raise LoadError(f"invalid front matter: {exc}") from exc
            if not isinstance(meta, dict):
                raise LoadError("front matter is not a mapping")
            return meta, "\n".join(lines[end + 1 :])
    return {}, text


def markdown_sections(body: str) -> tuple[str | None, list[Section]]:
    """(first h1 text or None, sections by heading path)."""
    lines = body.splitlines()
    tokens = _md.parse(body)
    headings: list[tuple[int, int, int, str]] = []  # (start line, end line, level, text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            headings.append(
                (tok.map[0], tok.map[1], int(tok.tag[1]), tokens[i + 1].content.strip())
            )
    first_h1 = next((t for _, _, level, t in headings if level == 1), None)
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    cursor = 0
    heading = ""
    for start, end, level, text in headings:
        sections.append(Section(heading, "\n".join(lines[cursor:start]).strip()))
        path = [(lv, t) for lv, t in path if lv < level] + [(level, text)]
        heading = " > ".join(t for lv, t in path if not (lv == 1 and t == first_h1))
        cursor = end
    sections.append(Section(heading, "\n".join(lines[cursor:]).strip()))
    return first_h1, [s for s in sections if s.text]


def load_markdown_text(
    text: str, *, source: str, origin: str, fallback_title: str, fmt: str = "markdown"
) -> Document:
    meta, body = split_front_matter(text)
    first_h1, sections = markdown_sections(body)
    title = str(meta.pop("title", None) or first_h1 or fallback_title)
    url = meta.pop("url", None)
    breadcrumb = breadcrumb_text(meta.pop("breadcrumb", None))
    return Document(
        source=source,
        origin=origin,
        title=title,
        format=fmt,
        sections=sections,
        url=str(url) if url else None,
        metadata=meta,
        breadcrumb=breadcrumb,
    )


def load_markdown(path: Path) -> list[Document]:
    from ingest.loaders.text import read_text, title_from_name

    return [
        load_markdown_text(
            read_text(path),
            source=str(path),
            origin=str(path),
            fallback_title=title_from_name(path),
        )
    ]
