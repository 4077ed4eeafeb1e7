"""Concurrent conversations against `supportbot serve`, with a fake Messages API answering
after a fixed delay.

    python bench/load.py --workers 1,2 [--postgres] [--only overhead|throughput|steady]
    python bench/load.py --workers 1,2 --only throughput --floor   # the reference server

Scenarios, per worker count:
- overhead: one conversation at a time, turns with one tool call (two model calls); server
  overhead per turn = turn latency - model time (target p50 <= 15 ms);
- throughput: 200 concurrent conversations of 3 turns, all starting at once, a 500 ms model,
  plain answers; turns/s against the ideal (concurrency / model time), target >= 80%;
- steady: the same 200 conversations with their starts spread over one model time and 10
  turns each, so that turns arrive steadily instead of in lockstep waves of 200.

`--floor` serves bench/floor_app.py instead (HTTP in, one SDK call out, nothing stored): the
most this benchmark can show on this machine.

The load generator is lean so that it measures the server: the client is aiohttp on uvloop
and the fake Messages API is bench/fake_load.py (aiohttp, its own process). Both still share
the machine with the server, so the report shows the CPU each side spent per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
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
    stagger: bool = False  # spread the starts over one model time (steady arrivals)

    @property
    def model_seconds_per_turn(self) -> float:
        return self.model_ms / 1000 * (2 if self.tool else 1)


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


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    exe = Path(sys.executable).parent / "supportbot"
    done = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            detail = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"{url} did not come up\n{detail}")
        time.sleep(0.2)


async def conversation(client: aiohttp.ClientSession, turns: int, latencies: list[float]) -> None:
    async with client.post("/v1/conversations", json={"customer_email": EMAIL}) as created:
        created.raise_for_status()
        cid = (await created.json())["id"]
    for i in range(turns):
        start = time.perf_counter()
        async with client.post(
            f"/v1/conversations/{cid}/messages", json={"text": f"orders? {i}"}
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            await response.read()
        latencies.append(time.perf_counter() - start)


async def drive(base: str, key: str, scenario: Scenario) -> tuple[float, list[float]]:
    """`scenario.conversations` conversations, at most `concurrency` at a time."""
    connector = aiohttp.TCPConnector(limit=scenario.concurrency + 10)
    async with aiohttp.ClientSession(
        base, connector=connector, headers={"Authorization": f"Bearer {key}"},
        timeout=aiohttp.ClientTimeout(total=120),
    ) as client:  # fmt: skip
        await conversation(client, 1, [])  # warm-up: the first request loads everything
        latencies: list[float] = []
        slots = asyncio.Semaphore(scenario.concurrency)

        async def one(number: int) -> None:
            if scenario.stagger:
                await asyncio.sleep(number * scenario.model_ms / 1000 / scenario.concurrency)
            async with slots:
                await conversation(client, scenario.turns, latencies)

        start = time.perf_counter()
        await asyncio.gather(
            *(one(n) for n in range(scenario.conversations or scenario.concurrency))
        )
        return time.perf_counter() - start, latencies


def stop(process: subprocess.Popen[bytes], *, children_first: bool = False) -> None:
    if children_first:  # py-spy writes its profile once the process it runs has ended
        for child in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split():
            os.kill(int(child), signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def run(
    workers: int,
    scenario: Scenario,
    database_url: str | None,
    profile: Path | None = None,
    server_env: dict[str, str] | None = None,
    floor: bool = False,
) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="supportbot-load-"))
    bin_dir = Path(sys.executable).parent
    fake_port, port = free_port(), free_port()
    fake = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_load.py"), "--port", str(fake_port),
         "--delay-ms", str(scenario.model_ms), *(["--tool"] if scenario.tool else [])],
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    if database_url:
        env["SUPPORTBOT_DATABASE_URL"] = database_url
    env |= {
        "SUPPORTBOT_DATA_DIR": str(folder),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "SUPPORTBOT_RATE_LIMIT_PER_KEY": "1000000",
        "SUPPORTBOT_RATE_LIMIT_PER_CONVERSATION": "1000000",
        "SUPPORTBOT_LOG_LEVEL": "ERROR",
    }
    env |= server_env or {}
    if floor:  # bench/floor_app.py: the reference server, no key needed
        key = "none"
        command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--port",
                   str(port), "--workers", str(workers), "--log-level", "error",
                   "--no-access-log"]  # fmt: skip
    else:
        cli(env, "orders", "import", str(SLICE))
        key = cli(env, "keys", "create", "--scope", "backend", "--name", "bench")
        key = key.strip().splitlines()[-1]
        command = [str(bin_dir / "supportbot"), "serve", "--port", str(port),
                   "--workers", str(workers)]  # fmt: skip
    if profile is not None:  # py-spy samples the server (and its workers) into collapsed stacks
        out = profile / f"{workers}-{scenario.name.split()[0]}.txt"
        command = [str(bin_dir / "py-spy"), "record", "--subprocesses", "--format", "raw",
                   "--rate", "500", "--gil", "--nonblocking", "-o", str(out), "--",
                   *command]  # fmt: skip
    log = folder / "server.log"
    server = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/", fake)
        wait_for(f"{base}/healthz", server, log)
        before = cpu_seconds(server.pid), cpu_seconds(fake.pid), sum(os.times()[:2])
        machine_before = machine_busy()
        try:
            wall, latencies = uvloop.run(drive(base, key, scenario))
        except Exception:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        server_cpu = cpu_seconds(server.pid) - before[0]
        generator_cpu = cpu_seconds(fake.pid) - before[1] + sum(os.times()[:2]) - before[2]
        machine = [after - b for after, b in zip(machine_busy(), machine_before, strict=True)]
    finally:
        stop(server, children_first=profile is not None)
        stop(fake)
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
        "server_cpu_ms_per_turn": server_cpu / turns * 1000,
        "generator_cpu_ms_per_turn": generator_cpu / turns * 1000,
        "cores_busy": machine[0] / wall,
        "machine_busy": machine[0] / machine[1],
    }


COLUMNS = {
    "turns_per_s": "turns/s",
    "ideal_per_s": "ideal/s",
    "share_of_ideal": "share of ideal",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "overhead_p50_ms": "overhead p50 ms",
    "overhead_p99_ms": "overhead p99 ms",
    "server_cpu_ms_per_turn": "server CPU ms/turn",
    "generator_cpu_ms_per_turn": "load generator CPU ms/turn",
    "cores_busy": "cores busy (whole machine)",
    "machine_busy": "machine CPU busy",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--model-ms", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=["overhead", "throughput", "steady"])
    parser.add_argument(
        "--floor",
        action="store_true",
        help="serve bench/floor_app.py instead of supportbot: what the benchmark allows here",
    )
    parser.add_argument("--overhead-conversations", type=int, default=20)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row; each cell is the median"
    )
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the server")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server, e.g. SUPPORTBOT_API_THREADS=16 (repeatable)",
    )
    args = parser.parse_args()
    scenarios: list[Scenario] = [
        Scenario(
            "overhead (1 tool call)",
            concurrency=1,
            turns=4,
            model_ms=50,
            tool=True,
            conversations=args.overhead_conversations,
        ),
        Scenario(
            f"throughput ({args.concurrency} concurrent)",
            concurrency=args.concurrency,
            turns=3,
            model_ms=args.model_ms,
            tool=False,
        ),
        Scenario(
            f"steady ({args.concurrency} concurrent, staggered starts, 10 turns)",
            concurrency=args.concurrency,
            turns=10,
            model_ms=args.model_ms,
            tool=False,
            stagger=True,
        ),
    ]
    if args.only:
        scenarios = [s for s in scenarios if s.name.startswith(args.only)]
    postgres = start_postgres() if args.postgres else None
    print("| workers | scenario | turns | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            for scenario in scenarios:
                runs = []
                for attempt in range(args.repeat):
                    url = None  # a fresh database for every run
                    if postgres is not None:
                        name = f"load_{workers}_{scenario.concurrency}_{attempt}_{time.time_ns()}"
                        url = create_database(postgres, name)
                    server_env = dict(item.split("=", 1) for item in args.server_env)
                    runs.append(
                        run(workers, scenario, url, args.profile, server_env, floor=args.floor)
                    )
                r = {k: statistics.median(run_[k] for run_ in runs) for k in runs[0]}
                name = scenario.name
                if args.repeat > 1:
                    key = "overhead_p50_ms" if scenario.concurrency == 1 else "turns_per_s"
                    low, high = min(x[key] for x in runs), max(x[key] for x in runs)
                    name += f", median of {args.repeat} ({COLUMNS[key]} {low:.1f}-{high:.1f})"
                if args.floor:
                    name = f"floor app: {name}"
                cells = [str(workers), name, f"{r['turns']:.0f}"]
                for column in COLUMNS:
                    value = r[column]
                    percent = column in ("share_of_ideal", "machine_busy")
                    cells.append(f"{value:.0%}" if percent else f"{value:.1f}")
                print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
