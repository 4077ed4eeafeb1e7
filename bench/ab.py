"""One benchmark, this checkout against an earlier commit, interleaved in one run.

    python bench/ab.py --base REV [--rounds 5] -- bench/turn_cost.py --turns 200
    python bench/ab.py --base REV --copy bench/long_conversation.py -- bench/long_conversation.py

The base commit is checked out into a temporary git worktree (removed afterwards) and both
run the same command with this checkout's virtualenv, alternating A B A B ... so that the
machine's drift falls on both alike. Every number in a table row of the command's output
(`| plain | 5.31 |`) is collected per row and column; the report gives each one's median
for the base and for this checkout, and their ratio (this / base: above 1 is slower).
`--copy FILE` puts this checkout's FILE into the base's worktree first (a benchmark script
newer than the base: it then measures the base's product code).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\|\s*([^|]+?)\s*\|(.+)\|\s*$")
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def numbers(output: str) -> dict[str, float]:
    """`row label / column n` -> the number in that cell, for every numeric cell."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        match = ROW.match(line.strip())
        if not match or set(match.group(2)) <= set("-| "):
            continue
        for n, cell in enumerate(c.strip() for c in match.group(2).split("|")):
            cell = cell.rstrip("x%")
            if NUMBER.match(cell):
                found[f"{match.group(1)} / {n + 1}"] = float(cell)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copy", action="append", default=[], metavar="FILE",
                        help="put this checkout's FILE in the base (repeatable)")  # fmt: skip
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...]")
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    if not command:
        parser.error("give the benchmark to run after --")
    with tempfile.TemporaryDirectory(prefix="supportbot-ab-") as folder:
        base = Path(folder) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                        args.base], check=True, capture_output=True)  # fmt: skip
        for name in args.copy:
            shutil.copy(ROOT / name, base / name)
        try:
            results: dict[str, dict[str, list[float]]] = {"base": {}, "this": {}}
            for round_ in range(args.rounds):
                for arm, where in (("base", base), ("this", ROOT)):
                    done = subprocess.run([sys.executable, *command], cwd=where,
                                          capture_output=True, text=True, check=False)  # fmt: skip
                    if done.returncode != 0:
                        sys.exit(f"{arm} failed (round {round_ + 1}):\n{done.stderr[-2000:]}")
                    for key, value in numbers(done.stdout).items():
                        results[arm].setdefault(key, []).append(value)
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False, capture_output=True)  # fmt: skip
    print(f"`{' '.join(command)}`, {args.rounds} interleaved rounds, base {args.base}\n")
    print("| measure | base (median) | this (median) | this / base |")
    print("|---|---|---|---|")
    for key, values in results["this"].items():
        before = results["base"].get(key)
        if not before:
            continue
        a, b = statistics.median(before), statistics.median(values)
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"| {key} | {a:g} | {b:g} | {ratio} |")


if __name__ == "__main__":
    main()
