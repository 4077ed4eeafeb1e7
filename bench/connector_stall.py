"""How much one conversation waiting on a slow shop system delays the others, on SQLite and on
PostgreSQL.

    python bench/connector_stall.py [--delay 0.5] [--rounds 10] [--offset 0.1]

On SQLite write transactions take turns under a process-wide writer lock (agent/store/db.py,
`_Writer`); on PostgreSQL there is no global writer, only the row locks of that one
conversation. Until issue 26's writer work a tool's calls to the shop's system ran inside the
turn store's write transaction (`record_round` -> `run_tools` in agent/adapters/sql_turns.py);
now a round's reads run before it (`run_tools.prepare`), with no write lock held. Run it from
a worktree of an earlier commit, alternating, for before and after.

The example shop's REST face (`python -m examples.tau2_shop rest`, a process of its own)
answers `get_order_details` after `--delay` seconds (TAU2_SHOP_DELAY_SECONDS and
TAU2_SHOP_DELAY_TOOLS); supportbot reaches it through the HTTP connector
(examples/tau2_shop/rest-connector.yaml) and runs in this process behind FastAPI's TestClient,
once on SQLite and once on a PostgreSQL server of its own (tests/postgres.py). The fake
Messages API (tests/fake_anthropic.py) answers at once in a process of its own.

Each round runs four arms in turn: SQLite with the slow turn, SQLite without it (the
baseline), PostgreSQL with, PostgreSQL without. With the slow turn, conversation A (bound to a
customer) sends a message whose tool round calls `order_status`, which waits on the slow
`get_order_details`; `--offset` seconds after A's request went out, three other clients, each
in a thread of its own, send at once: (a) a message in conversation B that the model answers
with text and no tool, (b) POST /v1/conversations, (c) GET /v1/conversations/{B}. The
baseline sends the same three with nothing else in flight. Conversations A and B are new in
every arm of every round. The added latency of a request is its latency with the slow turn
less its latency in the baseline of the same round. A slow arm whose three requests did not go
out while the slow call was in flight (checked on the order-system port) is run again.

After the warm-up round the heap is frozen (gc.freeze(); --no-freeze keeps the collector as
it is): a full collection of this process's heap (~360,000 objects once the product is
imported) takes 200-300 ms on a small VM, and one falling into an arm stalls every request in
flight alike, whatever the database.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agent.api.app import create_app
from agent.config import Settings
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from bench.common import median
from bench.connectors import ORDER, ROOT, SEED, _blocks, _free_port, cases, stop
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use
from tests.postgres import start_postgres

DATABASES = ("SQLite", "PostgreSQL")
KINDS = ("(a) message turn in B", "(b) POST /v1/conversations", "(c) GET /v1/conversations/{B}")
SLOW_TOOL = "get_order_details"
WARM_UP = 1  # rounds of all four arms before measuring (first connections, imports)
RETRIES = 3  # runs again of a slow arm whose others missed the slow call


# -- the fake model: an order number asks for order_status, anything else is answered -----


def reply(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    if any(b["type"] == "tool_result" for b in _blocks(messages[-1])):
        return text("Here is where your order stands.")
    said = " ".join(str(b.get("text", "")) for b in _blocks(messages[-1]) if b["type"] == "text")
    found = ORDER.findall(said)
    if found:
        return tool_use("order_status", {"order_id": found[-1]})
    return text("You're welcome, glad to help.")


def _serve_fake(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    fake = FakeAnthropic().start()
    fake.default = reply
    queue.put(fake.url)
    while True:
        time.sleep(3600)


def start_fake() -> tuple[multiprocessing.Process, str]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=_serve_fake, args=(queue,), daemon=True)
    process.start()
    return process, str(queue.get(timeout=30))


# -- the slow shop ---------------------------------------------------------------------------


def serve_slow_shop(folder: Path, delay: float) -> tuple[subprocess.Popen[bytes], str]:
    """The example shop's REST face on a free port, `get_order_details` delayed."""
    db, log = folder / "shop.json", folder / "shop.log"
    shutil.copy(SEED, db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU2_SHOP_")}
    env |= {"TAU2_SHOP_DELAY_SECONDS": str(delay), "TAU2_SHOP_DELAY_TOOLS": SLOW_TOOL}
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.tau2_shop", "rest", "--db", str(db), "--seed",
             str(SEED), "--port", str(port), "--log-level", "WARNING"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the shop exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url + "/products", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the shop did not answer: {log.read_text()[-2000:]}")


# -- supportbot on one database --------------------------------------------------------------


class Timed:
    """An order system whose port calls are timed: (operation, start, end), perf_counter."""

    def __init__(self, inner: Any, spans: list[tuple[str, float, float]]) -> None:
        self._inner, self._spans = inner, spans

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._spans.append((name, started, time.perf_counter()))

        return timed


@dataclass
class Side:
    name: str
    runtime: Runtime
    client: TestClient
    auth: dict[str, str]
    spans: list[tuple[str, float, float]] = field(default_factory=list)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.client.request(method, path, json=body, headers=self.auth)
        assert answer.status_code in (200, 201), f"{self.name} {method} {path}: {answer.text}"
        return answer.json()

    def close(self) -> None:
        try:
            self.client.__exit__(None, None, None)
        finally:
            if self.runtime.connector is not None:
                self.runtime.connector.close()
            self.runtime.engine.dispose()


def open_side(name: str, folder: Path, database_url: str, fake_url: str, shop_url: str) -> Side:
    spec = yaml.safe_load((ROOT / "examples/tau2_shop/rest-connector.yaml").read_text())
    connector = {k: v for k, v in spec.items() if k not in ("name", "extends")}
    connector["http"] = {"base_url": shop_url}
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "connector.yaml"
    file.write_text(yaml.safe_dump({"name": "bench-shop", "extends": "tau2", **connector}))
    settings = Settings(data_dir=folder / "data", database_url=database_url,
                        anthropic_base_url=fake_url, anthropic_api_key=SecretStr("sk-ant-bench"),
                        connector_file=file, tau2_server=None, rate_limit_per_key=1_000_000,
                        rate_limit_per_conversation=1_000_000)  # fmt: skip
    runtime = build_runtime(settings)
    try:
        with transaction(runtime.engine) as session:
            secret = create_key(session=session, name="bench", scope=KeyScope.BACKEND)[1]
        client = TestClient(create_app(settings, runtime)).__enter__()
    except BaseException:
        if runtime.connector is not None:
            runtime.connector.close()
        runtime.engine.dispose()
        raise
    side = Side(name, runtime, client, {"Authorization": f"Bearer {secret}"})
    systems = runtime.agent.orders
    runtime.agent.orders = lambda session: Timed(systems(session), side.spans)  # type: ignore[assignment,return-value]
    return side


# -- one arm ---------------------------------------------------------------------------------


@dataclass
class Sample:
    latency: dict[str, float]  # kind -> seconds
    slow_turn: float | None = None  # A's request, seconds
    offset: float | None = None  # the others went out this long after A's request
    left: float | None = None  # and this long before the slow call returned


def run_arm(side: Side, slow: bool, email: str, order: str, offset: float) -> Sample | None:
    """One arm; None when the others did not go out while the slow call was in flight."""
    b = side.call("POST", "/v1/conversations", {})["id"]
    a = side.call("POST", "/v1/conversations", {"customer_email": email})["id"] if slow else None
    requests: dict[str, Callable[[], Any]] = {
        KINDS[0]: lambda: side.call("POST", f"/v1/conversations/{b}/messages",
                                    {"text": "Thanks, that's all I needed."}),
        KINDS[1]: lambda: side.call("POST", "/v1/conversations", {}),
        KINDS[2]: lambda: side.call("GET", f"/v1/conversations/{b}"),
    }  # fmt: skip
    go = threading.Event()
    took: dict[str, float] = {}
    sent: dict[str, float] = {}
    failed: list[BaseException] = []

    def one(kind: str, request: Callable[[], Any], wait: bool) -> None:
        if wait:
            go.wait()
        sent[kind] = time.perf_counter()
        try:
            answer = request()
            if kind == "A":
                assert not any(c["is_error"] for c in answer["tool_calls"]), answer
                assert [c["name"] for c in answer["tool_calls"]] == ["order_status"], answer
            if kind == KINDS[0]:
                assert not answer["tool_calls"], answer
        except BaseException as exc:
            failed.append(exc)
        finally:
            took[kind] = time.perf_counter() - sent[kind]

    threads = [threading.Thread(target=one, args=(k, r, True)) for k, r in requests.items()]
    for thread in threads:
        thread.start()
    side.spans.clear()
    if a is not None:
        say = {"text": f"Where is my order {order}?"}
        slow_turn = threading.Thread(
            target=one,
            args=("A", lambda: side.call("POST", f"/v1/conversations/{a}/messages", say), False),
        )
        started = time.perf_counter()
        slow_turn.start()
        time.sleep(max(0.0, started + offset - time.perf_counter()))
        threads.append(slow_turn)
    go.set()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    sample = Sample({k: took[k] for k in KINDS})
    if a is not None:
        others = min(sent[k] for k in KINDS)
        (call,) = [s for s in side.spans if s[0] == "order"]
        if not call[1] < others < call[2]:
            return None
        sample.slow_turn, sample.offset, sample.left = (
            took["A"],
            others - sent["A"],
            call[2] - others,
        )
    return sample


# -- the report ------------------------------------------------------------------------------


def report(samples: dict[tuple[str, bool], list[Sample]], delay: float) -> None:
    print(f"Shop delay D = {delay:.2f} s on {SLOW_TOOL}; median (max) over "
          f"{len(samples[DATABASES[0], True])} rounds; added = with the slow turn less the "
          "baseline of the same round\n")  # fmt: skip
    print("| database | request | baseline median ms | with slow turn median ms "
          "| added median ms | added max ms |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for database in DATABASES:
        slow, base = samples[database, True], samples[database, False]
        for kind in KINDS:
            with_ = [s.latency[kind] * 1000 for s in slow]
            without = [s.latency[kind] * 1000 for s in base]
            added = [w - o for w, o in zip(with_, without, strict=True)]
            print(f"| {database} | {kind} | {median(without):.0f} | {median(with_):.0f} | "
                  f"{median(added):+.0f} | {max(added):+.0f} |")  # fmt: skip
    print()
    for database in DATABASES:
        slow = samples[database, True]
        turn = median([s.slow_turn * 1000 for s in slow if s.slow_turn is not None])
        offset = median([s.offset * 1000 for s in slow if s.offset is not None])
        left = [s.left * 1000 for s in slow if s.left is not None]
        print(f"{database}: A's slow turn took {turn:.0f} ms (median); the others went out "
              f"{offset:.0f} ms after it, with {median(left):.0f} ms of the slow call left "
              f"(min {min(left):.0f}, max {max(left):.0f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--delay", type=float, default=0.5, help="seconds (%(default)s)")
    parser.add_argument("--rounds", type=int, default=10, help="(%(default)s)")
    parser.add_argument("--offset", type=float, default=0.1, help="seconds (%(default)s)")
    parser.add_argument("--no-freeze", action="store_true", help="leave the collector as is")
    args = parser.parse_args()
    if not 0 < args.offset < args.delay:
        raise SystemExit("--offset must be between 0 and --delay")
    case = next(iter(cases()))
    samples: dict[tuple[str, bool], list[Sample]] = {
        (d, slow): [] for d in DATABASES for slow in (True, False)
    }
    started = time.monotonic()
    with ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="supportbot-connector-stall-"))
        stack.callback(shutil.rmtree, folder, True)
        fake, fake_url = start_fake()

        def stop_fake() -> None:
            fake.terminate()
            fake.join(timeout=5)

        stack.callback(stop_fake)
        shop, shop_url = serve_slow_shop(folder, args.delay)
        stack.callback(stop, shop)
        postgres = start_postgres()
        if postgres is None:
            raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
        stack.callback(postgres.stop)
        urls = {
            "SQLite": f"sqlite:///{folder / 'SQLite' / 'supportbot.db'}",
            "PostgreSQL": stack.enter_context(postgres.database("connector_stall")),
        }
        sides: dict[str, Side] = {}
        for database in DATABASES:
            sides[database] = open_side(database, folder / database, urls[database], fake_url,
                                        shop_url)  # fmt: skip
            stack.callback(sides[database].close)
        rerun = 0  # slow arms run again
        for i in range(WARM_UP + args.rounds):
            for database in DATABASES:
                for slow in (True, False):
                    for _ in range(RETRIES + 1):
                        sample = run_arm(sides[database], slow, case.email, case.order, args.offset)
                        if sample is not None:
                            break
                        rerun += 1
                    else:
                        raise SystemExit(f"{database}: the others never went out during the "
                                         f"slow call ({RETRIES + 1} tries)")  # fmt: skip
                    if i >= WARM_UP:
                        samples[database, slow].append(sample)
            if i == WARM_UP - 1 and not args.no_freeze:
                gc.collect()
                gc.freeze()
        print(f"{args.rounds} rounds of SQLite-slow, SQLite-baseline, PostgreSQL-slow, "
              f"PostgreSQL-baseline in {time.monotonic() - started:.0f} s (load average "
              f"{os.getloadavg()[0]:.1f}; heap {'not ' * args.no_freeze}frozen after the "
              f"warm-up; {rerun} slow arms run again)\n")  # fmt: skip
        report(samples, args.delay)


if __name__ == "__main__":
    main()
