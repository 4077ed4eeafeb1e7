"""What the shop's own order system costs a turn (issue 23): the server time of a tool turn and
of a confirmed change on the built-in store and through each connector, interleaved in one run.

    python bench/connectors.py [--rounds 30] [--arms builtin,mcp-stdio,mcp-http,http]

Arms, each with its own copy of τ²-bench's retail db.json (../shared/data/retail/db.json):
- builtin: the default store (SQLite), the db.json imported as `supportbot orders import` does;
- mcp-stdio: the example shop (`python -m examples.tau2_shop mcp`) started by the connector as
  a child process, MCP over stdio;
- mcp-http: the same MCP server as a process of its own, over Streamable HTTP;
- http: the example shop's REST face through the HTTP connector
  (examples/tau2_shop/rest-connector.yaml).

Every round runs one verified conversation in each arm, in an order that rotates each round,
through the HTTP API in process (FastAPI's TestClient): a tool turn (verify_customer with the
email and zip the customer typed, then order_status: three model calls), a read-only turn
(order_status: two), the proposal of cancel_pending_order (one) and its confirmation (one).
Each round cancels another pending order, the same one in every arm.

The fake Messages API (tests/fake_anthropic.py) answers at 0 ms in a process of its own and
adds up the wall time its handler spends on each request; a request's server time is its wall
time as the client sees it less that. The port calls of a turn are counted and timed on the
order-system port the tools use (on a connector, the calls on the wire are its stats): the
first table splits each turn into its time in port calls and the rest, the second gives each
operation's time per call, and a last line the example shop's own work without any link.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
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
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from bench.common import median, percentile
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "data" / "retail" / "db.json"
ARMS = ("builtin", "mcp-stdio", "mcp-http", "http")
MEASURES = ("tool turn", "read-only turn", "proposal", "confirm", "change (proposal + confirm)")
MODEL_CALLS = {"tool turn": 3, "read-only turn": 2, "proposal": 1, "confirm": 1}
PORT = ("customer_by_email", "customer_by_name_zip", "customer", "order", "orders_of",
        "product", "products", "change")  # fmt: skip
WARM_UP = 2  # rounds per arm before measuring (the first connects, loads, compiles)
ORDER = re.compile(r"#W\d+")


# -- the fake model: its reply follows from the request alone ----------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _said(body: dict[str, Any]) -> str:
    """The customer's last message (the last user message that is not tool results)."""
    for message in reversed(body["messages"]):
        blocks = _blocks(message)
        if message["role"] == "user" and not any(b["type"] == "tool_result" for b in blocks):
            return " ".join(str(b.get("text", "")) for b in blocks if b["type"] == "text")
    return ""


def reply(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    results = [b for b in _blocks(messages[-1]) if b["type"] == "tool_result"]
    said = _said(body)
    order = ORDER.findall(said)[-1] if ORDER.search(said) else ""
    if results:
        failed = [r for r in results if r.get("is_error")]
        if failed:
            return text(f"FAILED: {str(failed[0].get('content'))[:300]}")
        called = [b["name"] for b in _blocks(messages[-2]) if b["type"] == "tool_use"]
        if called == ["verify_customer"]:
            return tool_use("order_status", {"order_id": order})
        return text("Here you are: that's all done.")
    if "cancel" in said:
        return tool_use("cancel_pending_order", {"order_id": order, "reason": "ordered by mistake"})
    if "zip" in said:
        email = re.search(r"\S+@\S+\.com", said)
        zip_code = re.search(r"zip (\d+)", said)
        assert email and zip_code, said
        return tool_use("verify_customer", {"email": email.group(0), "zip_code": zip_code.group(1)})
    return tool_use("order_status", {"order_id": order})


def _serve_fake(queue: multiprocessing.Queue, busy: Any, served: Any) -> None:  # type: ignore[type-arg]
    fake = FakeAnthropic().start()
    fake.default = reply
    handler: Any = fake._server.RequestHandlerClass  # type: ignore[union-attr]
    handle = handler.do_POST

    def timed(self: Any) -> None:
        started = time.perf_counter()
        try:
            handle(self)
        finally:
            with busy.get_lock():
                busy.value += time.perf_counter() - started
                served.value += 1

    handler.do_POST = timed
    queue.put(fake.url)
    while True:
        time.sleep(3600)


@dataclass
class Fake:
    """The fake in its own process: its URL, and the handler's total time and request count."""

    url: str
    process: multiprocessing.Process
    busy: Any
    served: Any

    def seen(self) -> tuple[float, int]:
        with self.busy.get_lock():
            return self.busy.value, self.served.value

    def took(self, before: tuple[float, int], calls: int) -> float:
        """Seconds the handler spent on the `calls` requests made since `before` (waits for
        their bookkeeping, which ends just after the answer went out)."""
        deadline = time.monotonic() + 2
        while (now := self.seen())[1] < before[1] + calls and time.monotonic() < deadline:
            time.sleep(0.0005)
        if now[1] != before[1] + calls:
            raise RuntimeError(f"expected {calls} model calls, the fake saw {now[1] - before[1]}")
        return now[0] - before[0]


def start_fake() -> Fake:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    busy, served = multiprocessing.Value("d", 0.0), multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=_serve_fake, args=(queue, busy, served), daemon=True)
    process.start()
    return Fake(str(queue.get(timeout=30)), process, busy, served)


# -- the shop's system as a process of its own -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shop_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TAU2_SHOP_")}


def serve_shop(face: str, db: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m examples.tau2_shop FACE` on a free port, once it answers HTTP."""
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.tau2_shop", face, "--db", str(db), "--seed",
             str(SEED), "--port", str(port), "--log-level", "WARNING", *extra],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=_shop_env(),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {face} server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url + ("/mcp" if face == "mcp" else "/products"), timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {face} server did not answer: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- one arm: supportbot on one order system ---------------------------------------------------


class Counted:
    """An order system whose port calls are counted and timed (in the tool's thread: what
    the turn waits for, the connector's reading of the answer included)."""

    def __init__(self, inner: Any, calls: list[int], times: dict[str, list[float]]) -> None:
        self._inner, self._calls, self._times = inner, calls, times

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in PORT:
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[0] += 1
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                self._times[name].append(took)
                self._times["(all)"].append(took)

        return counted


@dataclass
class Arm:
    name: str
    folder: Path
    runtime: Runtime
    client: TestClient
    auth: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    calls: list[int] = field(default_factory=lambda: [0])
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def wire(self) -> int:
        connector = self.runtime.connector
        return sum(connector.stats.calls.values()) if connector is not None else 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.client.post(path, json=body, headers=self.auth)
        assert answer.status_code in (200, 201), f"{self.name} {path}: {answer.text}"
        return dict(answer.json())

    def close(self) -> None:
        try:
            self.client.__exit__(None, None, None)
        finally:
            try:
                if self.runtime.connector is not None:
                    self.runtime.connector.close()
                self.runtime.engine.dispose()
            finally:
                if self.server is not None:
                    stop(self.server)
                shutil.rmtree(self.folder, ignore_errors=True)


def open_arm(name: str, fake_url: str) -> Arm:
    folder = Path(tempfile.mkdtemp(prefix=f"supportbot-connectors-{name}-"))
    server: subprocess.Popen[bytes] | None = None
    runtime: Runtime | None = None
    try:
        connector: dict[str, Any] | None = None
        db = folder / "shop.json"
        if name != "builtin":
            shutil.copy(SEED, db)
        if name == "mcp-stdio":
            connector = {"mcp": {"command": [sys.executable, "-m", "examples.tau2_shop", "mcp",
                                             "--db", str(db), "--seed", str(SEED),
                                             "--log-level", "WARNING"],
                                 "cwd": str(ROOT)}}  # fmt: skip
        elif name == "mcp-http":
            server, url = serve_shop("mcp", db, folder / "shop.log", "--transport", "http")
            connector = {"mcp": {"url": url + "/mcp"}}
        elif name == "http":
            server, url = serve_shop("rest", db, folder / "shop.log")
            spec = yaml.safe_load((ROOT / "examples/tau2_shop/rest-connector.yaml").read_text())
            connector = {k: v for k, v in spec.items() if k not in ("name", "extends")}
            connector["http"] = {"base_url": url}
        elif name != "builtin":
            raise SystemExit(f"unknown arm {name!r}; arms: {', '.join(ARMS)}")
        file = None
        if connector is not None:
            file = folder / "connector.yaml"
            file.write_text(yaml.safe_dump({"name": "bench-shop", "extends": "tau2", **connector}))
        settings = Settings(data_dir=folder / "data", anthropic_base_url=fake_url,
                            anthropic_api_key=SecretStr("sk-ant-bench"), connector_file=file,
                            tau2_server=None, rate_limit_per_key=1_000_000)  # fmt: skip
        runtime = build_runtime(settings)
        if name == "builtin":
            report = import_path(runtime.engine, SEED)
            assert not report.problems, report.problems[:3]
        with transaction(runtime.engine) as session:
            secret = create_key(session=session, name="bench", scope=KeyScope.BACKEND)[1]
        client = TestClient(create_app(settings, runtime)).__enter__()
    except BaseException:
        if runtime is not None and runtime.connector is not None:
            runtime.connector.close()
        if server is not None:
            stop(server)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    arm = Arm(name, folder, runtime, client, {"Authorization": f"Bearer {secret}"}, server)
    systems = runtime.agent.orders
    runtime.agent.orders = lambda session: Counted(systems(session), arm.calls, arm.times)  # type: ignore[assignment,return-value]
    return arm


# -- the rounds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    email: str
    zip_code: str
    order: str  # pending: read, then cancelled


def cases() -> Iterator[Case]:
    """Pending orders of db.json, one customer after another (each customer's first pending
    order, then each one's second, ...)."""
    db = json.loads(SEED.read_text())
    pending: dict[str, list[str]] = defaultdict(list)
    for order_id, order in db["orders"].items():
        if order["status"] == "pending":
            pending[order["user_id"]].append(order_id)
    depth = max(len(v) for v in pending.values())
    for i in range(depth):
        for user_id in sorted(pending):
            if i < len(pending[user_id]):
                user = db["users"][user_id]
                yield Case(user["email"], user["address"]["zip"], pending[user_id][i])


# measure -> (server s, request s, port calls, wire calls, s in port calls)
Sample = dict[str, tuple[float, float, int, int, float]]


def converse(arm: Arm, fake: Fake, case: Case) -> Sample:
    sample: Sample = {}

    def timed(measure: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        calls, wire, before = arm.calls[0], arm.wire(), fake.seen()
        port = sum(arm.times["(all)"])
        started = time.perf_counter()
        answer = arm.post(path, body)
        took = time.perf_counter() - started
        model = fake.took(before, MODEL_CALLS[measure])
        in_port = sum(arm.times["(all)"]) - port
        sample[measure] = (took - model, took, arm.calls[0] - calls, arm.wire() - wire, in_port)
        failed = [c["name"] for c in answer.get("tool_calls", []) if c["is_error"]]
        assert not failed and not answer["reply"].startswith("FAILED"), (arm.name, answer)
        return answer

    conversation = arm.post("/v1/conversations", {})["id"]
    say = f"/v1/conversations/{conversation}/messages"
    timed("tool turn", say, {"text": f"Hi, I'm {case.email}, zip {case.zip_code}. "
                                     f"Where is my order {case.order}?"})  # fmt: skip
    timed("read-only turn", say, {"text": f"And what's the status of {case.order} now?"})
    proposed = timed("proposal", say, {"text": f"Please cancel {case.order}, I ordered it "
                                               "by mistake."})  # fmt: skip
    assert proposed["outcome"] == "awaiting_confirmation", (arm.name, proposed)
    action = proposed["pending_action"]["id"]
    done = timed("confirm", f"/v1/conversations/{conversation}/actions/{action}/confirm")
    assert done["action"]["status"] == "executed", (arm.name, done)
    parts = [sample["proposal"], sample["confirm"]]
    sample["change (proposal + confirm)"] = tuple(sum(p[i] for p in parts) for i in range(5))  # type: ignore[assignment]
    return sample


def report(arms: list[str], samples: dict[str, list[Sample]]) -> None:
    base = samples.get("builtin")
    print("| arm | measure | port calls | median ms | p90 ms | vs builtin "
          "| added ms per port call | in port calls ms | rest of the turn ms "
          "| request ms (fake incl.) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for measure in MEASURES:
        for name in arms:
            rows = [s[measure] for s in samples[name]]
            server = [r[0] * 1000 for r in rows]
            calls = int(median([r[2] for r in rows]))
            wire = int(median([r[3] for r in rows]))
            shown = f"{calls}" + (f" ({wire} on the wire)" if name != "builtin" and wire != calls
                                  else "")  # fmt: skip
            ratio = added = "–"
            if base is not None and name != "builtin":
                ours = [b[measure][0] * 1000 for b in base]
                ratio = f"{median(server) / median(ours):.2f}×"
                per = [(a - b) / r[2] for a, b, r in zip(server, ours, rows, strict=True) if r[2]]
                added = f"{median(per):+.2f}" if per else "–"
            request = median([r[1] * 1000 for r in rows])
            p90 = percentile(server, 90)
            port = median([r[4] * 1000 for r in rows])
            rest = median([(r[0] - r[4]) * 1000 for r in rows])
            print(f"| {name} | {measure} | {shown} | {median(server):.1f} | {p90:.1f} | "
                  f"{ratio} | {added} | {port:.1f} | {rest:.1f} | {request:.1f} |")  # fmt: skip
    fake = {m: median([s[m][1] - s[m][0] for s in samples[arms[0]]]) * 1000 for m in MODEL_CALLS}
    print("\nThe fake's handler, median ms per measure (subtracted above): "
          + ", ".join(f"{m} {v:.1f}" for m, v in fake.items()))  # fmt: skip


def report_calls(arms: list[Arm]) -> None:
    """Each port operation's time, median (p90) ms per call, as the tool waits for it."""
    operations = sorted({op for arm in arms for op in arm.times} - {"(all)"})
    print(f"\n| port call, median (p90) ms | {' | '.join(a.name for a in arms)} |")
    print(f"|---|{'---|' * len(arms)}")
    for op in operations:
        cells = []
        for arm in arms:
            ms = [t * 1000 for t in arm.times.get(op, [])]
            cells.append(f"{median(ms):.2f} ({percentile(ms, 90):.2f}) ×{len(ms)}" if ms else "–")
        print(f"| {op} | {' | '.join(cells)} |")


def shop_alone(orders: list[str]) -> None:
    """The example shop's own work, in this process (no link): a read, and a cancellation,
    which re-reads, re-writes and syncs its whole JSON file."""
    from examples.tau2_shop.store import Store

    folder = Path(tempfile.mkdtemp(prefix="supportbot-connectors-shop-"))
    try:
        shutil.copy(SEED, folder / "shop.json")
        store = Store(folder / "shop.json", seed=SEED)
        reads, changes = [], []
        for order in orders:
            started = time.perf_counter()
            store.call("get_order_details", order_id=order)
            reads.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.call("cancel_pending_order", order_id=order, reason="ordered by mistake")
            changes.append((time.perf_counter() - started) * 1000)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nThe example shop's own work (examples/tau2_shop/store.py, no link), median ms: "
          f"get_order_details {median(reads):.3f}, cancel_pending_order {median(changes):.1f} "
          f"(p90 {percentile(changes, 90):.1f}; {SEED.stat().st_size / 1e6:.1f} MB file "
          "re-read, re-written and synced)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--arms", default=",".join(ARMS), help="comma list of %(default)s")
    args = parser.parse_args()
    names = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := set(names) - set(ARMS):
        raise SystemExit(f"unknown arms: {', '.join(sorted(unknown))}; arms: {', '.join(ARMS)}")
    plan = list(cases())[: WARM_UP + args.rounds]
    if len(plan) < WARM_UP + args.rounds:
        raise SystemExit(
            f"db.json has {len(plan) - WARM_UP} pending orders: at most that many rounds"
        )
    fake = start_fake()
    arms: list[Arm] = []
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    started = time.monotonic()
    try:
        for name in names:
            arms.append(open_arm(name, fake.url))
        for i, case in enumerate(plan):
            shift = i % len(arms)
            for arm in arms[shift:] + arms[:shift]:
                sample = converse(arm, fake, case)
                if i >= WARM_UP:
                    samples[arm.name].append(sample)
            if i == WARM_UP - 1:
                for arm in arms:
                    arm.times.clear()
        print(f"{args.rounds} rounds of {', '.join(names)} in {time.monotonic() - started:.0f} s "
              f"(load average {os.getloadavg()[0]:.1f})\n")  # fmt: skip
        report(names, samples)
        report_calls(arms)
        if set(names) - {"builtin"}:
            shop_alone([c.order for c in plan[:10]])
    finally:
        closing: list[Callable[[], None]] = [arm.close for arm in arms]
        for close in closing:
            try:
                close()
            except Exception as exc:  # one arm's failure to close leaves the others to close
                print(f"closing an arm failed: {exc!r}", file=sys.stderr)
        fake.process.terminate()
        fake.process.join(timeout=5)


if __name__ == "__main__":
    main()
