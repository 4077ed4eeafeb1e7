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
