"""PDF via pypdf: one section per page, page numbers kept."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ingest.documents import Document, LoadError, Section
from ingest.loaders.text import title_from_name


def load_pdf(path: Path) -> list[Document]:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise LoadError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or title_from_name(path)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(f"corrupt or unreadable PDF ({exc})") from exc
    return [
        Document(
            source=str(path),
            origin=str(path),
            title=str(title),
            format="pdf",
            sections=[
                Section("", text.strip(), page=n)
                for n, text in enumerate(pages, start=1)
                if text.strip()
            ],
        )
    ]
