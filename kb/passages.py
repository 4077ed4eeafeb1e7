"""What a hit shows: its whole section when the section is short, rebuilt from its chunks.

Chunks are small because small chunks are found more precisely (bench/README.md, "Chunk
size"); the answer a customer needs is often the whole of a short section: every row of a
table, every step of a list. A hit in a section of at most `passage_tokens` shows the section,
and the other chunks of that section are not listed again. Longer sections show the chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

SectionKey = tuple[str, str, Any]  # (source, section, page)


def section_key(metadata: dict[str, Any]) -> SectionKey:
    return (
        str(metadata.get("source", "")),
        str(metadata.get("section", "")),
        metadata.get("page"),
    )


def approximate_tokens(text: str) -> int:
    """About 4 word pieces for 3 words (the chunker measures exactly; this only bounds)."""
    return len(text.split()) * 4 // 3 + 1


def _lines(unit: str) -> list[str]:
    return unit.split("\n")


def merge_chunks(texts: Sequence[str]) -> str:
    """The text of consecutive chunks of one section, as it was before chunking: the units a
    chunk carried over from the one before (its overlap) are dropped, and a table or list cut
    between rows or items, each piece repeating the header row or the introduction, becomes
    one table or list again."""
    units: list[str] = []
    for text in texts:
        incoming = [u for u in text.split("\n\n") if u.strip()]
        # The longest run of incoming units that repeats the end of what we have: the overlap.
        carried = next(
            (n for n in range(min(len(units), len(incoming)), 0, -1)
             if units[-n:] == incoming[:n]),
            0,
        )  # fmt: skip
        for unit in incoming[carried:]:
            if units:
                last, new = _lines(units[-1]), _lines(unit)
                shared = next(
                    (n for n in range(min(len(last), len(new)) - 1, 0, -1)
                     if last[:n] == new[:n]),
                    0,
                )  # fmt: skip
                if shared:  # the next piece of the same table or list
                    units[-1] = "\n".join(last + new[shared:])
                    continue
            units.append(unit)
    return "\n\n".join(units)


class Sections:
    """The chunks of each section of the index, in order, and the passages made of them."""

    def __init__(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        self._chunks: dict[SectionKey, list[tuple[int, str]]] = {}
        self._texts: dict[str, str] = {}
        for chunk_id, text, meta in rows:
            self._chunks.setdefault(section_key(meta), []).append(
                (int(meta.get("chunk", 0) or 0), chunk_id)
            )
            self._texts[chunk_id] = text
        for chunks in self._chunks.values():
            chunks.sort()
        self._merged: dict[SectionKey, tuple[str, int]] = {}

    def passage(self, metadata: dict[str, Any], passage_tokens: int) -> str | None:
        """The whole section of a chunk with this metadata, when it has more than one chunk and
        is at most `passage_tokens` long (None: show the chunk)."""
        key = section_key(metadata)
        chunks = self._chunks.get(key, [])
        if passage_tokens <= 0 or len(chunks) < 2:
            return None
        if key not in self._merged:
            merged = merge_chunks([self._texts[i] for _, i in chunks])
            self._merged[key] = (merged, approximate_tokens(merged))
        merged, size = self._merged[key]
        return merged if size <= passage_tokens else None
