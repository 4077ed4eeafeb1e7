"""Import customers and orders: the τ²-bench retail `db.json` format and a simple CSV.

Idempotent: a record that matches what is stored changes nothing. A bad record is reported
with its id or line and skipped whole; an order is never half-written.

An import never silently undoes a change made here. A customer or order that a change run
through supportbot (confirmed by the customer, or run by staff) touched since its last import,
and that the file would change, is kept as it is and reported as a conflict; only
`overwrite=True` (`supportbot orders import --overwrite`) replaces it, and says so.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import Engine, case, delete, update
from sqlmodel import Session, col, func, select

from agent.errors import ImportFailed
from agent.store.db import transaction
from agent.store.orders import normalize_order_id, order_lines
from agent.store.tables import (
    ActionStatus,
    Customer,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    Product,
    ProductVariant,
    ProposedAction,
    Shipment,
    aware,
    utcnow,
)

ORDER_STATUSES = {
    "pending", "pending (item modified)", "processed", "delivered", "cancelled", "shipped",
    "exchange requested", "return requested",
}  # fmt: skip
PAYMENT_SOURCES = {"credit_card", "paypal", "gift_card"}

CSV_COLUMNS = ["order_id", "customer_id", "email", "first_name", "last_name", "zip", "status",
               "item_id", "item_name", "price"]  # fmt: skip


class PaymentMethodIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    source: str
    brand: str | None = None
    last_four: str | None = Field(default=None, pattern=r"^\d{4}$")
    balance_cents: int | None = Field(default=None, ge=0)

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v not in PAYMENT_SOURCES:
            raise ValueError(f"unknown payment method {v!r}")
        return v


class PaymentIn(BaseModel):
    transaction_type: Literal["payment", "refund"]
    amount_cents: int = Field(ge=0)
    payment_method_id: str = Field(min_length=1, max_length=64)


class CustomerIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    zip_code: str = Field(max_length=20)
    address: dict[str, Any] = {}
    # None: the source says nothing about them (CSV), and stored ones are kept.
    payment_methods: list[PaymentMethodIn] | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()

    @field_validator("zip_code")
    @classmethod
    def _a_fact(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a customer needs a zip code (identity checks compare it)")
        return v.strip()


class ItemIn(BaseModel):
    item_id: str = Field(min_length=1)
    product_id: str = ""
    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0)
    options: dict[str, Any] = {}


class VariantIn(BaseModel):
    item_id: str = Field(min_length=1)
    options: dict[str, Any] = {}
    available: bool = True
    price_cents: int = Field(ge=0)


class ProductIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    variants: list[VariantIn] = []


class ShipmentIn(BaseModel):
    tracking_ids: list[str] = []
    item_ids: list[str] = []


class OrderActionsIn(BaseModel):
    """What the order actions recorded on an order (τ²-bench's optional order fields)."""

    cancel_reason: str | None = Field(default=None, max_length=32)
    return_items: list[str] | None = None
    return_payment_method_id: str | None = Field(default=None, max_length=64)
    exchange_items: list[str] | None = None
    exchange_new_items: list[str] | None = None
    exchange_payment_method_id: str | None = Field(default=None, max_length=64)
    exchange_price_difference_cents: int | None = None


class OrderIn(BaseModel):
    id: str = Field(pattern=r"^#[A-Z0-9]{3,30}$")
    customer_id: str = Field(min_length=1)
    status: str
    address: dict[str, Any] = {}
    items: list[ItemIn] = Field(min_length=1)
    shipments: list[ShipmentIn] = []
    payments: list[PaymentIn] | None = None  # None: not in the source (CSV); stored ones kept
    actions: OrderActionsIn | None = None  # likewise

    @field_validator("status")
    @classmethod
    def _known_status(cls, v: str) -> str:
        if v.strip().lower() not in ORDER_STATUSES:
            raise ValueError(f"unknown status {v!r}")
        return v.strip().lower()


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # changed here since the last import: the file's version was not written
    overwritten: int = 0  # ... and written all the same (overwrite=True)


@dataclass
class ImportReport:
    customers: Tally = field(default_factory=Tally)
    orders: Tally = field(default_factory=Tally)
    products: Tally = field(default_factory=Tally)
    problems: list[str] = field(default_factory=list)
    # Records changed here since their last import that the file would change: kept, or
    # overwritten with overwrite=True. One line each, what was changed here and what differs.
    conflicts: list[str] = field(default_factory=list)


@dataclass
class _ChangedHere:
    """When changes run here (executed actions) last touched each order and customer."""

    orders: dict[str, datetime]
    customers: dict[str, datetime]
    tools: dict[str, set[str]]  # "order:#W…" / "customer:…" -> the tools that changed it

    @classmethod
    def read(cls, session: Session) -> _ChangedHere:
        found = cls({}, {}, {})
        rows = session.exec(
            select(ProposedAction.tool, ProposedAction.arguments, ProposedAction.customer_id,
                   ProposedAction.decided_at)
            .where(ProposedAction.status == ActionStatus.EXECUTED)
        ).all()  # fmt: skip
        for tool, arguments, customer_id, decided_at in rows:
            when = aware(decided_at or utcnow())
            _later(found.customers, customer_id, when)
            found.tools.setdefault(f"customer:{customer_id}", set()).add(tool)
            if isinstance(arguments, dict) and arguments.get("order_id"):
                order_id = normalize_order_id(str(arguments["order_id"]))
                _later(found.orders, order_id, when)
                found.tools.setdefault(f"order:{order_id}", set()).add(tool)
        return found

    def since_import(self, kind: str, key: str, imported_at: datetime | None) -> bool:
        changed = (self.orders if kind == "order" else self.customers).get(key)
        return changed is not None and (imported_at is None or changed > aware(imported_at))

    def describe(self, kind: str, key: str, differs: list[str]) -> str:
        tools = ", ".join(sorted(self.tools.get(f"{kind}:{key}", set())))
        return (f"{kind} {key}: changed here ({tools}) since its last import; the file differs "
                f"in {', '.join(differs)}")  # fmt: skip


def _later(seen: dict[str, datetime], key: str, when: datetime) -> None:
    if key not in seen or when > seen[key]:
        seen[key] = when


@dataclass
class _Run:
    """One import: its report, what was changed here, and whether to overwrite that."""

    report: ImportReport
    changed_here: _ChangedHere
    overwrite: bool
    now: datetime
    rebalance: set[str] = field(default_factory=set)  # customers whose gift cards to re-open

    def conflict(self, tally: Tally, kind: str, key: str, differs: list[str]) -> bool:
        """Whether to keep the stored record (a conflict not overwritten). Reports it."""
        self.report.conflicts.append(self.changed_here.describe(kind, key, differs))
        if self.overwrite:
            tally.overwritten += 1
            return False
        tally.kept += 1
        return True


def to_cents(value: Any) -> int:
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation as exc:
        raise ValueError(f"price {value!r} is not a number") from exc
    if not amount.is_finite():
        raise ValueError(f"price {value!r} is not a number")
    return int((amount * 100).to_integral_value())


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


# --- readers: each yields ("customer"|"order", where, builder) -------------------------------

Parsed = tuple[str, str, Any]


def read_retail_json(path: Path) -> Iterator[Parsed]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFailed(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise ImportFailed(f"{path}: expected an object with 'users' and 'orders'")
    for product_id, product in (data.get("products") or {}).items():
        yield (
            "product",
            f"product {product_id}",
            lambda p=product, pid=product_id: _retail_product(pid, p),
        )
    for user_id, user in data["users"].items():
        yield "customer", f"user {user_id}", lambda u=user, uid=user_id: _retail_customer(uid, u)
    for order_id, order in (data.get("orders") or {}).items():
        yield "order", f"order {order_id}", lambda o=order, oid=order_id: _retail_order(oid, o)


def _retail_product(product_id: str, product: dict[str, Any]) -> ProductIn:
    variants = []
    for item_id, variant in (product.get("variants") or {}).items():
        try:
            cents = to_cents(variant["price"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"variant {item_id}: price: {exc}") from exc
        variants.append(
            VariantIn(
                item_id=str(variant.get("item_id") or item_id),
                options=variant.get("options") or {},
                available=bool(variant.get("available", True)),
                price_cents=cents,
            )
        )
    return ProductIn(id=str(product.get("product_id") or product_id), name=product.get("name", ""),
                     variants=variants)  # fmt: skip


def _retail_customer(user_id: str, user: dict[str, Any]) -> CustomerIn:
    name = user.get("name") or {}
    address = user.get("address") or {}
    methods = []
    for method_id, method in (user.get("payment_methods") or {}).items():
        balance = method.get("balance")
        try:
            cents = to_cents(balance) if balance is not None else None
        except ValueError as exc:
            raise ValueError(f"payment_methods.{method_id}.balance: {exc}") from exc
        methods.append(
            PaymentMethodIn(
                id=str(method.get("id") or method_id),
                source=str(method.get("source", "")),
                brand=method.get("brand"),
                last_four=method.get("last_four"),
                balance_cents=cents,
            )
        )
    return CustomerIn(
        id=user_id,
        first_name=name.get("first_name", ""),
        last_name=name.get("last_name", ""),
        email=user.get("email", ""),
        zip_code=str(address.get("zip", "")),
        address=address,
        payment_methods=methods,
    )


def _retail_order(order_id: str, order: dict[str, Any]) -> OrderIn:
    items = []
    for i, item in enumerate(order.get("items") or []):
        try:
            cents = to_cents(item["price"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"items.{i}.price: {exc}") from exc
        items.append(
            ItemIn(
                item_id=str(item.get("item_id", "")),
                product_id=str(item.get("product_id", "")),
                name=item.get("name", ""),
                price_cents=cents,
                options=item.get("options") or {},
            )
        )
    return OrderIn(
        id=normalize_order_id(order.get("order_id") or order_id),
        customer_id=order.get("user_id", ""),
        status=order.get("status", ""),
        address=order.get("address") or {},
        items=items,
        shipments=[
            ShipmentIn(tracking_ids=f.get("tracking_id") or [], item_ids=f.get("item_ids") or [])
            for f in order.get("fulfillments") or []
        ],
        payments=[_retail_payment(i, p) for i, p in enumerate(order.get("payment_history") or [])],
        actions=_retail_actions(order),
    )


def _retail_actions(order: dict[str, Any]) -> OrderActionsIn:
    difference = order.get("exchange_price_difference")
    try:
        cents = None if difference is None else to_cents(difference)
    except ValueError as exc:
        raise ValueError(f"exchange_price_difference: {exc}") from exc
    fields = {k: order.get(k) for k in OrderActionsIn.model_fields if k in order}
    return OrderActionsIn(**fields, exchange_price_difference_cents=cents)


def _retail_payment(index: int, payment: dict[str, Any]) -> PaymentIn:
    try:
        cents = to_cents(payment["amount"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"payment_history.{index}.amount: {exc}") from exc
    return PaymentIn(
        transaction_type=payment.get("transaction_type", ""),
        amount_cents=cents,
        payment_method_id=str(payment.get("payment_method_id", "")),
    )


def read_orders_csv(path: Path) -> Iterator[Parsed]:
    """One row per order line; rows of one order share its `order_id`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path}: not UTF-8 text ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFailed(f"{path}: missing columns: {', '.join(missing)}")
    orders: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for row in reader:
        line = reader.line_num  # the physical line, even when a quoted field spans lines
        key = (row.get("order_id") or "").strip()
        orders.setdefault(key or f"<line {line}>", []).append((line, row))
    seen_customers: set[str] = set()
    for key, rows in orders.items():
        first_line, first = rows[0]
        customer_id = (first.get("customer_id") or "").strip()
        if customer_id not in seen_customers:
            seen_customers.add(customer_id)
            yield "customer", f"line {first_line}", lambda r=first: _csv_customer(r)
        where = f"order {key} (lines {', '.join(str(n) for n, _ in rows)})"
        yield "order", where, lambda rs=rows: _csv_order(rs)


def _csv_customer(row: dict[str, str]) -> CustomerIn:
    return CustomerIn(
        id=(row.get("customer_id") or "").strip(),
        first_name=(row.get("first_name") or "").strip(),
        last_name=(row.get("last_name") or "").strip(),
        email=row.get("email") or "",
        zip_code=(row.get("zip") or "").strip(),
        address={k: row[k] for k in ("address1", "city", "state", "country") if row.get(k)}
        | {"zip": (row.get("zip") or "").strip()},
    )


def _csv_order(rows: list[tuple[int, dict[str, str]]]) -> OrderIn:
    items, tracking = [], []
    first = rows[0][1]
    for line, row in rows:
        if (row.get("customer_id") or "").strip() != (first.get("customer_id") or "").strip():
            raise ValueError(f"line {line}: customer_id differs from the order's first line")
        try:
            cents = to_cents(row.get("price", ""))
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from exc
        items.append(
            ItemIn(
                item_id=(row.get("item_id") or "").strip(),
                product_id=(row.get("product_id") or "").strip(),
                name=(row.get("item_name") or "").strip(),
                price_cents=cents,
            )
        )
        if (tid := (row.get("tracking_id") or "").strip()) and tid not in tracking:
            tracking.append(tid)
    return OrderIn(
        id=normalize_order_id(first.get("order_id") or ""),
        customer_id=(first.get("customer_id") or "").strip(),
        status=first.get("status") or "",
        address={"zip": (first.get("zip") or "").strip()},
        items=items,
        shipments=[ShipmentIn(tracking_ids=tracking, item_ids=[i.item_id for i in items])]
        if tracking
        else [],
    )


# --- writer -----------------------------------------------------------------------------------


def import_path(engine: Engine, path: Path, *, overwrite: bool = False) -> ImportReport:
    """Import one file; the format is chosen by its suffix (.json or .csv). `overwrite`: write
    records changed here since their last import too (see the module's docstring)."""
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = read_retail_json(path)
    elif suffix == ".csv":
        records = read_orders_csv(path)
    else:
        raise ImportFailed(f"{path}: unsupported format {suffix!r} (use .json or .csv)")
    return import_records(engine, records, overwrite=overwrite)


def import_records(
    engine: Engine, records: Iterable[Parsed], *, overwrite: bool = False
) -> ImportReport:
    report = ImportReport()
    with transaction(engine) as session:
        run = _Run(report, _ChangedHere.read(session), overwrite, utcnow())
        next_seq = (session.exec(select(func.max(Order.placed_seq))).one() or 0) + 1
        for kind, where, build in records:
            try:
                record = build()
            except ValidationError as exc:
                report.problems.append(f"{where}: {_explain(exc)}")
                continue
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                report.problems.append(f"{where}: {exc}")
                continue
            try:
                with session.begin_nested():
                    if kind == "customer":
                        _upsert_customer(session, record, run)
                    elif kind == "product":
                        _upsert_product(session, record, report)
                    else:
                        next_seq = _upsert_order(session, record, run, next_seq)
            except _Skip as exc:
                report.problems.append(f"{where}: {exc}")
        _reopen_gift_cards(session, run.rebalance)
    return report


def _reopen_gift_cards(session: Session, customer_ids: set[str]) -> None:
    """Each written customer's gift cards open at their balance less the refunds and plus the
    payments stored for them: what an import says is the truth as of now."""
    if not customer_ids:
        return
    net = (
        select(func.coalesce(func.sum(case(
            (col(OrderPayment.transaction_type) == "refund", col(OrderPayment.amount_cents)),
            else_=-col(OrderPayment.amount_cents),
        )), 0))
        .where(col(OrderPayment.payment_method_id) == col(PaymentMethod.id))
        .scalar_subquery()
    )  # fmt: skip
    session.execute(
        update(PaymentMethod)
        .where(col(PaymentMethod.source) == "gift_card",
               col(PaymentMethod.customer_id).in_(sorted(customer_ids)))
        .values(opening_balance_cents=func.coalesce(col(PaymentMethod.balance_cents), 0) - net)
    )  # fmt: skip
    session.flush()


class _Skip(Exception):
    pass


def _upsert_customer(session: Session, c: CustomerIn, run: _Run) -> None:
    report = run.report
    clash = session.exec(
        select(Customer).where(Customer.email == c.email, Customer.id != c.id)
    ).first()
    if clash is not None:
        raise _Skip(f"email {c.email} already belongs to customer {clash.id}")
    existing = session.get(Customer, c.id)
    values = c.model_dump(exclude={"id", "payment_methods"})
    methods_changed = c.payment_methods is not None and _stored_methods(session, c.id) != sorted(
        c.payment_methods, key=lambda m: m.id
    )
    if existing is None:
        session.add(Customer(id=c.id, **values, imported_at=run.now))
        report.customers.created += 1
    else:
        differs = [k for k in values if getattr(existing, k) != values[k]]
        differs += ["payment methods"] if methods_changed else []
        here = run.changed_here.since_import("customer", c.id, existing.imported_at)
        if not differs:
            report.customers.unchanged += 1
            if here:  # the file has caught up with what was changed here
                existing.imported_at = run.now
                session.add(existing)
            return
        if here and run.conflict(report.customers, "customer", c.id, differs):
            return
        for k, v in values.items():
            setattr(existing, k, v)
        existing.imported_at = run.now
        session.add(existing)
        report.customers.updated += 1
    run.rebalance.add(c.id)
    session.flush()
    if c.payment_methods is not None and (existing is None or methods_changed):
        for m in c.payment_methods:
            owner = session.get(PaymentMethod, m.id)
            if owner is not None and owner.customer_id != c.id:
                raise _Skip(
                    f"payment method {m.id} already belongs to customer {owner.customer_id}"
                )
        session.execute(delete(PaymentMethod).where(col(PaymentMethod.customer_id) == c.id))
        session.flush()
        for m in c.payment_methods:
            session.add(PaymentMethod(customer_id=c.id, **m.model_dump()))
        session.flush()


def _stored_methods(session: Session, customer_id: str) -> list[PaymentMethodIn]:
    stored = session.exec(
        select(PaymentMethod).where(PaymentMethod.customer_id == customer_id)
    ).all()
    return sorted(
        (PaymentMethodIn.model_validate(m, from_attributes=True) for m in stored),
        key=lambda m: m.id,
    )


def _upsert_product(session: Session, p: ProductIn, report: ImportReport) -> None:
    existing = session.get(Product, p.id)
    stored = session.exec(select(ProductVariant).where(ProductVariant.product_id == p.id)).all()
    current = sorted(
        (VariantIn.model_validate(v, from_attributes=True) for v in stored), key=lambda v: v.item_id
    )
    if (
        existing is not None
        and existing.name == p.name
        and current == sorted(p.variants, key=lambda v: v.item_id)
    ):
        report.products.unchanged += 1
        return
    if existing is None:
        session.add(Product(id=p.id, name=p.name))
        report.products.created += 1
    else:
        existing.name = p.name
        session.add(existing)
        session.execute(delete(ProductVariant).where(col(ProductVariant.product_id) == p.id))
        report.products.updated += 1
    session.flush()
    for v in p.variants:
        session.add(ProductVariant(product_id=p.id, **v.model_dump()))
    session.flush()


def _stored_order(session: Session, order: Order, with_payments: bool) -> OrderIn:
    items, shipments = order_lines(session=session, order_id=order.id)
    payments = None
    if with_payments:
        stored = session.exec(
            select(OrderPayment)
            .where(OrderPayment.order_id == order.id)
            .order_by(col(OrderPayment.position))
        ).all()
        payments = [PaymentIn.model_validate(p, from_attributes=True) for p in stored]
    actions = OrderActionsIn.model_validate(order, from_attributes=True) if with_payments else None
    return OrderIn(
        payments=payments,
        actions=actions,
        id=order.id,
        customer_id=order.customer_id,
        status=order.status,
        address=order.address,
        items=[ItemIn.model_validate(i, from_attributes=True) for i in items],
        shipments=[ShipmentIn.model_validate(s, from_attributes=True) for s in shipments],
    )


def _upsert_order(session: Session, o: OrderIn, run: _Run, next_seq: int) -> int:
    report = run.report
    if session.get(Customer, o.customer_id) is None:
        raise _Skip(f"customer {o.customer_id!r} is unknown")
    existing = session.get(Order, o.id)
    if existing is not None:
        stored = _stored_order(session, existing, o.payments is not None)
        here = run.changed_here.since_import("order", o.id, existing.imported_at)
        if stored == o:
            report.orders.unchanged += 1
            if here:  # the file has caught up with what was changed here
                existing.imported_at = run.now
                session.add(existing)
            return next_seq
        differs = [k for k in OrderIn.model_fields if getattr(stored, k) != getattr(o, k)]
        if here and run.conflict(report.orders, "order", o.id, differs):
            return next_seq
        run.rebalance.update({existing.customer_id, o.customer_id})
        session.execute(delete(OrderItem).where(col(OrderItem.order_id) == o.id))
        session.execute(delete(Shipment).where(col(Shipment.order_id) == o.id))
        if o.payments is not None:
            session.execute(delete(OrderPayment).where(col(OrderPayment.order_id) == o.id))
        existing.customer_id, existing.status, existing.address = o.customer_id, o.status, o.address
        existing.total_cents = sum(i.price_cents for i in o.items)
        existing.imported_at = run.now
        if o.actions is not None:
            existing.sqlmodel_update(o.actions.model_dump())
        session.add(existing)
        report.orders.updated += 1
    else:
        session.add(
            Order(
                id=o.id,
                customer_id=o.customer_id,
                status=o.status,
                address=o.address,
                total_cents=sum(i.price_cents for i in o.items),
                placed_seq=next_seq,
                imported_at=run.now,
                **(o.actions.model_dump() if o.actions is not None else {}),
            )
        )
        next_seq += 1
        report.orders.created += 1
        run.rebalance.add(o.customer_id)
    session.flush()
    for pos, item in enumerate(o.items):
        session.add(OrderItem(order_id=o.id, position=pos, **item.model_dump()))
    for pos, shipment in enumerate(o.shipments):
        session.add(Shipment(order_id=o.id, position=pos, **shipment.model_dump()))
    for pos, payment in enumerate(o.payments or []):
        session.add(OrderPayment(order_id=o.id, position=pos, **payment.model_dump()))
    session.flush()
    return next_seq
