"""Thinking mode and effort for live support turns: latency, output tokens and cost per turn.

    python bench/thinking.py --live --rounds 5          # against Claude (needs ANTHROPIC_API_KEY)
    python bench/thinking.py                            # against the wire-level fake

Each round runs the same support conversation (an order question that needs verification and
two tool calls, a help-centre question, a follow-up) once under every setting, the settings
interleaved in a new order each round, so a drift of the service or the machine falls on all
of them alike. Per setting: median time to the first thing the customer sees (text, a
progress note or a tool label), median time to the whole answer, output tokens (thinking
included: it is billed as output) and dollars per turn from the pricing table.

Against the fake the model's own thinking time and token counts are not real (the fake answers
at once and counts characters), so that run only proves that every setting's requests are
valid for the model and shows our own overhead; the live run is the one that decides.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.engine.events import TurnFinished
from agent.engine.loop import Said
from agent.features.usage import cost, price_for
from agent.runtime import build_runtime
from agent.store.importer import import_path
from ingest.pipeline import ingest
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL, ORDER = "ivan.santos3158@example.com", "#W6893533"
TURNS = [
    f"Hi, I'm {EMAIL}. Where is my order {ORDER}?",
    "How do I descale my electric kettle?",
    "Thanks. Can I still return the kettle if it's been three weeks?",
]
SETTINGS = [
    ("between_tools", "low"),
    ("between_tools", "medium"),
    ("adaptive", "low"),
    ("adaptive", "medium"),
    ("adaptive", "high"),
]


def scripted(body: dict[str, Any]) -> Reply:
    """The fake's side of the conversation (only for the offline run)."""
    last = body["messages"][-1]["content"]
    said = " ".join(b.get("text", "") for b in last if b.get("type") == "text")
    if any(b.get("type") == "tool_result" for b in last):
        names = [b["name"] for m in body["messages"][-2:] for b in m["content"]
                 if b.get("type") == "tool_use"]  # fmt: skip
        if "verify_customer" in names:
            return tool_use("order_status", {"order_id": ORDER}, say="Verified; checking it.")
        return text("Here is what I found [1].")
    if EMAIL in said:
        return tool_use("verify_customer", {"email": EMAIL, "order_id": ORDER}, say="One moment.")
    return tool_use("search_knowledge_base", {"query": said})


def run_turns(settings: Settings) -> list[dict[str, float]]:
    runtime = build_runtime(settings)
    conversation = runtime.agent.start_conversation()
    rows = []
    for question in TURNS:
        start = time.perf_counter()
        first = None
        result = None
        for event in runtime.agent.turn(conversation, Said(question), stream=True).events():
            if first is None:
                first = time.perf_counter() - start
            if isinstance(event, TurnFinished):
                result = event.result
        assert result is not None
        price = price_for(result.model, settings.pricing)
        rows.append({
            "first": first or 0.0,
            "total": time.perf_counter() - start,
            "output": float(result.usage.get("output_tokens", 0)),
            "cost": cost(result.usage, price) if price else 0.0,
            "degraded": float(result.degraded),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", action="store_true", help="use Claude (ANTHROPIC_API_KEY)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="claude-sonnet-5-5")
    args = parser.parse_args()
    fake = None
    base: dict[str, Any] = {"model": args.model}
    if args.live:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            sys.exit("--live needs ANTHROPIC_API_KEY")
    else:
        fake = FakeAnthropic().start()
        fake.default = scripted
        base |= {"anthropic_base_url": fake.url, "anthropic_api_key": "sk-ant-bench"}
    folder = Path(tempfile.mkdtemp(prefix="supportbot-thinking-"))
    shared = Settings(data_dir=folder, **base)
    runtime = build_runtime(shared)
    import_path(runtime.engine, SLICE)
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [ROOT / "demo" / "docs"])
    results: dict[tuple[str, str], list[dict[str, float]]] = {s: [] for s in SETTINGS}
    try:
        for _ in range(args.rounds):
            order = list(SETTINGS)
            random.shuffle(order)
            for mode, effort in order:
                settings = shared.model_copy(update={"thinking": mode, "effort": effort})
                results[(mode, effort)] += run_turns(settings)
    finally:
        if fake is not None:
            rejected = list(fake.rejected)
            fake.stop()
            print(f"requests rejected by the model's rules: {len(rejected)}")
    print(f"\n{args.model}, {args.rounds} rounds x {len(TURNS)} turns, "
          f"{'live' if args.live else 'fake (shapes only)'}\n")  # fmt: skip
    print("| thinking | effort | first visible, p50 s | answer, p50 s | output tokens / turn "
          "| $ / turn | degraded |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (mode, effort), rows in results.items():
        print(
            f"| {mode} | {effort} | {statistics.median(r['first'] for r in rows):.2f} "
            f"| {statistics.median(r['total'] for r in rows):.2f} "
            f"| {statistics.mean(r['output'] for r in rows):.0f} "
            f"| {statistics.mean(r['cost'] for r in rows):.4f} "
            f"| {sum(r['degraded'] for r in rows):.0f} |"
        )


if __name__ == "__main__":
    main()
