"""What monitoring costs a turn, CPU in process: A/B/C interleaved in one run.

    python bench/tracing_cost.py --turns 8 --rounds 100

Arms, switched on one runtime between short blocks of turns (the order rotates each round):
- bare: no turn watcher and the plain storage port: the engine as it was before monitoring;
- default: as shipped with no OTEL_EXPORTER_OTLP_*ENDPOINT set: Prometheus metrics recorded,
  tracing off (each hook one `is None` test);
- traced: tracing on, spans batched to an exporter that drops them (what the SDK costs, without
  the network).

Each turn is a tool turn over the HTTP API's driver (`ask_async`: model calls on the event loop,
database and tool work in worker threads): two model calls, one tool, four store writes. The fake
Messages API runs in a process of its own, so this process's CPU is ours alone.

Then the hooks alone, without a turn around them: what the watcher does for such a turn (begin,
five stretches, two model calls, the events, the end), in microseconds, tracing off and on,
timed as timeit does (best of several runs, garbage collection off; this thread's CPU only): a
figure that does not drown in the machine's noise.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from agent.engine.loop import Said

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlmodel import Session

from agent import tracing
from agent.config import Settings
from agent.engine.events import Outcome, ToolCall, ToolFinished, TurnFinished, TurnResult
from agent.engine.loop import Agent
from agent.models.base import ModelCall, ModelReply, ModelRequest
from agent.observability import turns
from agent.observability.traced_store import TracedTurnStore
from agent.runtime import build_runtime
from agent.store.importer import import_path
from agent.store.orders import find_customer_by_email
from bench.common import start_fake_process
from tests.fake_anthropic import Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL = "ivan.santos3158@example.com"
ARMS = ("bare", "default", "traced")


def reply(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]["content"]
    if not any(b.get("type") == "tool_result" for b in last):
        return tool_use("list_orders", {"limit": 3})
    return text("Here is what I found about your orders.")


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def arm(agent: Agent, name: str, settings: Settings, store: Any, traced: Any) -> None:
    """Wire `agent` as the arm `name` runs."""
    agent.watch = None if name == "bare" else turns.watcher(settings)
    agent.store = store if name == "bare" else TracedTurnStore(store)
    tracing.use(traced if name == "traced" else None)


def hooks_alone(agent: Agent, settings: Settings, n: int = 2_000, repeat: int = 7) -> float:
    """CPU microseconds the watcher spends on one tool turn (no turn runs): the best of
    `repeat` runs of `n`, garbage collection off, as timeit measures."""
    gc.collect()
    gc.disable()
    try:
        return min(_hooks(agent, settings, n) for _ in range(repeat))
    finally:
        gc.enable()


def _hooks(agent: Agent, settings: Settings, n: int) -> float:
    watch = turns.watcher(settings)
    call = ModelCall(agent.model, ModelRequest("system", [], [], 1024), False)
    usage = {"input_tokens": 3, "output_tokens": 30, "cache_read_input_tokens": 2900}
    reply = ModelReply([{"type": "text", "text": "ok"}], "end_turn", "claude-sonnet-5-5", usage)
    tool = ToolFinished("toolu_1", "list_orders", False, "{}")
    result = TurnResult("c", "ok", Outcome.ANSWERED, False, "claude-sonnet-5-5",
                        [ToolCall("list_orders", {}, False)], usage)  # fmt: skip
    cpu = time.thread_time()
    for _ in range(n):
        turn = watch("c")
        turn.begin()
        for stretch in range(5):
            with turn.inside():
                pass
            if stretch in (1, 3):
                with turn.call(call) as watched:
                    with watched.inside():
                        pass
                    watched.replied(reply)
        turn.event(tool)
        turn.event(TurnFinished(result))
        turn.end(None)
    return (time.thread_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=8, help="turns per block")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    url = start_fake_process(reply)
    folder = Path(tempfile.mkdtemp(prefix="supportbot-tracing-"))
    settings = Settings(data_dir=folder, anthropic_base_url=url, anthropic_api_key="sk-ant-b")
    runtime = build_runtime(settings)
    import_path(runtime.engine, SLICE)
    with Session(runtime.engine) as session:
        customer = find_customer_by_email(session=session, email=EMAIL)
        assert customer is not None
        customer_id = customer.id
    agent = runtime.agent
    store = agent.store.inner if isinstance(agent.store, TracedTurnStore) else agent.store
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))

    # The hooks alone first, in a process that has run nothing else yet.
    tracing.use(None)
    off = hooks_alone(agent, settings)
    tracing.use(provider)
    on = hooks_alone(agent, settings)
    provider.force_flush()
    tracing.use(None)

    async def turns_of(n: int) -> None:
        for i in range(n):
            if i % 4 == 0:
                conversation = agent.start_conversation(customer_id=customer_id)
            result = await agent.turn(conversation, Said(f"my orders? {i}")).result_async()
            assert result.tool_calls, result

    async def block(name: str, n: int) -> float:
        arm(agent, name, settings, store, provider)
        cpu = time.process_time()
        await turns_of(n)
        provider.force_flush()  # the batch processor's export CPU belongs to its arm
        return (time.process_time() - cpu) / n * 1000

    cpu: dict[str, list[float]] = {name: [] for name in ARMS}

    async def run() -> None:
        for name in ARMS:
            await block(name, 20)  # warm up
        for r in range(args.rounds):
            order = ARMS[r % 3 :] + ARMS[: r % 3]
            for name in order:
                cpu[name].append(await block(name, args.turns))
        await agent.model.aclose()

    anyio.run(run)
    print(f"CPU ms per tool turn, {args.rounds} rounds of {args.turns} turns per arm\n")
    print("| arm | CPU ms per turn | vs bare (five segments) |\n|---|---|---|")
    for name in ARMS:
        # Many short blocks, interleaved: the machine's slow and fast phases fall on every arm
        # alike. The ratio is of the totals; the spread, of the totals of five segments.
        segments = [
            sum(cpu[name][i::5]) / sum(cpu["bare"][i::5]) for i in range(min(5, args.rounds))
        ]
        ratio = sum(cpu[name]) / sum(cpu["bare"])
        spread = f"{min(segments):.3f}–{max(segments):.3f}"
        print(f"| {name} | {statistics.mean(cpu[name]):.2f} | {ratio:.3f} ({spread}) |")
    print(f"\nThe watcher alone, CPU µs per tool turn: tracing off {off:.1f}, on {on:.1f}")


if __name__ == "__main__":
    main()
