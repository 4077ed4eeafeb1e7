"""Concurrent conversations against `supportbot serve`, with the fake Messages API answering
after a fixed delay.

    python bench/load.py --workers 1,2

Two scenarios per worker count:
- overhead: one conversation at a time, turns with one tool call (two model calls); server
  overhead per turn = turn latency - model time (target p50 <= 15 ms);
- throughput: 200 concurrent conversations, a 500 ms model, plain answers; turns/s against the
  ideal (concurrency / model time), target >= 80%.
The fake runs in this process and the client too, so they share the machine's 2 cores with
the server: the numbers are a floor for the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use  # noqa: E402
from tests.postgres import PostgresServer, start_postgres  # noqa: E402

SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
EMAIL = "ivan.santos3158@example.com"


@dataclass
class Scenario:
    name: str
    concurrency: int
    turns: int
    model_ms: int
    tool: bool
    conversations: int = 0  # in all; default: one per concurrent slot

    @property
    def model_seconds_per_turn(self) -> float:
        return self.model_ms / 1000 * (2 if self.tool else 1)


def responder(scenario: Scenario) -> Any:
    delay = scenario.model_ms / 1000

    def reply(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        if scenario.tool and not any(b.get("type") == "tool_result" for b in last):
            scripted = tool_use("list_orders", {"limit": 3})
        else:
            scripted = text("Here is what I found about your orders.")
        scripted.delay = delay
        return scripted

    return reply


def create_database(server: PostgresServer, name: str) -> str:
    import psycopg

    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    exe = Path(sys.executable).parent / "supportbot"
    done = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


async def conversation(client: httpx.AsyncClient, turns: int, latencies: list[float]) -> None:
    created = await client.post("/v1/conversations", json={"customer_email": EMAIL})
    created.raise_for_status()
    cid = created.json()["id"]
    for i in range(turns):
        start = time.perf_counter()
        response = await client.post(
            f"/v1/conversations/{cid}/messages", json={"text": f"orders? {i}"}
        )
        response.raise_for_status()
        latencies.append(time.perf_counter() - start)


async def drive(base: str, key: str, scenario: Scenario) -> tuple[float, list[float]]:
    """`scenario.conversations` conversations, at most `concurrency` at a time.

    Each concurrent slot has a client (a connection) of its own, as separate customers would:
    one shared httpx pool scans all its connections for every request, and at 200
    connections that client, not the server, was the bottleneck.
    """
    clients = asyncio.Queue[httpx.AsyncClient]()
    for _ in range(scenario.concurrency):
        headers = {"Authorization": f"Bearer {key}"}
        clients.put_nowait(httpx.AsyncClient(base_url=base, headers=headers, timeout=120))
    try:
        warm = await clients.get()
        await conversation(warm, 1, [])  # warm-up: first request loads everything
        clients.put_nowait(warm)
        latencies: list[float] = []

        async def one() -> None:
            client = await clients.get()
            try:
                await conversation(client, scenario.turns, latencies)
            finally:
                clients.put_nowait(client)

        start = time.perf_counter()
        await asyncio.gather(
            *(one() for _ in range(scenario.conversations or scenario.concurrency))
        )
        return time.perf_counter() - start, latencies
    finally:
        while not clients.empty():
            await clients.get_nowait().aclose()


def run(
    workers: int,
    scenario: Scenario,
    fake: FakeAnthropic,
    database_url: str | None,
    profile: Path | None = None,
) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="supportbot-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    if database_url:
        env["SUPPORTBOT_DATABASE_URL"] = database_url
    env |= {
        "SUPPORTBOT_DATA_DIR": str(folder),
        "ANTHROPIC_BASE_URL": fake.url,
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "SUPPORTBOT_RATE_LIMIT_PER_KEY": "1000000",
        "SUPPORTBOT_RATE_LIMIT_PER_CONVERSATION": "1000000",
        "SUPPORTBOT_LOG_LEVEL": "ERROR",
    }
    cli(env, "orders", "import", str(SLICE))
    key = (
        cli(env, "keys", "create", "--scope", "backend", "--name", "bench").strip().splitlines()[-1]
    )
    port = free_port()
    command = [str(Path(sys.executable).parent / "supportbot"), "serve", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    if profile is not None:  # py-spy samples the server (and its workers) into collapsed stacks
        out = profile / f"{workers}-{scenario.name.split()[0]}.txt"
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                   "--format", "raw", "--rate", "500", "--gil", "--nonblocking",
                   "-o", str(out), "--", *command]  # fmt: skip
    server = subprocess.Popen(
        command,
        env=env, stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        fake.default = responder(scenario)
        cpu_before = cpu_seconds(server.pid)
        bench_before = sum(os.times()[:2])
        try:
            wall, latencies = asyncio.run(drive(base, key, scenario))
        except httpx.HTTPStatusError:
            print((folder / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        cpu = cpu_seconds(server.pid) - cpu_before
        bench_cpu = sum(os.times()[:2]) - bench_before
    finally:
        if profile is not None:  # stop the served process; py-spy then writes its profile
            for child in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split():
                os.kill(int(child), signal.SIGTERM)
        else:
            server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    model = scenario.model_seconds_per_turn
    turns = len(latencies)
    ideal = scenario.concurrency / model
    return {
        "turns": turns,
        "turns_per_s": turns / wall,
        "ideal_per_s": ideal,
        "share_of_ideal": turns / wall / ideal,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "overhead_p50_ms": (percentile(latencies, 50) - model) * 1000,
        "overhead_p99_ms": (percentile(latencies, 99) - model) * 1000,
        "server_cpu_ms_per_turn": cpu / turns * 1000,
        "bench_cpu_ms_per_turn": bench_cpu / turns * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--model-ms", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=["overhead", "throughput"])
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the server")
    args = parser.parse_args()
    scenarios: list[Scenario] = [
        Scenario(
            "overhead (1 tool call)",
            concurrency=1,
            turns=4,
            model_ms=50,
            tool=True,
            conversations=10,
        ),
        Scenario(
            f"throughput ({args.concurrency} concurrent)",
            concurrency=args.concurrency,
            turns=3,
            model_ms=args.model_ms,
            tool=False,
        ),
    ]
    if args.only:
        scenarios: list[Scenario] = [s for s in scenarios if s.name.startswith(args.only)]
    postgres = start_postgres() if args.postgres else None
    fake = FakeAnthropic().start()
    print("| workers | scenario | turns | turns/s | ideal/s | share of ideal | p50 ms | p99 ms "
          "| overhead p50 ms | overhead p99 ms | server CPU ms/turn "
          "| fake+client CPU ms/turn |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            for scenario in scenarios:
                url = None
                if postgres is not None:
                    name = f"load_{workers}_{len(scenario.name)}_{int(time.time())}"
                    url = create_database(postgres, name)
                r = run(workers, scenario, fake, url, args.profile)
                cells = [str(workers), scenario.name, f"{r['turns']:.0f}"]
                cells += [f"{r['turns_per_s']:.1f}", f"{r['ideal_per_s']:.1f}"]
                cells.append(f"{r['share_of_ideal']:.0%}")
                cells += [
                    f"{r[k]:.1f}"
                    for k in (
                        "p50_ms",
                        "p99_ms",
                        "overhead_p50_ms",
                        "overhead_p99_ms",
                        "server_cpu_ms_per_turn",
                        "bench_cpu_ms_per_turn",
                    )
                ]
                print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        fake.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
