"""A Chroma server (`chroma run` from the chromadb package) for the test session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class ChromaServer:
    process: subprocess.Popen[bytes]
    root: Path
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_chroma(timeout: float = 60.0) -> ChromaServer:
    executable = Path(sys.executable).parent / "chroma"
    command = str(executable) if executable.exists() else shutil.which("chroma")
    if command is None:
        raise RuntimeError("the `chroma` command of the chromadb package is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="supportbot-chroma-"))
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [command, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return ChromaServer(process, root, url)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("chroma run did not become ready")
