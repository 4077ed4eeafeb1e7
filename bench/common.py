"""Shared by the benchmark scripts: opening a knowledge base in a scratch directory."""

from __future__ import annotations

import statistics
from pathlib import Path

from kb import KBConfig, KnowledgeBase

CACHE = Path(__file__).parent / ".cache"


def open_kb(name: str) -> KnowledgeBase:
    return KnowledgeBase.open(KBConfig(data_dir=CACHE / name))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
