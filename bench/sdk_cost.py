"""CPU the anthropic SDK itself spends per `messages.create`, with the fake Messages API in a
separate process (so this process's CPU time is the client's alone).

    python bench/sdk_cost.py --calls 300
    python bench/sdk_cost.py --concurrency 200     # many calls in flight, three ways

The request has the shape of one of our turns: the system prompt, our tool definitions and a
short history. This is the floor under the server CPU per turn that bench/load.py reports.

With `--concurrency N`, N callers each make 6 calls to bench/fake_load.py answering after
500 ms, through: the blocking client in N threads (how the API ran turns before), the async
client with its default httpx transport, and the async client over aiohttp (what the API
uses now, agent/models/claude.py).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anthropic

from agent.config import Settings
from agent.engine.prompts import system_prompt
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
    parser.add_argument("--concurrency", type=int, help="calls in flight (see above)")
    args = parser.parse_args()
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
    if args.concurrency:
        concurrent(params, args.concurrency)
        return
    client = anthropic.Anthropic(base_url=start_fake_process(shipped), api_key="sk-ant-bench")
    for _ in range(20):  # warm up: imports, connection pool, caches
        client.messages.create(**params)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.calls):
        client.messages.create(**params)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{args.calls} calls: {cpu / args.calls * 1000:.2f} ms CPU per call in the client "
          f"({wall / args.calls * 1000:.2f} ms wall); 400 calls/s would need "
          f"{cpu / args.calls * 400:.2f} cores of SDK work alone")  # fmt: skip


CALLS_EACH = 6


def concurrent(params: dict[str, Any], callers: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fake_load.py"),
                             "--port", str(port), "--delay-ms", "500"])  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    time.sleep(2)
    print(f"{callers} callers x {CALLS_EACH} calls, 500 ms model\n")
    print("| client | CPU ms per call | calls/s |\n|---|---|---|")
    try:
        blocking = anthropic.Anthropic(base_url=url, api_key="sk-ant-bench", max_retries=0)

        def caller(_: int) -> None:
            for _ in range(CALLS_EACH):
                blocking.messages.create(**params)

        def threads() -> None:
            with ThreadPoolExecutor(callers) as pool:
                list(pool.map(caller, range(callers)))

        _report(f"blocking client, {callers} threads", callers, threads)
        for name, aiohttp in (("async client, httpx", False), ("async client, aiohttp", True)):

            async def calls(name: str = name, aiohttp: bool = aiohttp) -> None:
                client = anthropic.AsyncAnthropic(
                    base_url=url,
                    api_key="sk-ant-bench",
                    max_retries=0,
                    http_client=anthropic.DefaultAioHttpClient() if aiohttp else None,
                )

                async def one() -> None:
                    for _ in range(CALLS_EACH):
                        await client.messages.create(**params)

                await asyncio.gather(*(one() for _ in range(callers)))  # warm up
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.gather(*(one() for _ in range(callers)))
                _print(name, callers, time.process_time() - cpu, time.perf_counter() - wall)
                await client.close()

            asyncio.run(calls())
    finally:
        fake.terminate()


def _report(name: str, callers: int, run: Callable[[], None]) -> None:
    run()  # warm up
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    _print(name, callers, time.process_time() - cpu, time.perf_counter() - wall)


def _print(name: str, callers: int, cpu: float, wall: float) -> None:
    calls = callers * CALLS_EACH
    print(f"| {name} | {cpu / calls * 1000:.2f} | {calls / wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
