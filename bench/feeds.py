"""What the desk's live feeds cost the server, and how soon an event reaches a follower.

Each follower of `/v1/desk/events` (a desk tab) or `/v1/conversations/{id}/events` (a customer
waiting for a person) is a stream that reads the event table every SUPPORTBOT_EVENT_POLL_SECONDS.
This measures, on one `supportbot serve` worker (offline model, SQLite), the server's CPU while N
followers sit idle against the same interval with none (blocks interleaved, several rounds), and
the delay from a note posted on the desk to a follower receiving it.

    python bench/feeds.py --followers 50 200 --rounds 4 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import cli, cpu_seconds, free_port, stop, wait_for_ready  # noqa: E402

SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"


def measure(base: str, pid: int, key: str, n: int, seconds: float) -> float:
    """Cores the server used while `n` followers were connected and idle."""
    if n == 0:
        before = cpu_seconds(pid)
        time.sleep(seconds)
        return (cpu_seconds(pid) - before) / seconds
    result: list[float] = []

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        ready = asyncio.Event()
        seen = 0

        async def one(session: aiohttp.ClientSession) -> None:
            nonlocal seen
            async with session.get("/v1/desk/events") as response:
                async for line in response.content:
                    if line.startswith(b"event: ready"):
                        seen += 1
                        if seen == n:
                            ready.set()

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
            tasks = [asyncio.create_task(one(session)) for _ in range(n)]
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(1)  # connections settled
            before = cpu_seconds(pid)
            await asyncio.sleep(seconds)
            result.append((cpu_seconds(pid) - before) / seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    return result[0]


def delays(base: str, key: str, ticket: int, count: int) -> list[float]:
    """Seconds from posting a note to one follower receiving its event."""
    headers = {"Authorization": f"Bearer {key}"}
    found: list[float] = []

    async def run() -> None:
        async with (
            aiohttp.ClientSession(base, headers=headers) as session,
            session.get("/v1/desk/events") as response,
            httpx.AsyncClient(base_url=base, headers=headers) as client,
        ):
            lines = response.content
            async for line in lines:
                if line.startswith(b"event: ready"):
                    break
            for i in range(count):
                await asyncio.sleep(0.37)  # not in step with the poll interval
                sent = time.perf_counter()
                await client.post(f"/v1/tickets/{ticket}/notes", json={"text": f"n{i}"})
                async for line in lines:
                    if line.startswith(b"data:") and b'"note"' in line:
                        found.append(time.perf_counter() - sent)
                        break

    asyncio.run(run())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=1.0, help="SUPPORTBOT_EVENT_POLL_SECONDS")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="supportbot-feeds-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env |= {"SUPPORTBOT_DATA_DIR": str(folder), "SUPPORTBOT_OFFLINE": "true",
            "SUPPORTBOT_RATE_LIMIT_PER_KEY": "1000000", "SUPPORTBOT_LOG_LEVEL": "ERROR",
            "SUPPORTBOT_EVENT_POLL_SECONDS": str(args.poll),
            "SUPPORTBOT_EVENT_STREAM_SECONDS": "3600"}  # fmt: skip
    cli(env, "orders", "import", str(SLICE))
    admin = cli(env, "keys", "create", "--scope", "admin", "--name", "bench").split()[-1]
    backend = cli(env, "keys", "create", "--scope", "backend", "--name", "shop").split()[-1]
    log = folder / "server.log"
    server = subprocess.Popen([str(Path(sys.executable).parent / "supportbot"), "serve",
                               "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_ready(f"{base}/readyz", server, log)
        shop = {"Authorization": f"Bearer {backend}"}
        conversation = httpx.post(f"{base}/v1/conversations", json={}, headers=shop).json()["id"]
        httpx.post(f"{base}/v1/conversations/{conversation}/messages", headers=shop,
                   json={"text": "I want to talk to a human"}, timeout=60)  # fmt: skip
        tickets = httpx.get(f"{base}/v1/tickets", headers={"Authorization": f"Bearer {admin}"})
        ticket = tickets.json()[0]["id"]

        arms = [0, *args.followers]
        cores: dict[int, list[float]] = {n: [] for n in arms}
        for r in range(args.rounds):
            for n in arms[r % len(arms) :] + arms[: r % len(arms)]:  # the order rotates
                cores[n].append(measure(base, server.pid, admin, n, args.seconds))
        print(f"poll every {args.poll} s; {args.rounds} rounds of {args.seconds:.0f} s blocks\n")
        print("| followers | server CPU, % of a core (median; rounds) | per 100 followers |")
        print("|---|---|---|")
        idle = statistics.median(cores[0])
        for n in arms:
            med = statistics.median(cores[n])
            per = f"{(med - idle) * 100 / n * 100:.1f}" if n else "—"
            rounds = ", ".join(f"{c * 100:.1f}" for c in cores[n])
            print(f"| {n} | {med * 100:.1f} ({rounds}) | {per} |")
        found = delays(base, admin, ticket, 20)
        print(f"\nnote posted -> follower has it: median {statistics.median(found) * 1000:.0f} ms, "
              f"max {max(found) * 1000:.0f} ms (20 notes)")  # fmt: skip
    finally:
        stop(server)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
