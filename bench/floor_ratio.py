"""Throughput against the floor app in the same run: supportbot (this checkout, and an earlier
commit with `--base`) and bench/floor_app.py, one after the other in each round, the order
rotating, under bench/load.py's scenarios.

    python bench/floor_ratio.py --workers 1 [--postgres] [--rounds 3] [--base REV]
                                [--scenario throughput|steady] [--mixed] [--durable]

Each cell is the median over the rounds; "/ floor" is the ratio of the medians of turns/s
(issue 26's target: >= 0.8). `--base` checks the commit out into a temporary worktree and
serves its code (the load generator and the fake Messages API are this checkout's).
`--mixed`: half the turns are help-centre questions with one tool call each (peak RSS with
the encoder in use); the floor app, which runs no tools, is left out ("/ floor" is then to
this checkout). `--durable` adds the durable floor app (bench/floor_app.py with
`FLOOR_DATABASE_URL`: it also stores each turn's message and answer, on the run's database),
and a column "/ durable floor". On PostgreSQL every run gets a fresh database on one server.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Scenario, create_database, run  # noqa: E402
from tests.postgres import start_postgres  # noqa: E402

COLUMNS = ("turns_per_s", "share_of_ideal", "p50_ms", "create_p50_ms", "server_cpu_ms_per_turn",
           "machine_busy", "peak_rss_mib", "encoder_rss_mib", "ready_s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="an earlier commit to serve as well")
    parser.add_argument("--scenario", choices=["throughput", "steady"], default="throughput")
    parser.add_argument("--mixed", action="store_true", help="half help-centre questions")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="also the durable floor app (it stores each turn's two messages)",
    )
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--model-ms", type=int, default=500)
    args = parser.parse_args()
    steady = args.scenario == "steady"
    scenario = Scenario(args.scenario, concurrency=args.concurrency,
                        turns=10 if steady else 3, model_ms=args.model_ms, tool=args.mixed,
                        stagger=steady, help_share=0.5 if args.mixed else 0.0)  # fmt: skip
    # The floor app runs no tools: with --mixed it is left out (memory and CPU only).
    arms: dict[str, Path | None] = {"this": ROOT} if args.mixed else {"floor": None, "this": ROOT}
    if args.durable and not args.mixed:
        arms = {"floor": None, "durable floor": None, "this": ROOT}
    with tempfile.TemporaryDirectory(prefix="supportbot-floor-") as folder:
        if args.base:
            base = Path(folder) / "base"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                            args.base], check=True, capture_output=True)  # fmt: skip
            arms["base"] = base
        postgres = start_postgres() if args.postgres else None
        results: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
        try:
            names = list(arms)
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for arm in order:
                    url = None
                    if postgres is not None:
                        name = arm.replace(" ", "_")
                        url = create_database(postgres, f"f_{name}_{round_}_{time.time_ns()}")
                    root = arms[arm]
                    results[arm].append(run(args.workers, scenario, url, floor=root is None,
                                            durable=arm == "durable floor",
                                            root=root or ROOT))  # fmt: skip
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            if postgres is not None:
                postgres.stop()
            if args.base:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(arms["base"])], check=False, capture_output=True)  # fmt: skip
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{args.scenario}{' mixed' if args.mixed else ''}, {database}, {args.workers} "
        f"worker(s), {args.rounds} rounds\n"
    )
    durable = results.get("durable floor")
    extra = " / durable floor |" if durable else ""
    print("| arm | " + " | ".join(COLUMNS) + " | / floor (turns/s) |" + extra)
    print("|---" * (len(COLUMNS) + 2 + bool(durable)) + "|")
    floor = statistics.median(r["turns_per_s"] for r in results.get("floor") or results["this"])
    stored = statistics.median(r["turns_per_s"] for r in durable) if durable else None
    for arm, runs in results.items():
        cells = []
        for column in COLUMNS:
            value = statistics.median(r[column] for r in runs)
            cells.append(f"{value:.2f}" if column in ("share_of_ideal", "machine_busy")
                         else f"{value:.1f}")  # fmt: skip
        ratio = statistics.median(r["turns_per_s"] for r in runs) / floor
        rounds = ", ".join(f"{r['turns_per_s']:.0f}" for r in runs)
        mine = statistics.median(r["turns_per_s"] for r in runs)
        more = f" {mine / stored:.2f} |" if stored else ""
        print(f"| {arm} (turns/s: {rounds}) | " + " | ".join(cells) + f" | {ratio:.2f} |" + more)


if __name__ == "__main__":
    main()
