"""CPU one turn costs the server, in process, phase by phase (no HTTP in front).

    python bench/turn_cost.py --turns 200 [--profile out.prof]

The fake Messages API runs in a separate process, so this process's CPU is ours alone:
the agent loop, the database, the SDK. Complements bench/load.py, which measures through
HTTP with everything sharing the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session

from agent.config import Settings
from agent.runtime import build_runtime
from agent.store.importer import import_path
from agent.store.orders import find_customer_by_email
from bench.common import start_fake_process
from tests.fake_anthropic import Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL = "ivan.santos3158@example.com"


def reply(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]["content"]
    wants_tool = "orders" in str(last)
    if wants_tool and not any(b.get("type") == "tool_result" for b in last):
        return tool_use("list_orders", {"limit": 3})
    return text("Here is what I found about your orders.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    url = start_fake_process(reply)
    folder = Path(tempfile.mkdtemp(prefix="supportbot-turn-"))
    settings = Settings(data_dir=folder, anthropic_base_url=url, anthropic_api_key="sk-ant-b")
    runtime = build_runtime(settings)
    import_path(runtime.engine, SLICE)
    with Session(runtime.engine) as session:
        customer = find_customer_by_email(session=session, email=EMAIL)
        assert customer is not None
        customer_id = customer.id
    agent = runtime.agent
    print("| turn | CPU ms/turn |\n|---|---|")
    for name, message in (("plain", "hello there"), ("one tool call", "my orders?")):

        def turns(n: int, message: str = message) -> None:
            for i in range(n):
                if i % 4 == 0:
                    conversation = agent.start_conversation(customer_id=customer_id)
                agent.ask(conversation, f"{message} {i}")

        turns(20)  # warm up
        profiler = cProfile.Profile() if args.profile else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        turns(args.turns)
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.{name.split()[0]}")
        print(f"| {name} | {(time.process_time() - cpu) / args.turns * 1000:.2f} |")


if __name__ == "__main__":
    main()
