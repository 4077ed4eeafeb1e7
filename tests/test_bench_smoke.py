"""The load benchmark's help-centre scenarios, in a tiny form, so that they cannot rot: a
real `supportbot serve` with the demo docs ingested, driven over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_mixed_scenario_and_the_kinds_comparison_run() -> None:
    mixed = _bench("--workers", "1", "--only", "mixed", "--overhead-conversations", "2")
    row = next(line for line in mixed.splitlines() if "mixed" in line)
    assert "| 8 |" in row  # two conversations of four turns, half of them help-centre ones
    kinds = _bench("--kinds", "--kind-rounds", "1", "--kind-block", "5")
    assert "ready after" in kinds and "first help-centre turn" in kinds
    assert kinds.count("x |") >= 2 and "peak RSS of the worker" in kinds
