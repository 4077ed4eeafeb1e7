"""Combining dense and lexical rankings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

# Tokens mixing letters and digits, such as part and model codes: "EK-1500", "WB-SEAL-07".
_IDENTIFIER = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def identifiers(query: str) -> list[str]:
    """Code-like tokens of a query (letters and digits together, 3+ characters)."""
    return [t for t in _IDENTIFIER.findall(query) if len(t) >= 3]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = 60
) -> list[tuple[str, float]]:
    """Ids by fused score, best first; normalised so that first place in every list is 1.0."""
    rankings = [r for r in rankings if r]
    if not rankings:
        return []
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    best = len(rankings) / (k + 1)
    return sorted(((i, s / best) for i, s in scores.items()), key=lambda p: -p[1])


def convex_fusion(
    dense_scores: dict[str, float],
    lexical: Sequence[tuple[str, float]],
    lexical_weight: float,
    lexical_window: float | None = None,
) -> list[tuple[str, float]]:
    """(1-w) * cosine similarity + w * BM25 score scaled by the best BM25 score. With a
    `lexical_window`, BM25 counts only for chunks whose cosine is within it of the best one:
    it reorders what the encoder finds about equally close, and cannot lift a passage the
    encoder finds much further away (a search without dense scores is BM25's alone)."""
    top = max((s for _, s in lexical), default=0.0) or 1.0
    lexical_scores = {i: s / top for i, s in lexical}
    if lexical_window is not None and dense_scores:
        floor = max(dense_scores.values(), default=0.0) - lexical_window
        lexical_scores = {
            i: s for i, s in lexical_scores.items() if dense_scores.get(i, -1.0) >= floor
        }
    ids = set(dense_scores) | set(lexical_scores)
    combined = {
        i: (1 - lexical_weight) * dense_scores.get(i, 0.0)
        + lexical_weight * lexical_scores.get(i, 0.0)
        for i in ids
    }
    return sorted(combined.items(), key=lambda p: -p[1])


def fuse(
    dense: Sequence[str],
    lexical: Sequence[tuple[str, float]],
    *,
    method: Literal["rrf", "convex"],
    lexical_weight: float,
    dense_scores: dict[str, float],
    lexical_window: float | None = None,
) -> list[tuple[str, float]]:
    if method == "convex":
        return convex_fusion(dense_scores, lexical, lexical_weight, lexical_window)
    return reciprocal_rank_fusion([list(dense), [i for i, _ in lexical]])
