"""Concurrent conversations against `supportbot serve`, with a fake Messages API answering
after a fixed delay.

    python bench/load.py --workers 1,2 [--postgres] [--only mixed|overhead|throughput|steady]
    python bench/load.py --instances 1,2 --postgres --only throughput   # separate servers
    python bench/load.py --workers 1,2 --only throughput --floor   # the reference server
    python bench/load.py --kinds [--kind-rounds 4]   # CPU per help-centre vs order turn

`--kinds` runs one worker and measures the server CPU of blocks of 15 order turns and 15
help-centre turns, interleaved, on a quiet machine and then with a CPU-bound process running
beside the server, in one run.

Scenarios, per worker count:
- mixed (the headline): one conversation at a time, turns with one tool call (two model
  calls), half of them help-centre questions answered from the ingested demo docs
  (`search_knowledge_base`) and half order questions (`list_orders`); server overhead per turn
  = turn latency - model time;
- overhead: the same with order questions only;
- throughput: 200 concurrent conversations of 3 turns, all starting at once, a 500 ms model,
  plain answers; turns/s against the ideal (concurrency / model time), target >= 80%;
- steady: the same 200 conversations with their starts spread over one model time and 10
  turns each, so that turns arrive steadily instead of in lockstep waves of 200.

`--instances 1,2` runs that many `supportbot serve` processes side by side (each with
`--workers`, all on one database: use `--postgres`; a Chroma server of their own when the
scenario asks the help centre), as a load balancer would see them: conversation n goes to
instance n mod N. Server CPU is summed over the instances.

`--floor` serves bench/floor_app.py instead (HTTP in, one SDK call out, nothing stored): the
most this benchmark can show on this machine. `--floor --durable-floor`: the floor app also
stores each turn's message and answer (two write transactions, on the same database as the
run's): the most a server that keeps its conversations can show here.

The load generator is lean so that it measures the server: the client is aiohttp on uvloop
and the fake Messages API is bench/fake_load.py (aiohttp, its own process). Both still share
the machine with the server, so the report shows the CPU each side spent per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from tests.chroma_server import start_chroma  # noqa: E402
from tests.postgres import PostgresServer, start_postgres  # noqa: E402

SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"
DOCS = ROOT / "demo" / "docs"
EMAIL = "ivan.santos3158@example.com"
# Help-centre questions whose answers are in demo/docs, worded as customers write them.
HELP_QUESTIONS = [
    "how do I descale my kettle",
    "can I return something after 30 days",
    "how long does a refund take to reach my credit card",
    "do gift cards expire",
    "what does processed mean on my order",
    "how do I adjust the height of the office chair",
    "is the water bottle dishwasher safe",
    "how long is the warranty on the kettle",
    "can I change the shipping address after ordering",
    "which payment methods do you accept",
    "how much does express shipping cost",
    "my chair wobbles, what should I do",
]


@dataclass
class Scenario:
    name: str
    concurrency: int
    turns: int
    model_ms: int
    tool: bool
    conversations: int = 0  # in all; default: one per concurrent slot
    stagger: bool = False  # spread the starts over one model time (steady arrivals)
    help_share: float = 0.0  # share of turns that are help-centre questions

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


def _is_encoder(pid: int) -> bool:
    return b"kb.encoder_process" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _peak(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib(pid: int) -> float:
    """The largest peak resident memory (VmHWM) among a server's worker processes (the
    process itself when it has none; the encoder process it shares is not a worker)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    workers = [c for c in children if not _is_encoder(c)]
    return max(_peak(p) for p in workers or [pid])


def encoder_rss_mib(pid: int) -> float:
    """The peak resident memory of the server's encoder process (kb.encoder_process), if any."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    encoders = [_peak(c) for c in children if _is_encoder(c)]
    return max(encoders) if encoders else float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def server_base_env(root: Path = ROOT) -> dict[str, str]:
    """The servers' environment: no operator settings, and this checkout's code (or `root`'s)
    first on the path (a worktree's benchmark measures the worktree, whatever the virtualenv
    points at)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


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


_asked = iter(range(10**9))


def message(help_share: float, unique: bool = False) -> str:
    """The next customer message: a help-centre question for `help_share` of them (worded
    anew each time when `unique`, so that no query repeats)."""
    n = next(_asked)
    if help_share and n % round(1 / help_share) == 0:
        question = HELP_QUESTIONS[(n // round(1 / help_share)) % len(HELP_QUESTIONS)]
        return "help: " + question + (f", asking for order {n}" if unique else "")
    return f"orders? {n}"


async def conversation(
    client: aiohttp.ClientSession,
    turns: int,
    latencies: list[float],
    help_share: float = 0.0,
    unique: bool = False,
    key: str | None = None,
    creations: list[float] | None = None,
) -> None:
    """A conversation of `turns` turns (with `key`, or the client's own); the time its
    creation took is added to `creations`."""
    auth = {"Authorization": f"Bearer {key}"} if key else None
    start = time.perf_counter()
    async with client.post(
        "/v1/conversations", json={"customer_email": EMAIL}, headers=auth
    ) as created:
        created.raise_for_status()
        cid = (await created.json())["id"]
    if creations is not None:
        creations.append(time.perf_counter() - start)
    for _ in range(turns):
        start = time.perf_counter()
        async with client.post(
            f"/v1/conversations/{cid}/messages",
            json={"text": message(help_share, unique)},
            headers=auth,
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            await response.read()
        latencies.append(time.perf_counter() - start)


async def drive(
    bases: list[str], key: str, scenario: Scenario, keys: list[str] | None = None
) -> tuple[float, list[float], list[float]]:
    """`scenario.conversations` conversations, at most `concurrency` at a time; conversation
    n on server n mod len(bases), with key n mod len(keys) when there are `keys`. The wall
    time, each turn's latency and each conversation's creation's."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for base in bases:
            connector = aiohttp.TCPConnector(limit=scenario.concurrency + 10)
            clients.append(await stack.enter_async_context(aiohttp.ClientSession(
                base, connector=connector, headers={"Authorization": f"Bearer {key}"},
                timeout=aiohttp.ClientTimeout(total=120),
            )))  # fmt: skip
        for client in clients:
            await conversation(client, 1, [])  # warm-up: the first request loads everything
        latencies: list[float] = []
        creations: list[float] = []
        slots = asyncio.Semaphore(scenario.concurrency)

        async def one(number: int) -> None:
            if scenario.stagger:
                await asyncio.sleep(number * scenario.model_ms / 1000 / scenario.concurrency)
            async with slots:
                await conversation(clients[number % len(clients)], scenario.turns, latencies,
                                   scenario.help_share,
                                   key=keys[number % len(keys)] if keys else None,
                                   creations=creations)  # fmt: skip

        start = time.perf_counter()
        await asyncio.gather(
            *(one(n) for n in range(scenario.conversations or scenario.concurrency))
        )
        return time.perf_counter() - start, latencies, creations


class LockWaits:
    """Samples, every 10 ms while the load runs, how many of the database's PostgreSQL
    backends wait on a lock (a row lock: another transaction holds a row this one writes):
    contention between turns, workers and instances shows here first."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.samples: list[int] = []
        self._done = threading.Event()
        self._connection = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")  # fmt: skip
        while not self._done.wait(0.01):
            row = self._connection.execute(query).fetchone()
            self.samples.append(int(row[0]) if row else 0)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        self._connection.close()
        return statistics.fmean(self.samples) if self.samples else float("nan")


def spread_keys(database_url: str, count: int) -> list[str]:
    """`count` backend keys (none when 1: the one the CLI made serves every conversation),
    so that conversations do not all count against one key's rate-limit row."""
    if count <= 1:
        return []
    from agent.store.db import make_engine, transaction
    from agent.store.keys import create_key
    from agent.store.tables import KeyScope

    engine = make_engine(database_url)
    with transaction(engine) as session:
        made = [create_key(session=session, name=f"bench-{n}", scope=KeyScope.BACKEND)[1]
                for n in range(count)]  # fmt: skip
    engine.dispose()
    return made


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
    durable: bool = False,
    instances: int = 1,
    keys: int = 1,
    root: Path = ROOT,
) -> dict[str, float]:
    """One scenario against fresh servers of this checkout's code (or `root`'s: another
    commit's worktree)."""
    folder = Path(tempfile.mkdtemp(prefix="supportbot-load-"))
    bin_dir = Path(sys.executable).parent
    fake_port, ports = free_port(), [free_port() for _ in range(instances)]
    fake = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_load.py"), "--port", str(fake_port),
         "--delay-ms", str(scenario.model_ms), *(["--tool"] if scenario.tool else [])],
    )  # fmt: skip
    env = server_base_env(root)
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
    chroma = None
    if instances > 1 and scenario.help_share and not floor:  # one knowledge base for all
        chroma = start_chroma()
        env["SUPPORTBOT_CHROMA_URL"] = chroma.url
    more_keys: list[str] = []
    if floor:  # bench/floor_app.py: the reference server, no key needed
        key = "none"
        if durable:  # it stores each turn's message and answer (its own tables)
            from bench.floor_app import prepare

            env["FLOOR_DATABASE_URL"] = database_url or f"sqlite:///{folder / 'floor.db'}"
            prepare(env["FLOOR_DATABASE_URL"])
        command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--port",
                   "{port}", "--workers", str(workers), "--log-level", "error",
                   "--no-access-log"]  # fmt: skip
    else:
        cli(env, "orders", "import", str(SLICE))
        if scenario.help_share:
            cli(env, "ingest", str(DOCS))
        key = cli(env, "keys", "create", "--scope", "backend", "--name", "bench")
        key = key.strip().splitlines()[-1]
        more_keys = spread_keys(database_url or f"sqlite:///{folder / 'supportbot.db'}", keys)
        command = [str(bin_dir / "supportbot"), "serve", "--port", "{port}",
                   "--workers", str(workers)]  # fmt: skip
    if profile is not None:  # py-spy samples the server (and its workers) into collapsed stacks
        stacks = profile / f"{workers}-{scenario.name.split()[0]}-{{port}}.txt"
        command = [str(bin_dir / "py-spy"), "record", "--subprocesses", "--format", "raw",
                   "--rate", "500", "--gil", "--nonblocking", "-o", str(stacks), "--",
                   *command]  # fmt: skip
    logs = [folder / f"server-{n}.log" for n in range(instances)]
    # Instances are separate hosts in all but name: each has its own data directory (an
    # embedded Chroma, the web-chat key file), and they share the database (and the Chroma
    # server, when there is one).
    own = [{"SUPPORTBOT_DATA_DIR": str(folder / f"instance-{n}")} if instances > 1 else {}
           for n in range(instances)]  # fmt: skip
    launched = time.perf_counter()
    servers = [
        subprocess.Popen([part.format(port=port) for part in command], env=env | mine,
                         cwd=root, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        for port, log, mine in zip(ports, logs, own, strict=True)
    ]  # fmt: skip
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/", fake)
        for server, base, log in zip(servers, bases, logs, strict=True):
            if floor:
                wait_for(f"{base}/healthz", server, log)
            else:  # ready: the encoder and indexes are loaded (not counted against the turns)
                wait_for_ready(f"{base}/readyz", server, log)
        ready_s = time.perf_counter() - launched

        def server_cpu_now() -> float:
            return sum(cpu_seconds(server.pid) for server in servers)

        before = server_cpu_now(), cpu_seconds(fake.pid), sum(os.times()[:2])
        machine_before = machine_busy()
        locks = LockWaits(database_url) if database_url else None
        try:
            wall, latencies, creations = uvloop.run(drive(bases, key, scenario, more_keys))
        except Exception:
            for log in logs:
                print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            waiting = locks.stop() if locks is not None else float("nan")
        peak_rss = max(peak_rss_mib(server.pid) for server in servers)
        encoder_rss = max(encoder_rss_mib(server.pid) for server in servers)
        server_cpu = server_cpu_now() - before[0]
        generator_cpu = cpu_seconds(fake.pid) - before[1] + sum(os.times()[:2]) - before[2]
        machine = [after - b for after, b in zip(machine_busy(), machine_before, strict=True)]
    finally:
        for server in servers:
            stop(server, children_first=profile is not None)
        stop(fake)
        if chroma is not None:
            chroma.stop()
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
        "create_p50_ms": percentile(creations, 50) * 1000,
        "create_max_ms": max(creations) * 1000,
        "overhead_p50_ms": (percentile(latencies, 50) - model) * 1000,
        "overhead_p99_ms": (percentile(latencies, 99) - model) * 1000,
        "server_cpu_ms_per_turn": server_cpu / turns * 1000,
        "generator_cpu_ms_per_turn": generator_cpu / turns * 1000,
        "cores_busy": machine[0] / wall,
        "machine_busy": machine[0] / machine[1],
        "peak_rss_mib": peak_rss,
        "encoder_rss_mib": encoder_rss,
        "ready_s": ready_s,
        "lock_waits": waiting,
    }


COLUMNS = {
    "turns_per_s": "turns/s",
    "ideal_per_s": "ideal/s",
    "share_of_ideal": "share of ideal",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "create_p50_ms": "conversation creation p50 ms",
    "create_max_ms": "conversation creation max ms",
    "overhead_p50_ms": "overhead p50 ms",
    "overhead_p99_ms": "overhead p99 ms",
    "server_cpu_ms_per_turn": "server CPU ms/turn",
    "generator_cpu_ms_per_turn": "load generator CPU ms/turn",
    "cores_busy": "cores busy (whole machine)",
    "machine_busy": "machine CPU busy",
    "peak_rss_mib": "peak RSS MiB per worker",
    "encoder_rss_mib": "encoder process peak RSS MiB",
    "ready_s": "ready after, s",
    "lock_waits": "PostgreSQL backends waiting on a lock (mean)",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--keys", type=int, default=1,
                        help="backend keys the conversations are spread over (each key's "
                        "requests are counted on one rate-limit row)")  # fmt: skip
    parser.add_argument("--instances", default="1",
                        help="separate `supportbot serve` processes, e.g. 1,2 (each with "
                        "--workers); use --postgres with more than one")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--model-ms", type=int, default=500)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--only", choices=["mixed", "overhead", "throughput", "steady"])
    parser.add_argument("--kinds", action="store_true",
                        help="server CPU per help-centre turn against an order turn, quiet and "
                        "beside a CPU-bound process")  # fmt: skip
    parser.add_argument("--kind-rounds", type=int, default=4)
    parser.add_argument("--kind-block", type=int, default=15, help="turns per block")
    parser.add_argument("--mixed-throughput", action="store_true",
                        help="the throughput scenario with half help-centre questions")  # fmt: skip
    parser.add_argument(
        "--floor",
        action="store_true",
        help="serve bench/floor_app.py instead of supportbot: what the benchmark allows here",
    )
    parser.add_argument(
        "--durable-floor",
        action="store_true",
        help="with --floor: the floor app stores each turn (FLOOR_DATABASE_URL)",
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
    if args.kinds:
        server_env = dict(item.split("=", 1) for item in args.server_env)
        kinds(args.kind_rounds, server_env, args.kind_block)
        return
    scenarios: list[Scenario] = [
        Scenario(
            "mixed (1 tool call, half help-centre questions)",
            concurrency=1,
            turns=4,
            model_ms=50,
            tool=True,
            conversations=args.overhead_conversations,
            help_share=0.5,
        ),
        Scenario(
            "overhead (1 tool call, order questions)",
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
            tool=args.mixed_throughput,
            help_share=0.5 if args.mixed_throughput else 0.0,
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
    counts = [int(n) for n in args.instances.split(",")]
    if max(counts) > 1 and postgres is None:
        parser.error("several instances share one database: add --postgres")
    servers = "instances × workers" if counts != [1] else "workers"
    print(f"| {servers} | scenario | turns | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    try:
        for instances, workers in itertools.product(
            counts, (int(w) for w in args.workers.split(","))
        ):
            for scenario in scenarios:
                runs = []
                for attempt in range(args.repeat):
                    url = None  # a fresh database for every run
                    if postgres is not None:
                        name = f"load_{workers}_{scenario.concurrency}_{attempt}_{time.time_ns()}"
                        url = create_database(postgres, name)
                    server_env = dict(item.split("=", 1) for item in args.server_env)
                    runs.append(run(workers, scenario, url, args.profile, server_env,
                                    floor=args.floor, durable=args.durable_floor,
                                    instances=instances,
                                    keys=args.keys))  # fmt: skip
                r = {k: statistics.median(run_[k] for run_ in runs) for k in runs[0]}
                name = scenario.name
                if args.repeat > 1:
                    key = "overhead_p50_ms" if scenario.concurrency == 1 else "turns_per_s"
                    low, high = min(x[key] for x in runs), max(x[key] for x in runs)
                    peaks = ", ".join(f"{x['peak_rss_mib']:.0f}" for x in runs)
                    name += (f", median of {args.repeat} ({COLUMNS[key]} {low:.1f}-{high:.1f};"
                             f" peak RSS MiB {peaks})")  # fmt: skip
                if args.floor:
                    name = f"{'durable ' if args.durable_floor else ''}floor app: {name}"
                shape = f"{instances} × {workers}" if counts != [1] else str(workers)
                cells = [shape, name, f"{r['turns']:.0f}"]
                for column in COLUMNS:
                    value = r[column]
                    percent = column in ("share_of_ideal", "machine_busy")
                    if value != value:  # NaN: not measured (SQLite has no lock waits to see)
                        cells.append("–")
                    else:
                        cells.append(f"{value:.0%}" if percent else f"{value:.2f}" if column
                                     == "lock_waits" else f"{value:.1f}")  # fmt: skip
                print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        if postgres is not None:
            postgres.stop()


def kinds(rounds: int, server_env: dict[str, str], block: int = 15) -> None:
    """Server CPU per order turn and per help-centre turn (one tool call each, model at 0 ms),
    blocks of `block` turns interleaved, quiet and then beside a CPU-bound process."""
    folder = Path(tempfile.mkdtemp(prefix="supportbot-kinds-"))
    fake_port, port = free_port(), free_port()
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_load.py"), "--port",
                             str(fake_port), "--delay-ms", "0", "--tool"])  # fmt: skip
    env = server_base_env()
    env |= {"SUPPORTBOT_DATA_DIR": str(folder), "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_port}",
            "SUPPORTBOT_RATE_LIMIT_PER_KEY": "1000000",
            "SUPPORTBOT_RATE_LIMIT_PER_CONVERSATION": "1000000",
            "SUPPORTBOT_LOG_LEVEL": "ERROR"} | server_env  # fmt: skip
    cli(env, "orders", "import", str(SLICE))
    cli(env, "ingest", str(DOCS))
    key = cli(env, "keys", "create", "--scope", "backend", "--name", "bench").split()[-1]
    log = folder / "server.log"
    started = time.perf_counter()
    server = subprocess.Popen([str(Path(sys.executable).parent / "supportbot"), "serve",
                               "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    burner: subprocess.Popen[bytes] | None = None
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/", fake)
        wait_for_ready(f"{base}/readyz", server, log)
        ready_s = time.perf_counter() - started

        async def turns(share: float, n: int, latencies: list[float], unique: bool = False) -> None:
            headers = {"Authorization": f"Bearer {key}"}
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as c:
                for _ in range(0, n, 5):
                    await conversation(c, 5, latencies, share, unique)

        first: list[float] = []
        uvloop.run(turns(1.0, 1, first))  # the first help-centre turn after start
        print(f"ready after {ready_s:.1f} s; first help-centre turn {first[0] * 1000:.0f} ms\n")
        print("| machine | order turn CPU ms | help-centre turn CPU ms (new / repeated "
              "questions) | help / order (new / repeated) | rounds, new questions |\n"
              "|---|---|---|---|---|")  # fmt: skip
        kinds_ = {"order": (0.0, False), "new": (1.0, True), "repeated": (1.0, False)}
        for label in ("quiet", "a CPU-bound process beside it"):
            if label != "quiet":
                burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            cost: dict[str, list[float]] = {k: [] for k in kinds_}
            for _ in range(rounds):
                for kind, (share, unique) in kinds_.items():
                    before = cpu_seconds(server.pid)
                    uvloop.run(turns(share, block, [], unique))
                    cost[kind].append((cpu_seconds(server.pid) - before) / block * 1000)
            med = {k: statistics.median(v) for k, v in cost.items()}
            ratios = [h / o for h, o in zip(cost["new"], cost["order"], strict=True)]
            again = [h / o for h, o in zip(cost["repeated"], cost["order"], strict=True)]
            print(f"| {label} | {med['order']:.1f} | {med['new']:.1f} / {med['repeated']:.1f} | "
                  f"{statistics.median(ratios):.2f}x / {statistics.median(again):.2f}x | "
                  f"{', '.join(f'{r:.2f}' for r in ratios)} |", flush=True)  # fmt: skip
        print(
            f"\npeak RSS of the worker: {peak_rss_mib(server.pid):.0f} MiB; of the encoder "
            f"process: {encoder_rss_mib(server.pid):.0f} MiB"
        )
    finally:
        if burner is not None:
            burner.kill()
        stop(server)
        stop(fake)
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until /readyz says ready (200)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became ready\n{log.read_text()[-3000:]}")


if __name__ == "__main__":
    main()
