"""What an order change costs the server end to end: a proposal and its confirmation, against
two ordinary tool turns (the target: no more), interleaved in one run.

    python bench/actions.py [--actions 60] [--rounds 5]

In process, no HTTP in front (as bench/turn_cost.py); the fake Messages API answers at 0 ms
in a process of its own, so this process's CPU time is the server's work alone: the loop,
the database, the SDK, the rules of the change (checked twice: a dry run when proposed, for
real when confirmed). The change is an address change of a pending order, which can be made
again and again.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.engine.port import Decision
from agent.runtime import build_runtime
from agent.store.importer import import_path
from bench.common import start_fake_process
from tests.conftest import customer_id
from tests.fake_anthropic import Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL = "ivan.santos3158@example.com"
ADDRESS = {"order_id": "#W8770097", "address1": "1 Main St", "address2": "", "city": "Austin",
           "state": "TX", "country": "USA", "zip": "73301"}  # fmt: skip


def reply(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("Done: that's taken care of.")
    if "address" in str(last):
        return tool_use("modify_pending_order_address", ADDRESS)
    return tool_use("list_orders", {"limit": 3})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=60, help="changes per block")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks of each")
    args = parser.parse_args()
    url = start_fake_process(reply)
    folder = Path(tempfile.mkdtemp(prefix="supportbot-actions-"))
    runtime = build_runtime(
        Settings(data_dir=folder, anthropic_base_url=url, anthropic_api_key="sk-ant-b")
    )
    import_path(runtime.engine, SLICE)
    customer = customer_id(runtime, EMAIL)
    agent = runtime.agent

    def change(n: int) -> None:
        for i in range(n):
            if i % 4 == 0:
                conversation = agent.start_conversation(customer_id=customer)
            proposed = agent.ask(conversation, f"please change the address {i}")
            assert proposed.pending_action is not None, proposed.reply
            done = agent.turn(
                conversation, Decision(proposed.pending_action.id, True, "bench")
            ).result()
            assert done.settled is not None and done.settled[1].status == "executed"

    def two_tool_turns(n: int) -> None:
        for i in range(n):
            if i % 4 == 0:
                conversation = agent.start_conversation(customer_id=customer)
            agent.ask(conversation, f"my orders? {i}")
            agent.ask(conversation, f"and my orders again? {i}")

    change(10)  # warm up both paths
    two_tool_turns(10)
    costs: dict[str, list[float]] = {"change": [], "two tool turns": []}
    for _ in range(args.rounds):
        for name, run in (("change", change), ("two tool turns", two_tool_turns)):
            cpu = time.process_time()
            run(args.actions)
            costs[name].append((time.process_time() - cpu) / args.actions * 1000)
    ratios = [a / b for a, b in zip(costs["change"], costs["two tool turns"], strict=True)]
    print("| per change | CPU ms (median of rounds) | rounds |\n|---|---|---|")
    for name, values in costs.items():
        print(f"| {name} | {statistics.median(values):.2f} | "
              f"{', '.join(f'{v:.1f}' for v in values)} |")  # fmt: skip
    print(f"\nproposal + confirmation / two tool turns: {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
