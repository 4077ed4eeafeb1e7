"""Customer and order data functions. Every order read is scoped to one customer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from agent.store.tables import Customer, Order, OrderItem, OrderPayment, PaymentMethod, Shipment


class OrderItemView(BaseModel):
    name: str
    item_id: str
    price: str
    options: dict[str, Any]
    product_id: str = ""  # the catalog's product (its other options: product_info)


class ShipmentView(BaseModel):
    tracking_ids: list[str]
    item_ids: list[str]


class PaymentView(BaseModel):
    """One entry of an order's payment history."""

    transaction_type: str  # payment | refund
    amount: str
    payment_method_id: str


class OrderView(BaseModel):
    """What a customer may see of one of their orders."""

    order_id: str
    status: str
    items: list[OrderItemView]
    shipments: list[ShipmentView]
    shipping_address: dict[str, Any]
    total: str
    payments: list[PaymentView] = []


class PaymentMethodView(BaseModel):
    """A customer's payment method as they may see it: never more than a card's brand and
    last four digits; a gift card's balance."""

    payment_method_id: str
    kind: str  # credit_card | paypal | gift_card
    brand: str | None = None
    last_four: str | None = None
    balance: str | None = None


def payment_methods(*, session: Session, customer_id: str) -> list[PaymentMethodView]:
    methods = session.exec(
        select(PaymentMethod)
        .where(PaymentMethod.customer_id == customer_id)
        .order_by(col(PaymentMethod.id))
    ).all()
    return [
        PaymentMethodView(
            payment_method_id=m.id,
            kind=m.source,
            brand=m.brand,
            last_four=m.last_four,
            balance=format_cents(m.balance_cents) if m.balance_cents is not None else None,
        )
        for m in methods
    ]


class OrderSummary(BaseModel):
    order_id: str
    status: str
    item_count: int
    total: str


def method_label(
    source: str,
    brand: str | None = None,
    last_four: str | None = None,
    balance_cents: int | None = None,
) -> str:
    """A payment method as the customer knows it: "Visa ending in 7711", "PayPal", "gift card
    (balance $40.00)"."""
    if source == "credit_card":
        return f"{(brand or 'card').title()} ending in {last_four}"
    if source == "gift_card":
        return f"gift card (balance {format_cents(balance_cents or 0)})"
    return "PayPal" if source == "paypal" else source.replace("_", " ")


def net_by_method(entries: Iterable[tuple[str, int, str]]) -> dict[str, int]:
    """What each payment method paid for an order, net of the refunds it got back (cents), in
    the order the methods first appear in its history: from (payment | refund, cents, method
    id) entries."""
    net: dict[str, int] = {}
    for kind, cents, method_id in entries:
        net[method_id] = net.get(method_id, 0) + (cents if kind == "payment" else -cents)
    return net


def format_cents(cents: int) -> str:
    """$1,234.56 (and -$1.00), from integer cents without a float."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def normalize_order_id(raw: str) -> str:
    """'w2611340', '#W2611340' and ' # W2611340 ' all name order '#W2611340'."""
    compact = "".join(raw.split()).lstrip("#").upper()
    return f"#{compact}"


def find_customer_by_email(*, session: Session, email: str) -> Customer | None:
    """The customer with this email (a blank one names nobody)."""
    if not email.strip():
        return None
    return session.exec(select(Customer).where(Customer.email == email.strip().lower())).first()


def order_lines(*, session: Session, order_id: str) -> tuple[list[OrderItem], list[Shipment]]:
    """An order's items and shipments, in their stored order."""
    items = session.exec(
        select(OrderItem).where(OrderItem.order_id == order_id).order_by(col(OrderItem.position))
    ).all()
    shipments = session.exec(
        select(Shipment).where(Shipment.order_id == order_id).order_by(col(Shipment.position))
    ).all()
    return list(items), list(shipments)


def get_order(*, session: Session, order_id: str, customer_id: str) -> OrderView | None:
    """The order if it belongs to `customer_id`; None otherwise (whether or not it exists)."""
    order = session.exec(
        select(Order).where(
            Order.id == normalize_order_id(order_id), Order.customer_id == customer_id
        )
    ).first()
    if order is None:
        return None
    items, shipments = order_lines(session=session, order_id=order.id)
    return OrderView(
        order_id=order.id,
        status=order.status,
        items=[
            OrderItemView(
                name=i.name, item_id=i.item_id, price=format_cents(i.price_cents), options=i.options
            )
            for i in items
        ],
        shipments=[
            ShipmentView(tracking_ids=s.tracking_ids, item_ids=s.item_ids) for s in shipments
        ],
        shipping_address=order.address,
        total=format_cents(order.total_cents),
        payments=[
            PaymentView(
                transaction_type=p.transaction_type,
                amount=format_cents(p.amount_cents),
                payment_method_id=p.payment_method_id,
            )
            for p in session.exec(
                select(OrderPayment)
                .where(OrderPayment.order_id == order.id)
                .order_by(col(OrderPayment.position))
            ).all()
        ],
    )


def list_orders(*, session: Session, customer_id: str, limit: int = 10) -> list[OrderSummary]:
    """The customer's most recent orders first."""
    # Counted per listed order through the order_id index (a grouped subquery over every
    # order item in the shop would grow with the shop, not with the customer).
    items = (
        select(func.count())
        .select_from(OrderItem)
        .where(OrderItem.order_id == Order.id)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Order, items)
        .where(Order.customer_id == customer_id)
        .order_by(col(Order.placed_seq).desc())
        .limit(limit)
    ).all()
    return [
        OrderSummary(
            order_id=o.id, status=o.status, item_count=n or 0, total=format_cents(o.total_cents)
        )
        for o, n in rows
    ]


def order_owner(*, session: Session, order_id: str) -> str | None:
    """Owner of an order, for identity verification only; never shown to a caller."""
    order = session.get(Order, normalize_order_id(order_id))
    return order.customer_id if order else None


def remember_customer(
    *,
    session: Session,
    customer_id: str,
    first_name: str,
    last_name: str,
    email: str,
    address: dict[str, Any],
) -> Customer:
    """The local record of a customer verified through the shop's own order system: what
    conversations, tickets and actions refer to. Written only when it is new or differs (for
    the built-in store it is the customer's own row, already as the system has it)."""
    email, zip_code = email.strip().lower(), str(address.get("zip") or "")
    row = session.get(Customer, customer_id)
    same = (first_name, last_name, email, zip_code)
    if row is not None and (row.first_name, row.last_name, row.email, row.zip_code) == same:
        return row  # as the system has it (the email is unique: no other row holds it)
    stale = session.exec(
        select(Customer).where(Customer.email == email, Customer.id != customer_id)
    ).first()
    if stale is not None:  # the system moved this email to another account since
        stale.email = f"moved+{stale.id}@invalid"
        session.add(stale)
        session.flush()
    if row is None:
        row = Customer(id=customer_id, first_name=first_name, last_name=last_name, email=email,
                       zip_code=zip_code, address=dict(address))  # fmt: skip
    else:
        row.first_name, row.last_name, row.email, row.zip_code = (
            first_name,
            last_name,
            email,
            zip_code,
        )
        row.address = dict(address)
    session.add(row)
    session.flush()
    return row
