"""Plain text: one section; paragraphs are kept for the chunker."""

from __future__ import annotations

from pathlib import Path

from ingest.documents import Document, LoadError, Section


def read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (byte {exc.start})") from exc


def title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def load_text(path: Path) -> list[Document]:
    text = read_text(path)
    return [
        Document(
            source=str(path),
            origin=str(path),
            title=title_from_name(path),
            format="text",
            sections=[Section("", text.strip())],
        )
    ]
