"""CPU the anthropic SDK itself spends per `messages.create`, with the fake Messages API in a
separate process (so this process's CPU time is the client's alone).

    python bench/sdk_cost.py --calls 300

The request has the shape of one of our turns: the system prompt, our tool definitions and a
short history. This is the floor under the server CPU per turn that bench/load.py reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anthropic

from agent.config import Settings
from agent.prompts import system_prompt
from bench.common import start_fake_process
from tests.fake_anthropic import Reply, text
from tools import default_registry


def shipped(body: dict[str, Any]) -> Reply:
    return text("Your order has shipped; the tracking number is 1234.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    client = anthropic.Anthropic(base_url=start_fake_process(shipped), api_key="sk-ant-bench")
    params = {
        "model": Settings().model,
        "max_tokens": 1024,
        "system": system_prompt(Settings(), None),
        "tools": default_registry().schemas(),
        "messages": [
            {"role": "user", "content": "Where is my order #W2611340?"},
            {"role": "assistant", "content": "Could you give me the email on your account?"},
            {"role": "user", "content": "It is james.li@example.com"},
        ],
    }
    for _ in range(20):  # warm up: imports, connection pool, caches
        client.messages.create(**params)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.calls):
        client.messages.create(**params)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{args.calls} calls: {cpu / args.calls * 1000:.2f} ms CPU per call in the client "
          f"({wall / args.calls * 1000:.2f} ms wall); 400 calls/s would need "
          f"{cpu / args.calls * 400:.2f} cores of SDK work alone")  # fmt: skip


if __name__ == "__main__":
    main()
