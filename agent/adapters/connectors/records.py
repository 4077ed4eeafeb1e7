"""A shop system's answers, read into the port's records (tools/order_system.py) as the
connector file's `fields` say. Anything missing, of the wrong type or unreadable is a
BadAnswer naming the field: the model gets a clear error and nothing is written."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from agent.adapters.connectors.spec import ConnectorSpec
from tools.order_system import (
    BadAnswer,
    CustomerRecord,
    Fulfillment,
    Line,
    Method,
    OrderRecord,
    Payment,
    ProductRecord,
    Variant,
)

_MISSING = object()


def parse(text: str, structured: Any = None) -> Any:
    """An answer as data: its structured content, else its text as JSON, else the text."""
    if structured is not None:
        return structured
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def at(data: Any, path: str | None) -> Any:
    """The value at a dotted path ("data.order", "name.first_name"); the whole for None."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


class Reader:
    def __init__(self, spec: ConnectorSpec) -> None:
        self.spec = spec

    def _get(self, data: Any, record: str, name: str, kind: type | tuple[type, ...],
             default: Any = _MISSING) -> Any:  # fmt: skip
        value = at(data, self.spec.field(record, name))
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise BadAnswer(f"{record}: no {self.spec.field(record, name)!r}")
            return default
        if isinstance(value, bool) and kind is not bool and bool not in _tuple(kind):
            raise BadAnswer(f"{record}: {self.spec.field(record, name)!r} is not {_named(kind)}")
        if not isinstance(value, kind):
            raise BadAnswer(f"{record}: {self.spec.field(record, name)!r} is not {_named(kind)}")
        return value

    def _text(self, data: Any, record: str, name: str, default: Any = _MISSING) -> Any:
        """A text field (a number is read as its text); `default` when absent."""
        value = self._get(data, record, name, (str, int), default)
        return str(value) if isinstance(value, str | int) else value

    def cents(self, data: Any, record: str, name: str) -> int:
        value = self._get(data, record, name, (int, float, str))
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise BadAnswer(
                f"{record}: {self.spec.field(record, name)!r} is not an amount"
            ) from None
        if not amount.is_finite():
            raise BadAnswer(f"{record}: {self.spec.field(record, name)!r} is not an amount")
        cents = amount * 100 if self.spec.money == "dollars" else amount
        return int(cents.quantize(Decimal(1)))

    def identifier(self, data: Any) -> str | None:
        """A found customer's id: plain text, or a JSON string; None when nothing was found."""
        if isinstance(data, dict | list):
            raise BadAnswer("expected an id, got a record")
        text = str(data).strip() if data is not None else ""
        if not text or len(text) > 200 or any(c.isspace() for c in text):
            return None if not text else _bad("expected an id")
        return text

    def customer(self, data: Any) -> CustomerRecord:
        _record(data, "customer")
        methods = self._get(data, "customer", "payment_methods", (dict, list), [])
        entries = methods.values() if isinstance(methods, dict) else methods
        return CustomerRecord(
            id=self._text(data, "customer", "id"),
            first_name=self._text(data, "customer", "first_name", ""),
            last_name=self._text(data, "customer", "last_name", ""),
            email=self._text(data, "customer", "email"),
            address=_address(self._get(data, "customer", "address", dict, {})),
            methods=[self._method(m) for m in entries],
            order_ids=[str(o) for o in self._get(data, "customer", "order_ids", list, [])],
        )

    def _method(self, data: Any) -> Method:
        _record(data, "payment method")
        balance = at(data, self.spec.field("method", "balance"))
        return Method(
            id=self._text(data, "method", "id"),
            source=self._text(data, "method", "source"),
            brand=self._text(data, "method", "brand", None),
            last_four=self._text(data, "method", "last_four", None),
            balance_cents=None if balance is _MISSING or balance is None
            else self.cents(data, "method", "balance"),
        )  # fmt: skip

    def order(self, data: Any) -> OrderRecord:
        _record(data, "order")
        items = self._get(data, "order", "items", list)
        payments = self._get(data, "order", "payments", list, [])
        fulfillments = self._get(data, "order", "fulfillments", list, [])
        return OrderRecord(
            id=self._text(data, "order", "id"),
            customer_id=self._text(data, "order", "customer_id"),
            status=self._text(data, "order", "status"),
            address=_address(self._get(data, "order", "address", dict, {})),
            items=[self._line(i) for i in items],
            payments=[self._payment(p) for p in payments],
            fulfillments=[self._fulfillment(f) for f in fulfillments],
        )

    def _line(self, data: Any) -> Line:
        _record(data, "order item")
        return Line(
            item_id=self._text(data, "line", "item_id"),
            product_id=self._text(data, "line", "product_id", ""),
            name=self._text(data, "line", "name", ""),
            price_cents=self.cents(data, "line", "price"),
            options=dict(self._get(data, "line", "options", dict, {})),
        )

    def _payment(self, data: Any) -> Payment:
        _record(data, "payment")
        kind = self._text(data, "payment", "kind")
        if kind not in ("payment", "refund"):
            raise BadAnswer(f"payment: kind {kind!r} is neither payment nor refund")
        return Payment(kind, self.cents(data, "payment", "amount"),
                       self._text(data, "payment", "method_id"))  # fmt: skip

    def _fulfillment(self, data: Any) -> Fulfillment:
        _record(data, "fulfillment")
        return Fulfillment(
            [str(t) for t in self._get(data, "fulfillment", "tracking_ids", list, [])],
            [str(i) for i in self._get(data, "fulfillment", "item_ids", list, [])],
        )

    def product(self, data: Any) -> ProductRecord:
        _record(data, "product")
        variants = self._get(data, "product", "variants", (dict, list))
        entries = variants.values() if isinstance(variants, dict) else variants
        return ProductRecord(
            id=self._text(data, "product", "id"),
            name=self._text(data, "product", "name"),
            variants=[self._variant(v) for v in entries],
        )

    def _variant(self, data: Any) -> Variant:
        _record(data, "variant")
        return Variant(
            item_id=self._text(data, "variant", "item_id"),
            options=dict(self._get(data, "variant", "options", dict, {})),
            available=bool(self._get(data, "variant", "available", bool, True)),
            price_cents=self.cents(data, "variant", "price"),
        )

    def products(self, data: Any) -> dict[str, str]:
        """{name: id}, or a list of {name, id} records."""
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int)}
        if isinstance(data, list):
            return {
                self._text(p, "product", "name"): self._text(p, "product", "id")
                for p in data
                if _record(p, "product")
            }
        raise BadAnswer("products: expected {name: id} or a list of products")


def _record(data: Any, what: str) -> bool:
    if not isinstance(data, dict):
        raise BadAnswer(f"{what}: expected a JSON object, got {type(data).__name__}")
    return True


def _address(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _named(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kind))


def _bad(detail: str) -> Any:
    raise BadAnswer(detail)
