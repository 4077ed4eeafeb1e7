"""What one turn costs as a conversation grows: one conversation of N turns, in process.

    python bench/long_conversation.py --turns 100 [--profile out.prof] [--async]
    python bench/long_conversation.py --turns 100 --http    # through `supportbot serve`
    python bench/long_conversation.py --turns 100 --latency 0.1    # each reply 100 ms late

Each turn is an order question the model answers with one tool call, written after a
sentence (which Sonnet 5.5 under `between_tools` returns as a signed thinking block, so the
history holds thinking blocks from the first turn on), then a short answer: the shape of
issue 26's 50-turn conversation. The fake Messages API (tests/fake_anthropic.py; latency 0
unless `--latency`) runs in its own process, so this process's CPU is the server's alone:
store, engine, SDK.
With `--async` the turns are driven as the HTTP API drives them (`result_async`: model calls
on the event loop, the rest in worker threads). With `--http` they go through a real
`supportbot serve` (one worker, SQLite) as a client sends them, one at a time, and a turn's
CPU is the server's (its processes, from /proc) while it ran.

Between two turns of the long conversation, one turn of a short one (a new conversation every
ten turns, so always its turns 1-10): for each block of ten turns of the long conversation,
the median CPU ms per turn of both, and their ratio, which stays near 1 when a turn's cost
does not grow with the conversation. Interleaved, the machine's drift falls on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session

from agent.config import Settings
from agent.engine.loop import Said
from agent.runtime import build_runtime
from agent.store.importer import import_path
from agent.store.orders import find_customer_by_email
from bench.common import start_fake_process
from tests.fake_anthropic import Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL = "ivan.santos3158@example.com"


def reply(body: dict[str, Any], latency: float = 0.0) -> Reply:
    last = body["messages"][-1]["content"]
    if not any(b.get("type") == "tool_result" for b in last):
        answer = tool_use("list_orders", {"limit": 3}, say="Let me look up your recent orders.")
    else:
        answer = text("Here is what I found about your orders: three of them, all on their way.")
    answer.delay = latency  # from the request's arrival at the fake, whatever it took to parse
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--profile", type=Path, help="cProfile (CPU time) of the turns, to it")
    parser.add_argument("--profile-turns", default="", metavar="FIRST-LAST",
                        help="profile only these turns, e.g. 41-50 (default: all)")  # fmt: skip
    parser.add_argument("--async", dest="use_async", action="store_true",
                        help="drive the turns as the HTTP API does")  # fmt: skip
    parser.add_argument("--http", action="store_true", help="through `supportbot serve`")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="the model's latency: each reply leaves this long after its "
                             "request arrived (default 0)")  # fmt: skip
    args = parser.parse_args()
    url = start_fake_process(partial(reply, latency=args.latency))
    if args.http:
        report(*over_http(url, args.turns))
        return
    folder = Path(tempfile.mkdtemp(prefix="supportbot-long-"))
    settings = Settings(data_dir=folder, anthropic_base_url=url, anthropic_api_key="sk-ant-b")
    runtime = build_runtime(settings)
    import_path(runtime.engine, SLICE)
    with Session(runtime.engine) as session:
        customer = find_customer_by_email(session=session, email=EMAIL)
        assert customer is not None
        customer_id = customer.id
    agent = runtime.agent
    warm = agent.start_conversation(customer_id=customer_id)
    for i in range(3):
        agent.ask(warm, f"my orders? warm-up {i}")
    gc.collect()
    gc.freeze()  # as `supportbot serve` does once started (agent.api.app.settle_heap)
    long = agent.start_conversation(customer_id=customer_id)
    cpu: dict[str, list[float]] = {"long": [], "short": []}
    wall: dict[str, list[float]] = {"long": [], "short": []}
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    loop = asyncio.new_event_loop() if args.use_async else None
    profiled = args.profile_turns or f"1-{args.turns}"
    first_profiled, last_profiled = (int(x) for x in profiled.split("-"))

    def turn(conversation: str, said: str, kind: str, profiling: bool) -> None:
        started_cpu, started = time.process_time(), time.perf_counter()
        if profiler is not None and profiling:
            profiler.enable()
        if loop is not None:
            result = loop.run_until_complete(agent.turn(conversation, Said(said)).result_async())
        else:
            result = agent.ask(conversation, said)
        if profiler is not None and profiling:
            profiler.disable()
        cpu[kind].append((time.process_time() - started_cpu) * 1000)
        wall[kind].append((time.perf_counter() - started) * 1000)
        assert result.reply, result

    for n in range(args.turns):
        # The long conversation's turn n, then turn n % 10 of a short one: the machine's drift
        # falls on both alike.
        profiling = first_profiled <= n + 1 <= last_profiled
        turn(long, f"what about my orders now? (message {n + 1})", "long", profiling)
        if n % 10 == 0:
            short = agent.start_conversation(customer_id=customer_id)
        turn(short, f"what about my orders now? (message {n % 10 + 1})", "short", False)
    if profiler is not None and args.profile:
        profiler.dump_stats(str(args.profile))
    report(cpu, wall, args.turns)


def over_http(url: str, turns: int) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    """The same turns through `supportbot serve`: (CPU ms, wall ms per turn by kind, turns)."""
    import httpx

    from bench.load import cli, free_port, server_base_env, stop, wait_for_ready

    folder = Path(tempfile.mkdtemp(prefix="supportbot-long-http-"))
    env = server_base_env() | {"SUPPORTBOT_DATA_DIR": str(folder), "ANTHROPIC_BASE_URL": url,
                               "ANTHROPIC_API_KEY": "sk-ant-bench",
                               "SUPPORTBOT_RATE_LIMIT_PER_KEY": "1000000",
                               "SUPPORTBOT_RATE_LIMIT_PER_CONVERSATION": "1000000",
                               "SUPPORTBOT_LOG_LEVEL": "ERROR"}  # fmt: skip
    cli(env, "orders", "import", str(SLICE))
    key = cli(env, "keys", "create", "--scope", "backend", "--name", "bench").split()[-1]
    port = free_port()
    log = folder / "server.log"
    server = subprocess.Popen([str(Path(sys.executable).parent / "supportbot"), "serve",
                               "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # fmt: skip
    cpu: dict[str, list[float]] = {"long": [], "short": []}
    wall: dict[str, list[float]] = {"long": [], "short": []}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_ready(f"{base}/readyz", server, log)
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip

            def start() -> str:
                created = client.post("/v1/conversations", json={"customer_email": EMAIL})
                return str(created.raise_for_status().json()["id"])

            def turn(conversation: str, said: str, kind: str) -> None:
                before, started = cpu_ns(server.pid), time.perf_counter()
                answer = client.post(f"/v1/conversations/{conversation}/messages",
                                     json={"text": said})  # fmt: skip
                wall[kind].append((time.perf_counter() - started) * 1000)
                cpu[kind].append((cpu_ns(server.pid) - before) / 1e6)
                assert answer.status_code == 200 and answer.json()["reply"], answer.text

            warm = start()
            for i in range(3):
                turn(warm, f"my orders? warm-up {i}", "short")
            cpu["short"].clear(), wall["short"].clear()
            long = start()
            for n in range(turns):
                turn(long, f"what about my orders now? (message {n + 1})", "long")
                if n % 10 == 0:
                    short = start()
                turn(short, f"what about my orders now? (message {n % 10 + 1})", "short")
    finally:
        stop(server)
        shutil.rmtree(folder, ignore_errors=True)
    return cpu, wall, turns


def cpu_ns(pid: int) -> int:
    """CPU time of a process's threads and its children's, in ns (/proc/*/schedstat: finer
    than the 10 ms ticks of /proc/*/stat)."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [str(pid), *children]:
        for task in Path(f"/proc/{process}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
    return total


def report(cpu: dict[str, list[float]], wall: dict[str, list[float]], turns: int) -> None:
    print(
        "| turns of the long conversation | CPU ms/turn | turns 1-10 of short ones, "
        "interleaved: CPU ms/turn | long / short, CPU | wall ms/turn, long / short |"
    )
    print("|---|---|---|---|---|")
    for start in range(0, turns, 10):
        block = slice(start, start + 10)
        long_cpu, short_cpu = (statistics.median(cpu[k][block]) for k in ("long", "short"))
        long_wall, short_wall = (statistics.median(wall[k][block]) for k in ("long", "short"))
        print(f"| {start + 1}-{min(start + 10, turns)} | {long_cpu:.2f} | {short_cpu:.2f} | "
              f"{long_cpu / short_cpu:.2f} | {long_wall:.1f} / {short_wall:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
