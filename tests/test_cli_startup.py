"""The command line's help and group commands start without the heavy imports: the database,
the SDK, the vector store, the encoder and the web stack load only in the commands that use
them (bench/startup.py times it; here only what is imported is checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = [
    "alembic",
    "anthropic",
    "bm25s",
    "chromadb",
    "fastapi",
    "onnxruntime",
    "rich.progress",
    "scipy",
    "sentence_transformers",
    "sqlalchemy",
    "tokenizers",
    "torch",
    "uvicorn",
]

PROBE = textwrap.dedent(
    """
    import json, sys
    from agent.cli import app
    try:
        app(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    heavy = json.loads(sys.stdin.read())
    print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}),
          file=sys.stderr)
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["keys"],
        ["orders"],
        ["usage", "--help"],
        ["report", "--help"],
        ["kb"],
        ["ingest", "--help"],
        ["serve", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_groups_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env["SUPPORTBOT_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], input=json.dumps(HEAVY), capture_output=True,
        text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] in (0, 2, None), done.stderr
    assert "Usage" in done.stdout
    assert result["loaded"] == []


def test_serve_on_a_taken_port_says_so_and_exits_1(tmp_path: Path) -> None:
    """It printed the URL, then uvicorn's bind error, then died (exit 3 here, SIGSEGV on some
    machines). Now one line says the port is taken, before anything starts."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(tmp_path / "data")}
        env = {k: v for k, v in env.items() if not k.startswith("ANTHROPIC_")}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "supportbot"), "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "supportbot on http://" not in done.stdout  # no URL that will not answer
