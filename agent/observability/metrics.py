"""Prometheus metrics (the official `prometheus-client`), served at GET /metrics.

Counters and histograms are recorded where events already flow: the turn driver tells
agent.observability.turns what a turn yields and what each model call returns, and the HTTP
middleware sees every 429. Open tickets are counted from the database when scraped.

Several worker processes (`supportbot serve --workers N`): set PROMETHEUS_MULTIPROC_DIR to an
empty directory the workers share (wiped before each start) and every scrape, whichever worker
answers it, reports the sum over the workers (prometheus-client's multiprocess mode). The
variable must be set before the process starts, as the client reads it on import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from agent.adapters.connectors.remote import RemoteOrders
from agent.store.tables import Ticket, TicketStatus

log = logging.getLogger(__name__)

PREFIX = "supportbot"
# Turns last from tens of milliseconds (offline, a queued message) to minutes (tool rounds
# with retries); a model call from a second to the request timeout.
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
# Usage fields of a reply, by the kind of token they count.
TOKEN_KINDS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_creation_input_tokens": "cache_write",
    "cache_read_input_tokens": "cache_read",
}

TURNS = Counter(f"{PREFIX}_turns", "Turns that ran, by outcome", ["outcome"])
TURN_SECONDS = Histogram(
    f"{PREFIX}_turn_duration_seconds", "Wall time of a turn, by outcome", ["outcome"],
    buckets=TURN_BUCKETS,
)  # fmt: skip
DEGRADED_TURNS = Counter(
    f"{PREFIX}_degraded_turns", "Turns the offline model finished because Claude was unavailable"
)
MODEL_CALLS = Counter(
    f"{PREFIX}_model_calls", "Model calls of turns, by model and outcome (ok, error, degraded)",
    ["model", "outcome"],
)  # fmt: skip
MODEL_CALL_SECONDS = Histogram(
    f"{PREFIX}_model_call_duration_seconds", "Wall time of a model call (retries included)",
    ["model", "outcome"], buckets=CALL_BUCKETS,
)  # fmt: skip
TOKENS = Counter(
    f"{PREFIX}_tokens", "Tokens of model calls, by model and kind (input, output, cache_write, "
    "cache_read)", ["model", "kind"],
)  # fmt: skip
TOOL_CALLS = Counter(f"{PREFIX}_tool_calls", "Tool calls run, by tool", ["tool"])
TOOL_ERRORS = Counter(f"{PREFIX}_tool_errors", "Tool calls that returned an error", ["tool"])
HANDOFFS = Counter(
    f"{PREFIX}_handoffs", "Conversations handed to a person, by reason (escalated, "
    "tool_round_cap, model_unavailable)", ["reason"],
)  # fmt: skip
RATE_LIMITED = Counter(f"{PREFIX}_rate_limited_requests", "Requests refused with 429")


class OpenTickets(Collector):
    """`supportbot_open_tickets{status}`: tickets not yet resolved, counted when scraped (one
    grouped count over the ticket table; tickets are few next to messages)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{PREFIX}_open_tickets", "Tickets waiting for or with a person", labels=["status"]
        )
        counts: dict[str, int] = {TicketStatus.OPEN.value: 0, TicketStatus.CLAIMED.value: 0}
        try:
            with Session(self.engine) as session:
                rows = session.exec(
                    select(col(Ticket.status), func.count())
                    .where(col(Ticket.status) != TicketStatus.RESOLVED)
                    .group_by(col(Ticket.status))
                ).all()
        except Exception:
            log.warning("counting open tickets for /metrics failed", exc_info=True)
            return []
        for stored, count in rows:
            counts[TicketStatus(stored).value] = int(count)
        for status, total in counts.items():
            family.add_metric([status], total)
        return [family]


class _Recorded(Collector):
    """What this process (or, in multiprocess mode, every worker) recorded."""

    def __init__(self) -> None:
        self.source: Collector
        if multiprocess_dir():
            shared = CollectorRegistry()
            multiprocess.MultiProcessCollector(shared)
            self.source = shared
        else:
            self.source = REGISTRY

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class OrderSystemCalls(Collector):
    """The connector to the shop's own order system, read when scraped (this process's):
    `supportbot_order_system_calls{system,operation,outcome}` (ok, error, unreachable,
    no_answer, server_error, too_large, breaker_open), their total seconds per operation, and
    `supportbot_order_system_up{system,state}` (1 while the breaker is closed)."""

    def __init__(self, connector: RemoteOrders) -> None:
        self.connector = connector

    def collect(self) -> list[Metric]:
        name, stats = self.connector.name, self.connector.stats
        calls = CounterMetricFamily(f"{PREFIX}_order_system_calls",
                                    "Calls to the shop's order system, by operation and outcome",
                                    labels=["system", "operation", "outcome"])  # fmt: skip
        for (operation, outcome), count in sorted(stats.calls.items()):
            calls.add_metric([name, operation, outcome], count)
        seconds = CounterMetricFamily(f"{PREFIX}_order_system_call_seconds",
                                      "Time spent in calls to the shop's order system",
                                      labels=["system", "operation"])  # fmt: skip
        for operation, total in sorted(stats.seconds.items()):
            seconds.add_metric([name, operation], total)
        state = self.connector.breaker.state
        up = GaugeMetricFamily(f"{PREFIX}_order_system_up",
                               "1 while the order system answers (its breaker is closed)",
                               labels=["system", "state"])  # fmt: skip
        up.add_metric([name, state], 1 if state == "closed" else 0)
        return [calls, seconds, up]


def scrape_registry(engine: Engine, connector: RemoteOrders | None = None) -> CollectorRegistry:
    """The registry GET /metrics renders: the recorded metrics, the open tickets and the
    order-system connector's calls."""
    registry = CollectorRegistry()
    registry.register(_Recorded())
    registry.register(OpenTickets(engine))
    if connector is not None:
        registry.register(OrderSystemCalls(connector))
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Counter | Histogram, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: the client's `labels()` validates, sorts and locks
    on every call, and most of what a turn records is one of a few label sets."""
    key = (id(metric), values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def count_usage(model: str, usage: dict[str, int]) -> None:
    for field, kind in TOKEN_KINDS.items():
        value = usage.get(field)
        if value:
            child(TOKENS, model, kind).inc(value)
