"""HTML: the main text only (no navigation, scripts, styles), split at headings."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Tag

from ingest.documents import Document, Section
from ingest.loaders.text import read_text, title_from_name

DROP = [
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "template",
    "svg",
]
BLOCKS = {"p", "li", "pre", "td", "th", "dd", "dt", "blockquote", "figcaption"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def load_html(path: Path) -> list[Document]:
    soup = BeautifulSoup(read_text(path), "html.parser")
    for tag in soup(DROP):
        tag.decompose()
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    # The page's own heading; <title> often carries the site name too ("Guide | Acme Help").
    title = (h1.get_text(" ", strip=True) if h1 else "") or (
        title_tag.get_text(" ", strip=True) if title_tag else ""
    )
    canonical = soup.find("link", rel="canonical")
    url = canonical.get("href") if isinstance(canonical, Tag) else None
    root = soup.find("main") or soup.find("article") or soup.body or soup
    sections: list[Section] = []
    path_: list[tuple[int, str]] = []
    current: list[str] = []
    heading = ""
    for element in root.find_all(HEADINGS | BLOCKS):
        if element.name in HEADINGS:
            sections.append(Section(heading, "\n".join(current)))
            level, text = int(element.name[1]), element.get_text(" ", strip=True)
            path_ = [(lv, t) for lv, t in path_ if lv < level] + [(level, text)]
            heading = " > ".join(t for lv, t in path_ if not (lv == 1 and t == title))
            current = []
        elif not element.find_parent(BLOCKS):  # nested blocks are part of their parent
            text = element.get_text(" ", strip=True)
            if text:
                current.append(f"- {text}" if element.name == "li" else text)
    sections.append(Section(heading, "\n".join(current)))
    return [
        Document(
            source=str(path),
            origin=str(path),
            title=title or title_from_name(path),
            format="html",
            sections=[s for s in sections if s.text.strip()],
            url=str(url) if url else None,
        )
    ]
