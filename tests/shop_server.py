"""The example shop system (examples/tau2_shop) as a real process for tests: its MCP face over
HTTP, or its REST face, on a free port, stopped after the test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "data" / "retail" / "db.json"
FIXTURES = ROOT / "tests" / "fixtures"


def fixture_store(folder: Path) -> Path:
    """A shop database in τ²'s db.json shape from the repository's own fixtures (the retail
    slice's customers and orders, the whole catalog): what the connector tests serve, with or
    without τ²'s data beside the project."""
    path = folder / "seed.json"
    if not path.exists():
        data = json.loads((FIXTURES / "retail_slice.json").read_text(encoding="utf-8"))
        data["products"] = json.loads(
            (FIXTURES / "retail_catalog.json").read_text(encoding="utf-8")
        )["products"]
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(face: str, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "examples.tau2_shop",
        face,
        "--db",
        str(db),
        "--seed",
        str(SEED),
        *extra,
    ]


class Served:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `python -m examples.tau2_shop <face> ... --port N` and wait until it answers HTTP."""
    started: list[Served] = []

    def start(face: str, db: Path, *extra: str, env: dict[str, str] | None = None) -> Served:
        port = _free_port()
        log = tmp_path / f"{face}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _command(face, db, "--port", str(port), *extra),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**_base_env(), **(env or {})},
            )
        served = Served(process, f"http://127.0.0.1:{port}", log)
        started.append(served)
        probe = "/mcp" if face == "mcp" else "/products"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-3000:]}")
            try:
                httpx.get(served.url + probe, timeout=1)  # any answer will do (401, 406...)
                return served
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer: {log.read_text()[-3000:]}")

    yield start
    for served in started:
        served.stop()


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TAU2_SHOP_")}
