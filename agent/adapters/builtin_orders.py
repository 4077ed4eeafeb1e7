"""The built-in order system: the store's own tables (agent/store/tables.py), the default.

Reads turn rows into the port's records (tools/order_system.py). A change runs in the
caller's transaction, on rows the checks above the port read with `lock=True` (held until
the transaction ends), so what was checked is what is changed; it follows the τ²-bench retail
domain's semantics, with refunds of what each method paid net of earlier refunds.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from agent.store.db import keep
from agent.store.orders import net_by_method, normalize_order_id
from agent.store.tables import (
    Customer,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    Product,
    ProductVariant,
    Shipment,
)
from tools.order_system import (
    ChangeDone,
    CustomerRecord,
    Fulfillment,
    Line,
    Method,
    OrderRecord,
    Payment,
    ProductRecord,
    SystemRefused,
    Variant,
)

NAME = "built-in"


class BuiltinOrders:
    """The port on one session (the caller's transaction)."""

    name = NAME
    local = True  # on the caller's session and transaction

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reads ----------------------------------------------------------------------------

    def customer_by_email(self, email: str) -> str | None:
        if not email.strip():
            return None
        row = self.session.exec(
            select(Customer.id).where(Customer.email == email.strip().lower())
        ).first()
        return str(row) if row is not None else None

    def customer_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        if not (first_name.strip() and last_name.strip() and zip_code.strip()):
            return None
        row = self.session.exec(
            select(Customer.id).where(
                col(Customer.first_name).ilike(first_name.strip()),
                col(Customer.last_name).ilike(last_name.strip()),
                Customer.zip_code == zip_code.strip(),
            )
        ).first()
        return str(row) if row is not None else None

    def customer(self, customer_id: str, *, lock: bool = False) -> CustomerRecord | None:
        row = self.session.get(Customer, customer_id, with_for_update=lock)
        if row is None:
            return None
        keep(self.session, row)  # a new conversation's binding reads it again (no query then)
        methods = self.session.exec(
            _locked(
                select(PaymentMethod)
                .where(PaymentMethod.customer_id == customer_id)
                .order_by(col(PaymentMethod.id)),
                lock,
            )
        ).all()
        order_ids = self.session.exec(
            select(Order.id).where(Order.customer_id == customer_id).order_by(col(Order.placed_seq))
        ).all()
        return CustomerRecord(
            id=row.id,
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            address={**row.address, "zip": row.address.get("zip") or row.zip_code},
            methods=[_method(m) for m in methods],
            order_ids=[str(o) for o in order_ids],
        )

    def order(self, order_id: str, *, lock: bool = False) -> OrderRecord | None:
        row = self.session.exec(
            _locked(select(Order).where(Order.id == normalize_order_id(order_id)), lock)
        ).first()
        return self._record(row) if row is not None else None

    def orders_of(self, customer: CustomerRecord, limit: int) -> list[OrderRecord]:
        rows = self.session.exec(
            select(Order)
            .where(Order.customer_id == customer.id)
            .order_by(col(Order.placed_seq).desc())
            .limit(limit)
        ).all()
        return [self._record(row) for row in rows]

    def product(self, product_id: str) -> ProductRecord | None:
        row = self.session.get(Product, product_id)
        if row is None:
            return None
        variants = self.session.exec(
            select(ProductVariant)
            .where(ProductVariant.product_id == row.id)
            .order_by(col(ProductVariant.item_id))
        ).all()
        return ProductRecord(row.id, row.name, [
            Variant(v.item_id, dict(v.options), v.available, v.price_cents) for v in variants
        ])  # fmt: skip

    def products(self) -> dict[str, str]:
        rows = self.session.exec(
            select(Product.name, Product.id).order_by(col(Product.name), col(Product.id))
        ).all()
        return {str(name): str(pid) for name, pid in rows}

    def _record(self, row: Order) -> OrderRecord:
        items = self.session.exec(
            select(OrderItem).where(OrderItem.order_id == row.id).order_by(col(OrderItem.position))
        ).all()
        shipments = self.session.exec(
            select(Shipment).where(Shipment.order_id == row.id).order_by(col(Shipment.position))
        ).all()
        return OrderRecord(
            id=row.id,
            customer_id=row.customer_id,
            status=row.status,
            address=dict(row.address),
            items=[
                Line(i.item_id, i.product_id, i.name, i.price_cents, dict(i.options)) for i in items
            ],
            payments=[
                Payment(p.transaction_type, p.amount_cents, p.payment_method_id)
                for p in self._history(row.id)
            ],
            fulfillments=[Fulfillment(list(s.tracking_ids), list(s.item_ids)) for s in shipments],
            total_cents=row.total_cents,
        )

    def _history(self, order_id: str) -> list[OrderPayment]:
        return list(
            self.session.exec(
                select(OrderPayment)
                .where(OrderPayment.order_id == order_id)
                .order_by(col(OrderPayment.position))
            ).all()
        )

    # -- the seven changes ------------------------------------------------------------------

    def change(self, name: str, arguments: dict[str, Any]) -> ChangeDone:
        run = getattr(self, f"_{name}", None)
        if run is None:
            raise SystemRefused(f"unknown change {name}")
        done: ChangeDone = run(**arguments)
        self.session.flush()
        return done

    def _order_row(self, order_id: str) -> Order:
        row = self.session.exec(
            select(Order).where(Order.id == normalize_order_id(order_id)).with_for_update()
        ).first()
        if row is None:
            raise SystemRefused("order not found")
        return row

    def _method_row(self, method_id: str) -> PaymentMethod:
        row = self.session.get(PaymentMethod, method_id, with_for_update=True)
        if row is None:
            raise SystemRefused("payment method not found")
        return row

    def _entry(self, order: Order, kind: str, cents: int, method_id: str) -> None:
        self.session.add(OrderPayment(order_id=order.id, position=len(self._history(order.id)),
                                      transaction_type=kind, amount_cents=cents,
                                      payment_method_id=method_id))  # fmt: skip
        self.session.flush()

    def _credit(self, method: PaymentMethod, cents: int) -> None:
        """Move a gift card's balance (refunds to other methods take days, outside the store)."""
        if method.source == "gift_card":
            method.balance_cents = (method.balance_cents or 0) + cents
            self.session.add(method)

    def _done(self, order: Order) -> ChangeDone:
        self.session.flush()
        record = self._record(order)
        return ChangeDone(order=record)

    def _cancel_pending_order(self, order_id: str, reason: str) -> ChangeDone:
        order = self._order_row(order_id)
        # What each method paid net of earlier refunds (a changed payment method, a refunded
        # price difference): refunding every payment entry would pay some of them back twice.
        net = net_by_method(
            (p.transaction_type, p.amount_cents, p.payment_method_id)
            for p in self._history(order.id)
        )
        for method_id, cents in net.items():
            if cents <= 0:
                continue
            self._entry(order, "refund", cents, method_id)
            method = self.session.get(PaymentMethod, method_id, with_for_update=True)
            if method is not None:
                self._credit(method, cents)
        order.status, order.cancel_reason = "cancelled", reason
        self.session.add(order)
        return self._done(order)

    def _modify_pending_order_address(self, order_id: str, **address: str) -> ChangeDone:
        order = self._order_row(order_id)
        order.address = dict(address)
        self.session.add(order)
        return self._done(order)

    def _modify_pending_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> ChangeDone:
        order = self._order_row(order_id)
        lines = list(self.session.exec(
            select(OrderItem).where(OrderItem.order_id == order.id)
            .order_by(col(OrderItem.position))
        ).all())  # fmt: skip
        difference = 0
        for old_id, new_id in zip(item_ids, new_item_ids, strict=True):
            line = next(li for li in lines if li.item_id == old_id)
            variant = self.session.get(ProductVariant, new_id)
            if variant is None:
                raise SystemRefused(f"item {new_id} not found")
            difference += variant.price_cents - line.price_cents
            line.item_id, line.price_cents, line.options = (
                variant.item_id, variant.price_cents, dict(variant.options)
            )  # fmt: skip
            self.session.add(line)
        method = self._method_row(payment_method_id)
        self._entry(order, "payment" if difference > 0 else "refund", abs(difference), method.id)
        self._credit(method, -difference)
        order.total_cents += difference
        order.status = "pending (item modified)"
        self.session.add(order)
        return self._done(order)

    def _modify_pending_order_payment(self, order_id: str, payment_method_id: str) -> ChangeDone:
        order = self._order_row(order_id)
        net = net_by_method(
            (p.transaction_type, p.amount_cents, p.payment_method_id)
            for p in self._history(order.id)
        )
        ((old_id, amount),) = ((m, c) for m, c in net.items() if c > 0)
        new = self._method_row(payment_method_id)
        self._entry(order, "payment", amount, new.id)
        self._entry(order, "refund", amount, old_id)
        self._credit(new, -amount)
        previous = self.session.get(PaymentMethod, old_id, with_for_update=True)
        if previous is not None:
            self._credit(previous, amount)
        return self._done(order)

    def _modify_user_address(self, user_id: str, **address: str) -> ChangeDone:
        customer = self.session.get(Customer, user_id, with_for_update=True)
        if customer is None:
            raise SystemRefused("user not found")
        customer.address = dict(address)
        customer.zip_code = address["zip"]  # what verification compares (never blank)
        self.session.add(customer)
        self.session.flush()
        return ChangeDone(customer=self.customer(customer.id))

    def _return_delivered_order_items(
        self, order_id: str, item_ids: list[str], payment_method_id: str
    ) -> ChangeDone:
        order = self._order_row(order_id)
        order.status = "return requested"
        order.return_items, order.return_payment_method_id = sorted(item_ids), payment_method_id
        self.session.add(order)
        return self._done(order)

    def _exchange_delivered_order_items(
        self, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
    ) -> ChangeDone:
        order = self._order_row(order_id)
        lines = {
            li.item_id: li.price_cents
            for li in self.session.exec(select(OrderItem).where(OrderItem.order_id == order.id))
        }
        prices = {
            v.item_id: v.price_cents
            for v in self.session.exec(
                select(ProductVariant).where(col(ProductVariant.item_id).in_(new_item_ids))
            )
        }
        order.status = "exchange requested"
        order.exchange_items, order.exchange_new_items = sorted(item_ids), sorted(new_item_ids)
        order.exchange_payment_method_id = payment_method_id
        order.exchange_price_difference_cents = sum(prices[i] for i in new_item_ids) - sum(
            lines[i] for i in item_ids
        )
        self.session.add(order)
        return self._done(order)


def _locked(statement: Any, lock: bool) -> Any:
    return statement.with_for_update() if lock else statement


def _method(row: PaymentMethod) -> Method:
    return Method(row.id, row.source, row.brand, row.last_four, row.balance_cents)
