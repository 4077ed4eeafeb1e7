"""Shared by the benchmark scripts: a knowledge base in a scratch directory, percentiles, and
the test suite's fake Messages API in a process of its own."""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb import KBConfig, KnowledgeBase

CACHE = Path(__file__).parent / ".cache"


def open_kb(name: str, encoder: str | None = None) -> KnowledgeBase:
    """A knowledge base under bench/.cache/NAME; `encoder` onnx or torch (default:
    `SUPPORTBOT_ENCODER`, else onnx, as the product)."""
    chosen = encoder or os.environ.get("SUPPORTBOT_ENCODER") or "onnx"
    return KnowledgeBase.open(KBConfig(data_dir=CACHE / name, encoder=chosen))  # type: ignore[arg-type]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _serve_fake(queue: multiprocessing.Queue, responder: Callable[[dict[str, Any]], Any]) -> None:  # type: ignore[type-arg]
    from tests.fake_anthropic import FakeAnthropic

    fake = FakeAnthropic().start()
    fake.default = responder
    queue.put(fake.url)
    while True:
        time.sleep(3600)


def start_fake_process(responder: Callable[[dict[str, Any]], Any]) -> str:
    """tests/fake_anthropic.py answering with `responder`, in a process of its own (so this
    process's CPU time is the client's alone); returns its URL."""
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    multiprocessing.Process(target=_serve_fake, args=(queue, responder), daemon=True).start()
    return str(queue.get(timeout=30))
