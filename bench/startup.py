"""Command start-up: wall time of `supportbot --help`, `keys`, `orders`, `usage` and others,
against the floors under them (the interpreter alone, typer, typer with its rich help).

    python bench/startup.py --rounds 10

Every command and floor runs as a fresh process, interleaved round by round (the order rotates),
in an empty data directory; the table shows the median and the fastest of the rounds. Target
(issue 15): ≤ 0.3 s for `--help`, `keys`, `orders` and `usage`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SUPPORTBOT = str(BIN / "supportbot")
PY = sys.executable

COMMANDS: dict[str, list[str]] = {
    "supportbot --help": [SUPPORTBOT, "--help"],
    "supportbot keys": [SUPPORTBOT, "keys"],
    "supportbot orders": [SUPPORTBOT, "orders"],
    "supportbot usage": [SUPPORTBOT, "usage"],
    "supportbot usage --help": [SUPPORTBOT, "usage", "--help"],
    "supportbot report --help": [SUPPORTBOT, "report", "--help"],
    "supportbot keys list": [SUPPORTBOT, "keys", "list"],
}
FLOORS: dict[str, list[str]] = {
    "floor: python -c pass": [PY, "-c", "pass"],
    "floor: python -S -c pass (no site: no editable-install hook)": [PY, "-S", "-c", "pass"],
    "floor: import typer": [PY, "-c", "import typer"],
    "floor: import typer, rich.console": [PY, "-c", "import typer, rich.console"],
    "floor: a typer app's --help (rich help)": [
        PY,
        "-c",
        "import typer; app = typer.Typer(); app.command()(lambda: None); app.command('b')"
        "(lambda: None); app(['--help'])",
    ],
    "floor: a typer app's group without arguments (its help)": [
        PY,
        "-c",
        "import typer; app = typer.Typer(); app.command()(lambda: None); g = typer.Typer("
        "no_args_is_help=True); g.command('x')(lambda: None); g.command('y')(lambda: None); "
        "app.add_typer(g, name='g'); app(['g'])",
    ],
    "floor: import typer.rich_utils": [PY, "-c", "import typer.rich_utils"],
    "import agent.cli": [PY, "-c", "import agent.cli"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", help="comma-separated names (prefixes) to run")
    args = parser.parse_args()
    runs = {**COMMANDS, **FLOORS}
    if args.only:
        wanted = args.only.split(",")
        runs = {k: v for k, v in runs.items() if any(k.startswith(w) for w in wanted)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as data:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))
        }
        env |= {"SUPPORTBOT_DATA_DIR": data, "COLUMNS": "100"}
        names = list(runs)
        subprocess.run(runs[names[0]], env=env, cwd=data, capture_output=True)  # page cache
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                done = subprocess.run(runs[name], env=env, cwd=data, capture_output=True)
                times[name].append(time.perf_counter() - start)
                if done.returncode not in (0, 2):  # 2: a group's help without a subcommand
                    raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")
    print(f"| command | median s | fastest s | ({args.rounds} rounds) |\n|---|---|---|---|")
    for name, values in times.items():
        target = " ≤ 0.3" if name in COMMANDS else ""
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {target} |")


if __name__ == "__main__":
    main()
