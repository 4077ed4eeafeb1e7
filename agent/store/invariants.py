"""What must hold in the store whatever happened to it: money that adds up, identities that
cannot be claimed with a blank, and executed changes that stand where they were made.

`check` reads a live database and lists every violation (`supportbot db check`); the property
test (tests/test_invariants.py) runs it after every step of random sequences of changes.

The invariants, in cents:
- per order and payment method, refunds never exceed what that method paid (net >= 0);
- per order with a payment history, what it holds (payments - refunds) is its total, and
  nothing once it is cancelled; an order's total is the sum of its items' prices;
- per gift card, balance = opening balance + refunds to it - payments from it, never negative
  (the opening balance is set at import: see agent/store/importer.py);
- every customer has an email and a zip code that are not blank (what identity checks
  compare; a blank one would match a blank guess);
- an executed change since the record's last import stands in the store: the order's status
  is the one the change leaves (or a later one it allows), an account's address is the one
  last confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.store.addresses import is_fact
from agent.store.orders import format_cents, net_by_method, normalize_order_id
from agent.store.tables import (
    ActionStatus,
    Customer,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    ProposedAction,
    aware,
)

PENDING, ITEMS_MODIFIED, CANCELLED = "pending", "pending (item modified)", "cancelled"
# The statuses an order may have after an executed change (the change, or one that may follow).
LEAVES = {
    "cancel_pending_order": {CANCELLED},
    "modify_pending_order_items": {ITEMS_MODIFIED},
    "modify_pending_order_address": {PENDING, ITEMS_MODIFIED, CANCELLED},
    "modify_pending_order_payment": {PENDING, ITEMS_MODIFIED, CANCELLED},
    "return_delivered_order_items": {"return requested"},
    "exchange_delivered_order_items": {"exchange requested"},
}


@dataclass(frozen=True)
class Violation:
    rule: str  # money.refunds | money.holds | money.total | money.gift_card | identity | action
    subject: str  # "order #W…", "gift card …", "customer …", "action act_…"
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


def check(engine: Engine) -> list[Violation]:
    """Every violation of the invariants in the store, in a stable order."""
    with Session(engine) as session:
        return [
            *_orders(session),
            *_gift_cards(session),
            *_customers(session),
            *_executed(session),
        ]


def _orders(session: Session) -> list[Violation]:
    found: list[Violation] = []
    payments: dict[str, list[OrderPayment]] = defaultdict(list)
    for p in session.exec(
        select(OrderPayment).order_by(col(OrderPayment.order_id), col(OrderPayment.position))
    ):
        payments[p.order_id].append(p)
    items: dict[str, int] = defaultdict(int)
    for order_id, cents in session.exec(select(OrderItem.order_id, OrderItem.price_cents)):
        items[order_id] += cents
    for order in session.exec(select(Order).order_by(col(Order.id))):
        subject = f"order {order.id}"
        if order.total_cents != items[order.id]:
            found.append(
                Violation(
                    "money.total",
                    subject,
                    f"total {format_cents(order.total_cents)}"
                    f" but its items cost {format_cents(items[order.id])}",
                )
            )
        history = payments.get(order.id)
        if not history:
            continue  # imported without a payment history (CSV): nothing to add up
        net = net_by_method(
            (p.transaction_type, p.amount_cents, p.payment_method_id) for p in history
        )
        for method, cents in net.items():
            if cents < 0:
                found.append(
                    Violation(
                        "money.refunds",
                        subject,
                        f"{method} got back {format_cents(-cents)} more than it paid",
                    )
                )
        holds, due = sum(net.values()), 0 if order.status == CANCELLED else order.total_cents
        if holds != due:
            found.append(
                Violation(
                    "money.holds",
                    subject,
                    f"holds {format_cents(holds)} "
                    f"({order.status}), should hold {format_cents(due)}",
                )
            )
    return found


def _gift_cards(session: Session) -> list[Violation]:
    moved: dict[str, int] = defaultdict(int)
    for method, kind, cents in session.exec(
        select(
            OrderPayment.payment_method_id, OrderPayment.transaction_type, OrderPayment.amount_cents
        )
    ):
        moved[method] += cents if kind == "refund" else -cents
    found: list[Violation] = []
    cards = select(PaymentMethod).where(PaymentMethod.source == "gift_card")
    for card in session.exec(cards.order_by(col(PaymentMethod.id))):
        subject, balance = f"gift card {card.id}", card.balance_cents or 0
        if balance < 0:
            found.append(Violation("money.gift_card", subject, f"balance {format_cents(balance)}"))
        if card.opening_balance_cents is not None:
            expected = card.opening_balance_cents + moved[card.id]
            if balance != expected:
                found.append(
                    Violation(
                        "money.gift_card",
                        subject,
                        f"balance "
                        f"{format_cents(balance)}, but its opening balance and entries make "
                        f"{format_cents(expected)}",
                    )
                )
    return found


def _customers(session: Session) -> list[Violation]:
    found: list[Violation] = []
    for customer in session.exec(select(Customer).order_by(col(Customer.id))):
        blank = [
            name
            for name, fact in (("email", customer.email), ("zip code", customer.zip_code))
            if not is_fact(fact)
        ]
        if blank:
            found.append(
                Violation(
                    "identity",
                    f"customer {customer.id}",
                    f"blank {' and '.join(blank)}: identity checks compare it",
                )
            )
    return found


def _executed(session: Session) -> list[Violation]:
    """Executed changes made since their record's last import, against the store."""
    found: list[Violation] = []
    executed = session.exec(
        select(ProposedAction)
        .where(ProposedAction.status == ActionStatus.EXECUTED)
        .order_by(col(ProposedAction.decided_at), col(ProposedAction.id))
    ).all()
    last_address: dict[str, ProposedAction] = {}
    for action in executed:
        when = aware(action.decided_at or action.created_at)
        if action.tool == "modify_user_address":
            last_address[action.customer_id] = action
            continue
        order = session.get(Order, normalize_order_id(str(action.arguments.get("order_id", ""))))
        if order is None or action.tool not in LEAVES:
            continue
        if order.imported_at is not None and aware(order.imported_at) >= when:
            continue  # an import replaced it since (overwrite)
        if order.status not in LEAVES[action.tool]:
            found.append(
                Violation(
                    "action",
                    f"action {action.id}",
                    f"{action.tool} executed, but order {order.id} is '{order.status}'",
                )
            )
    for customer_id, action in last_address.items():
        customer = session.get(Customer, customer_id)
        if customer is None:
            continue
        if customer.imported_at is not None and aware(customer.imported_at) >= aware(
            action.decided_at or action.created_at
        ):
            continue
        wanted = {k: str(v) for k, v in action.arguments.items()}
        stored = {k: str(customer.address.get(k) or "") for k in wanted}
        if stored != wanted or customer.zip_code != wanted.get("zip"):
            found.append(
                Violation(
                    "action",
                    f"action {action.id}",
                    f"modify_user_address executed, but customer {customer_id}'s address differs",
                )
            )
    return found
