"""The query encoder in a process of its own, shared by a server's workers.

The encoder's model on ONNX Runtime is the largest part of a server worker's memory (~130 MiB
of ~420 with 200 conversations in flight: bench/README.md, "A lighter process"), and a worker
needs it only for help-centre questions. `supportbot serve` starts one encoder process
(`start`), whose address its workers find in `SUPPORTBOT_ENCODER_SOCKET`; each worker's
`Embedder` then encodes through a `RemoteEncoder` (same vectors: the same model runs there),
and loads the model itself only if the process cannot be reached.

The process listens on a Unix socket in a directory only its user can enter, loads the model
with the first request, serves each connection in a thread of its own (ONNX Runtime runs
them side by side), and exits when the server that started it is gone.

    python -m kb.encoder_process --socket PATH [--backend onnx] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
CONNECTIONS = 4  # per worker: encodings in flight at once


class RemoteEncoder:
    """An encoder (kb.embedder's protocol) whose model runs in the encoder process at
    `address`. A worker's threads share a few connections; when the process cannot be reached
    the model is loaded here (`fallback`) and used from then on."""

    def __init__(self, address: str, fallback: Any) -> None:
        self.address = address
        self._fallback = fallback
        self._local: Any = None
        self._free: list[Connection] = []
        self._slots = threading.BoundedSemaphore(CONNECTIONS)
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray[Any, Any]:
        return self._ask(("encode", texts, batch_size), lambda m: m.encode(texts, batch_size))

    def count_tokens(self, text: str) -> int:
        return int(self._ask(("count", text), lambda m: m.count_tokens(text)))

    def set_threads(self, threads: int | None) -> None:
        """The process was started with the server's encoder threads; nothing to change."""
        if self._local is not None:
            self._local.set_threads(threads)

    def _ask(self, request: tuple[Any, ...], here: Any) -> Any:
        if self._local is not None:
            return here(self._local)
        with self._slots:
            try:
                connection = self._connection()
                connection.send(request)
                kind, value = connection.recv()
            except (OSError, EOFError) as exc:
                return here(self._load_here(exc))
            with self._lock:
                self._free.append(connection)
        if kind == "error":
            raise RuntimeError(f"the encoder process failed: {value}")
        return value

    def _connection(self) -> Connection:
        with self._lock:
            if self._free:
                return self._free.pop()
        return Client(self.address, family="AF_UNIX")

    def _load_here(self, error: BaseException) -> Any:
        with self._lock:
            if self._local is None:
                log.warning("the encoder process at %s cannot be reached (%s); loading the "
                            "model in this worker", self.address, error)  # fmt: skip
                self._local = self._fallback()
            return self._local


def start(
    *, backend: str, threads: int, cache_dir: Path | None, data_dir: Path | None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start an encoder process for this server: (the process, its socket's address). It
    ends, removing its socket's directory, once this process is gone; `stop` ends it now."""
    folder = Path(tempfile.mkdtemp(prefix="supportbot-encoder-"))  # mode 0700: ours alone
    address = str(folder / "encoder.sock")
    command = [sys.executable, "-m", "kb.encoder_process", "--socket", address,
               "--backend", backend, "--threads", str(threads)]  # fmt: skip
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    # The same code as this process's, wherever it was imported from.
    here = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": path})
    deadline = time.monotonic() + 30
    while not Path(address).exists():  # listening once the socket is there
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the encoder process did not start")
        time.sleep(0.02)
    return process, address


def stop(process: subprocess.Popen[bytes], address: str) -> None:
    """End the encoder process started by `start`, and remove its socket's directory."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    shutil.rmtree(Path(address).parent, ignore_errors=True)


def serve(address: str, backend: str, threads: int, cache_dir: Path | None,
          data_dir: Path | None) -> None:  # fmt: skip
    """Answer encoders' requests on `address` until the process that started this one ends."""
    from kb import embedder

    embedder.set_threads(threads)
    model: Any = None
    loading = threading.Lock()

    def loaded() -> Any:
        nonlocal model
        with loading:
            if model is None:
                model = _model(backend, cache_dir, data_dir)
            return model

    def answer(connection: Connection) -> None:
        with connection:
            while True:
                try:
                    request = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    if request[0] == "encode":
                        reply: Any = ("ok", loaded().encode(request[1], request[2]))
                    else:
                        reply = ("ok", loaded().count_tokens(request[1]))
                except Exception as exc:  # the worker raises it as its own error
                    log.exception("encoding failed")
                    reply = ("error", str(exc))
                connection.send(reply)

    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        shutil.rmtree(Path(address).parent, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    with Listener(address, family="AF_UNIX") as listener:
        while True:
            threading.Thread(target=answer, args=(listener.accept(),), daemon=True).start()


def _model(backend: str, cache_dir: Path | None, data_dir: Path | None) -> Any:
    """The encoder model itself, loaded in this process as a worker would load it."""
    from kb.embedder import Embedder

    chosen: Any = backend
    return Embedder(backend=chosen, cache_dir=cache_dir, data_dir=data_dir).model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    serve(args.socket, args.backend, args.threads, args.cache_dir, args.data_dir)


if __name__ == "__main__":
    main()
