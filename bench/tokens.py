"""Input tokens of a long support conversation: naive, cached, and cached within a budget.

    python bench/tokens.py --turns 40 --budget 6000 [--gap-minutes 10]

A scripted conversation (every turn calls a tool, then answers) runs against the fake Messages
API, which simulates prompt caching as the API does (per-model minimum cacheable length,
5-minute and 1-hour lifetimes on its own clock) and counts about four characters a token.
Billed-equivalent input = uncached input + 1.25 x 5-minute writes + 2 x 1-hour writes +
0.05 x cache reads (Sonnet 5.5's multipliers); cost is from the pricing table. Targets:
caching + budget <= 25% of the naive total, and no request above the budget. The last two rows
are a low-traffic deployment: a customer turn every `--gap-minutes`, with the stable prefix
(tools + system prompt) cached for 5 minutes or for an hour (SUPPORTBOT_CACHE_TTL).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.features.usage import report
from agent.runtime import build_runtime
from agent.store.importer import import_path
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
    fake: FakeAnthropic,
    turns: int,
    *,
    caching: bool,
    budget: int,
    trim: float = 0.5,
    gap_minutes: float = 0.0,
    ttl: str = "5m",
) -> dict[str, float]:
    fake.reset()
    fake.default = answer
    folder = Path(tempfile.mkdtemp(prefix="supportbot-tokens-"))
    settings = Settings(
        data_dir=folder, anthropic_base_url=fake.url, anthropic_api_key="sk-ant-bench",
        prompt_caching=caching, context_budget_tokens=budget, context_trim_target=trim,
        cache_ttl=ttl,
    )  # fmt: skip
    runtime = build_runtime(settings)
    import_path(runtime.engine, SLICE)
    conversation = runtime.agent.start_conversation(customer_id="ivan_santos_6635")
    for turn in range(turns):
        if turn and gap_minutes:
            fake.advance(gap_minutes * 60)
        runtime.agent.ask(conversation, f"Turn {turn}: could you check my orders again, please?")
    _, total = report(runtime.engine, settings.pricing)
    prompt_sizes = [_prompt_layout(b)[0] for b in fake.bodies]
    hour_writes = sum(u["cache_creation"]["ephemeral_1h_input_tokens"] for u in fake.usages)
    billed = (
        total.input_tokens
        + 1.25 * (total.cache_creation_input_tokens - hour_writes)
        + 2.0 * hour_writes
        + 0.05 * total.cache_read_input_tokens
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
    parser.add_argument("--gap-minutes", type=float, default=10.0)
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
            f"caching + budget, a turn every {args.gap_minutes:g} min, 5-minute prefix": run(
                fake, args.turns, caching=True, budget=args.budget, trim=args.trim_target,
                gap_minutes=args.gap_minutes, ttl="5m",
            ),
            f"caching + budget, a turn every {args.gap_minutes:g} min, 1-hour prefix": run(
                fake, args.turns, caching=True, budget=args.budget, trim=args.trim_target,
                gap_minutes=args.gap_minutes, ttl="1h",
            ),
        }  # fmt: skip
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
