"""Real servers for tests: the app under uvicorn in a thread (`serve`), or `supportbot serve`
as a process of its own (`serve_process`), each on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ROOT = Path(__file__).resolve().parents[1]


def serve_env(**settings: str) -> dict[str, str]:
    """The environment of a `supportbot serve` the suite starts: no operator configuration,
    `settings` (e.g. SUPPORTBOT_DATABASE_URL=...), and this checkout's code first on the path
    (so a worktree's server runs the code under test, whatever the virtualenv was installed
    from)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env | settings


@dataclass
class ServeProcess:
    """A `supportbot serve` process: its URL, and its log (standard error)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-turn, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serve_process(
    env: dict[str, str],
    folder: Path,
    *,
    workers: int = 1,
    wrap: Callable[[list[str]], list[str]] = lambda command: command,
    ready: str = "/healthz",
) -> Iterator[ServeProcess]:
    """Run `supportbot serve` on a free loopback port until the block ends. `wrap` may run
    the command inside another (e.g. in a namespace of its own); `ready` is the path that
    answers 200 once it serves."""
    port = _free_port()
    executable = shutil.which("supportbot") or str(Path(sys.executable).parent / "supportbot")
    command = [executable, "serve", "--port", str(port), "--workers", str(workers)]
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"serve-{port}.log"
    with log.open("wb") as err:
        process = subprocess.Popen(wrap(command), env=env, cwd=folder,
                                   stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    server = ServeProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(server.url + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"supportbot serve did not start: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
