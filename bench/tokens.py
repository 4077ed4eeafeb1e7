"""Input tokens of a long support conversation: naive, cached, and cached within a budget.

    python bench/tokens.py --turns 40 --budget 6000

A scripted conversation (every turn calls a tool, then answers) runs against the fake Messages
API, which simulates prompt caching and counts about four characters a token. Billed-equivalent
input = uncached input + 1.25 x cache writes + 0.1 x cache reads. Targets: caching + budget
<= 25% of the naive total, and no request above the budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.runtime import build_runtime
from agent.store.importer import import_path
from agent.usage import report
from tests.fake_anthropic import FakeAnthropic, Reply, _prompt_layout, text, tool_use

SLICE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "retail_slice.json"
UNLIMITED = 10_000_000


def answer(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("Here is what I found: your orders are as listed, all in good standing. "
                    "Anything else I can check for you?")  # fmt: skip
    return tool_use("list_orders", {"limit": 5})


def run(
    fake: FakeAnthropic, turns: int, *, caching: bool, budget: int, trim: float = 0.5
) -> dict[str, float]:
    fake.reset()
    fake.default = answer
    folder = Path(tempfile.mkdtemp(prefix="supportbot-tokens-"))
    settings = Settings(
        data_dir=folder, anthropic_base_url=fake.url, anthropic_api_key="sk-ant-bench",
        prompt_caching=caching, context_budget_tokens=budget, context_trim_target=trim,
    )  # fmt: skip
    runtime = build_runtime(settings)
    import_path(runtime.engine, SLICE)
    conversation = runtime.agent.start_conversation(customer_id="ivan_santos_6635")
    for turn in range(turns):
        runtime.agent.ask(conversation, f"Turn {turn}: could you check my orders again, please?")
    _, total = report(runtime.engine, settings.pricing)
    prompt_sizes = [_prompt_layout(b)[0] for b in fake.bodies]
    billed = (
        total.input_tokens
        + 1.25 * total.cache_creation_input_tokens
        + 0.1 * total.cache_read_input_tokens
    )
    return {
        "requests": len(prompt_sizes),
        "max_request": max(prompt_sizes),
        "last_request": prompt_sizes[-1],
        "billed": billed,
        "cost": total.cost_usd or 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--budget", type=int, default=6000)
    parser.add_argument("--trim-target", type=float, default=0.5)
    args = parser.parse_args()
    fake = FakeAnthropic().start()
    try:
        rows = {
            "full history, no caching (naive)": run(
                fake, args.turns, caching=False, budget=UNLIMITED
            ),
            "caching only": run(fake, args.turns, caching=True, budget=UNLIMITED),
            f"caching + budget {args.budget}": run(
                fake, args.turns, caching=True, budget=args.budget, trim=args.trim_target
            ),
        }
    finally:
        fake.stop()
    naive = rows["full history, no caching (naive)"]["billed"]
    print(f"{args.turns} turns, one tool call each\n")
    print("| strategy | requests | largest request | last request | billed-equivalent input "
          "| share of naive | cost $ |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['requests']:.0f} | {r['max_request']:.0f} | {r['last_request']:.0f} "
              f"| {r['billed']:.0f} | {r['billed'] / naive:.0%} | {r['cost']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
