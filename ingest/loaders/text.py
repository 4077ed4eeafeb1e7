"""Plain text: one section, or one section per question when the file is a Q/A list; paragraphs
are kept for the chunker."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.documents import Document, LoadError, Section

_QUESTION = re.compile(r"^\s*(?:Q|Question)\s*[:.)]\s*(\S.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:A|Answer)\s*[:.)]\s*\S", re.IGNORECASE)


def read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (byte {exc.start})") from exc


def title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def question_sections(text: str) -> list[Section] | None:
    """A FAQ written as "Q: ... / A: ..." lines: one section per question, headed by it (so
    the question is part of what is embedded and indexed with its answer), the text before
    the first question as a section of its own. None when the text is not such a list."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _QUESTION.match(line)]
    if not starts:
        return None
    bounds = [*starts, len(lines)]
    blocks = [lines[bounds[j] : bounds[j + 1]] for j in range(len(starts))]
    if not all(any(_ANSWER.match(line) for line in block[1:]) for block in blocks):
        return None  # a "Q:" line without its answer: not a Q/A list
    sections = [Section("", "\n".join(lines[: starts[0]]).strip())]
    for block in blocks:
        match = _QUESTION.match(block[0])
        assert match is not None
        sections.append(Section(match.group(1).strip(), "\n".join(block).strip()))
    return [s for s in sections if s.text]


def load_text(path: Path) -> list[Document]:
    text = read_text(path).strip()
    return [
        Document(
            source=str(path),
            origin=str(path),
            title=title_from_name(path),
            format="text",
            sections=question_sections(text) or [Section("", text)],
        )
    ]
