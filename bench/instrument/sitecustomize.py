"""Where a turn's wall time goes in a server under load: put this folder on the server's
PYTHONPATH with WALL_OUT set, and each server process writes WALL_OUT.<pid>.txt every two
seconds (bench/load.py passes both through to the servers it starts):

    PYTHONPATH=bench/instrument WALL_OUT=/tmp/wall python bench/load.py --workers 1 \
        --only throughput --model-ms 2000 --postgres

Per call, wall-clock: the store's turn stretches (`open_turn`, `record_answer`), the
admission's row lock, the key look-up, a pool checkout, and each hand-off to a worker thread
split into waiting for a thread, running in it, and waiting to be resumed on the event loop.
Instrumentation, not a product module: wrapping the calls adds to what it measures (a few µs
a call), and nothing in the product imports it."""

from __future__ import annotations

import collections
import functools
import os
import sys
import threading
import time
from typing import Any

if os.environ.get("WALL_OUT"):
    _totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    _lock = threading.Lock()
    _out = os.environ["WALL_OUT"] + f".{os.getpid()}.txt"

    def _add(label: str, seconds: float) -> None:
        with _lock:
            entry = _totals[label]
            entry[0] += 1
            entry[1] += seconds

    def _wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _add(label, time.perf_counter() - started)

        setattr(owner, name, timed)

    def _hand_offs() -> None:
        import anyio.to_thread

        original = anyio.to_thread.run_sync

        async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
            called, marks = time.perf_counter(), {}

            def inner(*inner_args: Any) -> Any:
                marks["start"] = time.perf_counter()
                try:
                    return func(*inner_args)
                finally:
                    marks["end"] = time.perf_counter()

            try:
                return await original(inner, *args, **kwargs)
            finally:
                if "end" in marks:
                    _add("hand-off: waiting for a thread", marks["start"] - called)
                    _add("hand-off: in the thread", marks["end"] - marks["start"])
                    _add("hand-off: resumed on the loop", time.perf_counter() - marks["end"])

        anyio.to_thread.run_sync = run_sync

    def _install() -> None:
        wanted = ("agent.api.routes.conversations", "agent.adapters.sql_turns", "agent.api.deps")
        while not all(name in sys.modules for name in wanted):
            time.sleep(0.005)
        time.sleep(0.05)  # the modules finish importing
        from sqlalchemy.pool import QueuePool

        turns, deps = sys.modules["agent.adapters.sql_turns"], sys.modules["agent.api.deps"]
        _wrap(turns.SqlTurnStore, "open_turn", "store: open_turn")
        _wrap(turns.SqlTurnStore, "record_answer", "store: record_answer")
        _wrap(deps, "lock_conversation", "admission: lock_conversation")
        _wrap(deps, "_identify", "key look-up")
        _wrap(QueuePool, "_do_get", "pool checkout")
        _hand_offs()

    def _report() -> None:
        while True:
            time.sleep(2)
            with _lock:
                rows = sorted((k, n, s) for k, (n, s) in _totals.items())
            with open(_out + ".tmp", "w") as out:
                for label, calls, seconds in rows:
                    per_call = seconds / calls * 1e3
                    out.write(f"{label:34s} calls {int(calls):7d}  ms/call {per_call:8.2f}\n")
            os.replace(_out + ".tmp", _out)

    threading.Thread(target=_install, daemon=True).start()
    threading.Thread(target=_report, daemon=True).start()
