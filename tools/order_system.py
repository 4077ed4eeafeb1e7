"""The shop's order system, as one port: what the tools, the desk and the reports read or
change about customers, orders, products and payments.

Implementations: the built-in store (agent/adapters/builtin_orders.py, the default), and a
shop's own system through a connector (agent/adapters/connectors/: MCP or HTTP). They return
the plain records below (money in integer cents) and carry out the seven changes by their
τ²-bench retail names and arguments. What supportbot guarantees is enforced above the port,
in tools/order_rules.py and the tools, whatever the backend does: an order or a customer is
read or changed only for the conversation's verified customer (the owner comes from the
backend's own answer; a mismatch is "not found"), the customer's identity fills the customer
arguments, every change is checked and held for the customer's confirmation, and what the
backend answers after a change is compared with what the customer confirmed.

A backend's failure is one of the errors below: each is a ToolError, so the model gets a
message it can explain, and nothing is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.store.orders import method_label, net_by_method
from tools.tool_context import ToolError

# The seven changes, by their τ²-bench retail names (tools/order_actions.py declares them).
CHANGES = (
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
)

UNREACHABLE = (
    "The order system cannot be reached right now, so this could not be looked up or done. "
    "Tell the customer so, and offer to hand the conversation to a person."
)


class Unreachable(ToolError):
    """The order system did not answer (down, timed out, refused the connection). Nothing
    was changed: a read that fails is retried before this; a change that fails here was never
    sent."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(UNREACHABLE)
        self.detail = detail


class BadAnswer(ToolError):
    """The order system answered something unusable (a missing field, a wrong type, an
    error, far too much): the model gets a clear error, nothing is written."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The order system gave an answer that could not be used, so this could not be "
            "looked up or done. Tell the customer so, and offer to hand the conversation to a "
            "person."
        )
        self.detail = detail


class SystemRefused(ToolError):
    """The order system refused a change with its own reason: nothing was changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The order system refused the change: {reason}. Nothing was changed.")
        self.reason = reason


class OutcomeUnknown(ToolError):
    """A change was sent and no answer came back (a timeout, the system went away mid-call):
    whether it took effect is unknown. Never retried: staff find out and tell the customer."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The order system did not confirm this change, so whether it was carried out is "
            "unknown. Do not try it again. Tell the customer that a member of staff will check "
            "what happened and get back to them."
        )
        self.detail = detail


@dataclass(frozen=True)
class Method:
    """A payment method: a card (brand and last four digits only), PayPal, a gift card."""

    id: str
    source: str  # credit_card | paypal | gift_card | ...
    brand: str | None = None
    last_four: str | None = None
    balance_cents: int | None = None  # gift cards

    def label(self) -> str:
        """As the customer knows it: "Visa ending in 7711", "PayPal", "gift card (balance
        $40.00)"."""
        return method_label(self.source, self.brand, self.last_four, self.balance_cents)


@dataclass(frozen=True)
class Line:
    """One item of an order."""

    item_id: str
    product_id: str
    name: str
    price_cents: int
    options: dict[str, Any]


@dataclass(frozen=True)
class Payment:
    """One entry of an order's payment history."""

    kind: str  # payment | refund
    cents: int
    method_id: str


@dataclass(frozen=True)
class Fulfillment:
    tracking_ids: list[str]
    item_ids: list[str]


@dataclass(frozen=True)
class OrderRecord:
    id: str  # "#W2611340"
    customer_id: str  # the owner, as the order system says
    status: str
    address: dict[str, Any]
    items: list[Line]
    payments: list[Payment] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    total_cents: int | None = None  # when the system keeps one; else the items' sum

    @property
    def total(self) -> int:
        return (
            self.total_cents
            if self.total_cents is not None
            else sum(line.price_cents for line in self.items)
        )

    def net_paid(self) -> dict[str, int]:
        return net_by_method((p.kind, p.cents, p.method_id) for p in self.payments)


@dataclass(frozen=True)
class CustomerRecord:
    id: str
    first_name: str
    last_name: str
    email: str
    address: dict[str, Any]
    methods: list[Method]
    order_ids: list[str] = field(default_factory=list)  # oldest first, as placed

    @property
    def zip_code(self) -> str:
        return str(self.address.get("zip") or "")

    def method(self, method_id: str) -> Method | None:
        return next((m for m in self.methods if m.id == method_id), None)


@dataclass(frozen=True)
class Variant:
    item_id: str
    options: dict[str, Any]
    available: bool
    price_cents: int


@dataclass(frozen=True)
class ProductRecord:
    id: str
    name: str
    variants: list[Variant]

    def variant(self, item_id: str) -> Variant | None:
        return next((v for v in self.variants if v.item_id == item_id), None)


@dataclass(frozen=True)
class ChangeDone:
    """What the order system answered to a change it carried out: the order or the customer
    as they are now (compared with what the customer confirmed), and its answer as it came
    (kept with the action: a refund or return id, for staff)."""

    order: OrderRecord | None = None
    customer: CustomerRecord | None = None
    reply: str = ""


class OrderSystem(Protocol):
    """The port. Reads return None for what does not exist; ownership is checked by the
    caller against `customer_id` of the answer, never assumed. `lock=True` (the built-in
    store) holds the rows for the change being checked in the caller's transaction.

    `change(name, arguments)` carries out one of CHANGES with its τ²-bench arguments (the
    customer's id already filled in from the verified identity). It raises SystemRefused,
    Unreachable (not sent), OutcomeUnknown (sent, no answer) or BadAnswer."""

    name: str  # "built-in", or the connector's name
    # Whether it works in the caller's transaction (the built-in store: reads and changes
    # are local and fast, and `lock=True` holds rows) or is a remote system, whose calls must
    # not be made while the store's writer is held (agent.engine.loop, consent).
    local: bool

    def customer_by_email(self, email: str) -> str | None: ...

    def customer_by_name_zip(
        self, first_name: str, last_name: str, zip_code: str
    ) -> str | None: ...

    def customer(self, customer_id: str, *, lock: bool = False) -> CustomerRecord | None: ...

    def order(self, order_id: str, *, lock: bool = False) -> OrderRecord | None: ...

    def orders_of(self, customer: CustomerRecord, limit: int) -> list[OrderRecord]:
        """The customer's most recent orders first."""
        ...

    def product(self, product_id: str) -> ProductRecord | None: ...

    def products(self) -> dict[str, str]:
        """Every product: name -> id."""
        ...

    def change(self, name: str, arguments: dict[str, Any]) -> ChangeDone: ...


class Remembering:
    """A remote order system whose reads are remembered for a while (one tool round): what a
    round reads before its write transaction is not asked for again inside it. Changes pass
    through, never remembered. Only the order system's facts are remembered: whose an order
    is, and whether a call may see it, is decided above it on every call."""

    def __init__(self, system: OrderSystem) -> None:
        self.system = system
        self.name = system.name
        self.local = system.local
        self._seen: dict[tuple[Any, ...], Any] = {}

    def _read(self, key: tuple[Any, ...], read: Any) -> Any:
        if key not in self._seen:
            try:
                self._seen[key] = (read(), None)
            except ToolError as exc:  # unreachable, a bad answer: the same, not a second wait
                self._seen[key] = (None, exc)
        value, error = self._seen[key]
        if error is not None:
            raise error
        return value

    def customer_by_email(self, email: str) -> str | None:
        return self._read(("email", email), lambda: self.system.customer_by_email(email))

    def customer_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        return self._read(("name_zip", first_name, last_name, zip_code),
                          lambda: self.system.customer_by_name_zip(first_name, last_name,
                                                                   zip_code))  # fmt: skip

    def customer(self, customer_id: str, *, lock: bool = False) -> CustomerRecord | None:
        return self._read(("customer", customer_id), lambda: self.system.customer(customer_id))

    def order(self, order_id: str, *, lock: bool = False) -> OrderRecord | None:
        return self._read(("order", order_id), lambda: self.system.order(order_id))

    def orders_of(self, customer: CustomerRecord, limit: int) -> list[OrderRecord]:
        return self._read(("orders_of", customer.id, tuple(customer.order_ids), limit),
                          lambda: self.system.orders_of(customer, limit))  # fmt: skip

    def product(self, product_id: str) -> ProductRecord | None:
        return self._read(("product", product_id), lambda: self.system.product(product_id))

    def products(self) -> dict[str, str]:
        return dict(self._read(("products",), self.system.products))

    def change(self, name: str, arguments: dict[str, Any]) -> ChangeDone:
        return self.system.change(name, arguments)
