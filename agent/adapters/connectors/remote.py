"""The order-system port on a shop's own system, through a connector file's mapping: an MCP
server (mcp_link.py) or an HTTP API (http_link.py).

What this adds to the link, and why:
- Reads are retried with backoff (they change nothing); a change is sent once, never retried.
- A change whose request went out and got no answer (a timeout, the server died mid-call, an
  answer that cannot be read) raises OutcomeUnknown: whether it happened is for staff to find
  out, not for a retry to guess.
- A circuit breaker: after `breaker_failures` failures in a row, calls fail at once for
  `breaker_cooldown` seconds (the agent says the system is unreachable) instead of making every
  customer wait for a dead backend; then one call tries again.
- Every answer is read into records (records.py) and checked: an order answered for another
  id than the one asked is a bad answer; ownership is checked above the port.
- What each operation did, how long it took and the breaker's state are kept for /metrics and
  /readyz (agent/observability).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from agent.adapters.connectors.records import Reader, at, parse
from agent.adapters.connectors.spec import ConnectorSpec, Operation
from agent.store.orders import normalize_order_id
from tools.order_system import (
    BadAnswer,
    ChangeDone,
    CustomerRecord,
    OrderRecord,
    OutcomeUnknown,
    ProductRecord,
    SystemRefused,
    Unreachable,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What the system answered: an MCP tool result (`is_error`), or an HTTP response
    (`status`)."""

    is_error: bool
    text: str
    structured: Any = None
    status: int | None = None


class NotSent(Exception):
    """The request never reached the system (no connection): safe to retry, nothing changed."""


class NoAnswer(Exception):
    """The request went out and no usable answer came back: its effect is unknown."""


class TooLarge(Exception):
    """The answer exceeded the connector's max_answer_bytes (and was not read further)."""


class Link(Protocol):
    """How a request reaches the system (MCP or HTTP)."""

    kind: str  # "mcp" | "http"

    def send(self, operation: Operation, values: dict[str, Any]) -> Answer: ...

    def close(self) -> None: ...


class Breaker:
    """Closed; open after `failures` failures in a row, for `cooldown` seconds; then half
    open: one call may try, and its outcome closes or reopens it."""

    def __init__(self, failures: int, cooldown: float) -> None:
        self.failures, self.cooldown = failures, cooldown
        self._lock = threading.Lock()
        self._row = 0
        self._opened: float | None = None
        self._trying = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened is None:
                return "closed"
            return "half-open" if time.monotonic() - self._opened >= self.cooldown else "open"

    def allow(self) -> bool:
        with self._lock:
            if self._opened is None:
                return True
            if time.monotonic() - self._opened < self.cooldown or self._trying:
                return False
            self._trying = True  # the one call that tries again
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._row, self._opened, self._trying = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._row += 1
            self._trying = False
            if self._row >= self.failures or self._opened is not None:
                if self._opened is None:
                    log.warning("order system failing: breaker open for %.0f s", self.cooldown)
                self._opened = time.monotonic()


@dataclass
class Stats:
    """Calls by (operation, outcome), and their time: read by /metrics."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    last_error: str | None = None

    def record(self, operation: str, outcome: str, seconds: float) -> None:
        self.calls[(operation, outcome)] += 1
        self.seconds[operation] = self.seconds.get(operation, 0.0) + seconds


class RemoteOrders:
    """The port (tools/order_system.py) on a shop's system."""

    local = False  # every call goes over the network: never made with the writer held

    def __init__(self, spec: ConnectorSpec, link: Link, *, sleep: Any = time.sleep) -> None:
        self.spec, self.link = spec, link
        self.name = f"{link.kind}:{spec.name}"
        self.read = Reader(spec)
        self.breaker = Breaker(spec.breaker_failures, spec.breaker_cooldown)
        self.stats = Stats()
        self._sleep = sleep

    # -- reads ----------------------------------------------------------------------------

    def customer_by_email(self, email: str) -> str | None:
        found = self._lookup("customer_by_email", email=email)
        return None if found is None else self.read.identifier(found)

    def customer_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        if "customer_by_name_zip" not in self.spec.operations:
            return None
        found = self._lookup("customer_by_name_zip", first_name=first_name,
                             last_name=last_name, zip=zip_code)  # fmt: skip
        return None if found is None else self.read.identifier(found)

    def customer(self, customer_id: str, *, lock: bool = False) -> CustomerRecord | None:
        found = self._lookup("customer", customer_id=customer_id)
        if found is None:
            return None
        record = self.read.customer(found)
        if record.id != customer_id:
            raise BadAnswer(f"asked for customer {customer_id}, got {record.id}")
        return record

    def order(self, order_id: str, *, lock: bool = False) -> OrderRecord | None:
        wanted = normalize_order_id(order_id)
        found = self._lookup("order", order_id=wanted)
        if found is None:
            return None
        record = self.read.order(found)
        if normalize_order_id(record.id) != wanted:
            raise BadAnswer(f"asked for order {wanted}, got {record.id}")
        return record

    def orders_of(self, customer: CustomerRecord, limit: int) -> list[OrderRecord]:
        newest = list(reversed(customer.order_ids))[:limit]
        return [o for o in (self.order(i) for i in newest) if o is not None]

    def product(self, product_id: str) -> ProductRecord | None:
        found = self._lookup("product", product_id=product_id)
        if found is None:
            return None
        record = self.read.product(found)
        if record.id != product_id:
            raise BadAnswer(f"asked for product {product_id}, got {record.id}")
        return record

    def products(self) -> dict[str, str]:
        found = self._lookup("products")
        return {} if found is None else self.read.products(found)

    def _lookup(self, name: str, **values: Any) -> Any:
        """The answer's data at the operation's `at`; None when the system says not found.
        Retried with backoff when the system cannot be reached or does not answer."""
        operation = self.spec.operations[name]
        tries = self.spec.read_retries + 1
        detail = ""
        for attempt in range(tries):
            if attempt:
                self._sleep(self.spec.retry_backoff * 2 ** (attempt - 1))
            try:
                answer = self.send(name, operation, values)
            except (NotSent, NoAnswer) as exc:
                detail = str(exc)
                continue
            except TooLarge as exc:
                raise BadAnswer(f"{name}: {exc}") from exc
            if _not_found(answer):
                return None
            if answer.is_error:
                raise BadAnswer(f"{name}: the system answered an error: {answer.text[:300]}")
            data = at(parse(answer.text, answer.structured), operation.at)
            if data is None or data == "":
                return None
            return data
        raise Unreachable(f"{name}: {detail}")

    # -- changes --------------------------------------------------------------------------

    def change(self, name: str, arguments: dict[str, Any]) -> ChangeDone:
        """Sent once. Refused: SystemRefused; not sent: Unreachable; sent and no usable
        answer: OutcomeUnknown."""
        operation = self.spec.operations[name]
        try:
            answer = self.send(name, operation, arguments)
        except NotSent as exc:
            raise Unreachable(f"{name}: {exc}") from exc
        except (NoAnswer, TooLarge) as exc:
            raise OutcomeUnknown(f"{name}: {exc}") from exc
        if answer.is_error:
            if answer.status is not None and (answer.status >= 500 or answer.status in (408,)):
                raise OutcomeUnknown(f"{name}: HTTP {answer.status}: {answer.text[:300]}")
            if answer.status == 429:
                raise Unreachable(f"{name}: HTTP 429 (rate limited)")
            raise SystemRefused(_reason(answer))
        try:
            data = at(parse(answer.text, answer.structured), operation.at)
            if operation.result == "customer":
                return ChangeDone(customer=self.read.customer(data), reply=answer.text[:20_000])
            return ChangeDone(order=self.read.order(data), reply=answer.text[:20_000])
        except BadAnswer as exc:
            # It answered without an error, so it may well have done it: not ours to guess.
            raise OutcomeUnknown(f"{name}: unreadable answer ({exc.detail})") from exc

    # -- sending --------------------------------------------------------------------------

    def send(self, name: str, operation: Operation, values: dict[str, Any]) -> Answer:
        if not self.breaker.allow():
            self.stats.record(name, "breaker_open", 0.0)
            raise NotSent("the breaker is open after repeated failures")
        started = time.monotonic()
        try:
            answer = self.link.send(operation, values)
        except NotSent as exc:
            self._failed(name, "unreachable", started, exc)
            raise
        except NoAnswer as exc:
            self._failed(name, "no_answer", started, exc)
            raise
        except TooLarge:
            self.stats.record(name, "too_large", time.monotonic() - started)
            raise
        if answer.status is not None and answer.status >= 500:
            self._failed(name, "server_error", started, f"HTTP {answer.status}")
            if name in self.spec.operations and name in _READS:
                raise NoAnswer(f"HTTP {answer.status}")
            return answer
        self.breaker.succeeded()
        self.stats.record(name, "error" if answer.is_error else "ok", time.monotonic() - started)
        return answer

    def _failed(self, name: str, outcome: str, started: float, exc: object) -> None:
        self.breaker.failed()
        self.stats.record(name, outcome, time.monotonic() - started)
        self.stats.last_error = f"{name}: {exc}"
        log.warning("order system %s: %s %s (%s)", self.name, name, outcome, exc)

    def health(self) -> dict[str, Any]:
        """For /readyz: the breaker's state and the last failure."""
        return {"system": self.name, "server": self.spec.where, "state": self.breaker.state,
                "last_error": self.stats.last_error}  # fmt: skip

    def close(self) -> None:
        self.link.close()


_READS = ("customer_by_email", "customer_by_name_zip", "customer", "order", "product", "products")


def _not_found(answer: Answer) -> bool:
    if answer.status is not None:
        return answer.status == 404
    return answer.is_error and "not found" in answer.text.lower()


def _reason(answer: Answer) -> str:
    """A refusal's reason, as the system put it ("Error: " aside, a JSON `error` unwrapped)."""
    data = parse(answer.text, answer.structured)
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return str(data[key])[:500]
    text = str(data).strip()
    return (text[6:].strip() if text.lower().startswith("error:") else text)[:500] or "refused"


def render(template: Any, values: dict[str, Any], *, url: bool = False) -> Any:
    """A template with the values: a string that is one "{name}" becomes the value itself (a
    list stays a list); other strings are formatted (URL-encoded for a path)."""
    if isinstance(template, str):
        whole = template.strip()
        if whole.startswith("{") and whole.endswith("}") and whole[1:-1] in values and not url:
            return values[whole[1:-1]]

        def value(name: str) -> str:
            raw = values[name]
            text = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)
            return quote(text, safe="") if url else text

        return _format(template, value)
    if isinstance(template, dict):
        return {k: render(v, values, url=url) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, url=url) for v in template]
    return template


def _format(template: str, value: Any) -> str:
    out, i = [], 0
    while i < len(template):
        start = template.find("{", i)
        end = template.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(template[i:])
            break
        out.append(template[i:start])
        out.append(value(template[start + 1 : end]))
        i = end + 1
    return "".join(out)
