"""The shop's data and the τ²-bench retail tools' semantics, with no I/O framework.

The database is one JSON file in exactly the shape of τ²-bench's retail `db.json`
(`{"products": {...}, "users": {...}, "orders": {...}}`, prices as floats in dollars). A server
owns its file: if it does not exist it is created as a copy of a seed file. Every change re-reads
the file under an exclusive lock (a `threading.Lock` for this process's threads and an `fcntl`
lock on `<db>.lock` for other processes), applies the change to that fresh copy and writes it back
atomically (a temporary file, then `os.replace`), so two servers on one file lose no write. A
refused change writes nothing. Reads use the last copy read, re-reading the file when it changed.

Tools follow `src/tau2/domains/retail/tools.py` of sierra-research/tau2-bench: the same names,
arguments, checks in the same order, the same refusal messages and the same changes to the
records. A refusal raises `ToolFailure`, whose `text` is what τ² shows the agent
("Error: Non-pending order cannot be cancelled"). Records are returned as the stored dicts, i.e.
exactly as in db.json (plus the fields a change adds: `cancel_reason`, `return_items`, ...).

Nobody is checked here: any caller may read or change any order. Guarding that is the client's job.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEFAULT_SEED = Path(__file__).resolve().parents[3] / "shared/data/retail/db.json"

READ_TOOLS = (
    "find_user_id_by_email",
    "find_user_id_by_name_zip",
    "get_user_details",
    "get_order_details",
    "get_product_details",
    "list_all_product_types",
)
WRITE_TOOLS = (
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
)
TOOLS = READ_TOOLS + WRITE_TOOLS

CANCEL_REASONS = ("no longer needed", "ordered by mistake")

Record = dict[str, Any]


class ToolFailure(Exception):
    """A refusal, with τ²'s own message. `status` is the HTTP status the REST face answers."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def text(self) -> str:
        """What τ²'s environment hands the agent for this refusal."""
        return f"Error: {self.message}"


def _not_found(what: str) -> ToolFailure:
    return ToolFailure(f"{what} not found", status=404)


def _conflict(message: str) -> ToolFailure:
    return ToolFailure(message, status=409)


def to_text(result: object) -> str:
    """A tool's answer as τ² renders it: a string as it is, anything else as JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(result)


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name or an email, as τ²'s lookups compare them."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _money(amount: float) -> float:
    return round(amount, 2)


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> Record:
    # The field order of db.json (and of τ²'s UserAddress).
    return {
        "address1": address1,
        "address2": address2,
        "city": city,
        "country": country,
        "state": state,
        "zip": zip,
    }


def _check_shape(data: object, source: Path) -> Record:
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), dict) for key in ("products", "users", "orders")
    ):
        raise ValueError(f"{source} is not a retail database ({{products, users, orders}})")
    return data


# --- the τ² semantics, on a plain dict database -------------------------------------------------


def _order(db: Record, order_id: str) -> Record:
    order = db["orders"].get(order_id)
    if order is None:
        raise _not_found("Order")
    return order


def _user(db: Record, user_id: str) -> Record:
    user = db["users"].get(user_id)
    if user is None:
        raise _not_found("User")
    return user


def _product(db: Record, product_id: str) -> Record:
    product = db["products"].get(product_id)
    if product is None:
        raise _not_found("Product")
    return product


def _variant(db: Record, product_id: str, variant_id: str) -> Record:
    product = _product(db, product_id)
    variant = product["variants"].get(variant_id)
    if variant is None:
        raise ToolFailure("Variant not found")
    return variant


def _payment_method(db: Record, user_id: str, payment_method_id: str) -> Record:
    user = _user(db, user_id)
    method = user["payment_methods"].get(payment_method_id)
    if method is None:
        raise ToolFailure("Payment method not found")
    return method


def _is_gift_card(method: Record) -> bool:
    return method.get("source") == "gift_card"


def _first_item(order: Record, item_id: str) -> Record:
    item = next((item for item in order["items"] if item["item_id"] == item_id), None)
    if item is None:
        raise ToolFailure(f"Item {item_id} not found")
    return item


def find_user_id_by_email(db: Record, email: str) -> str:
    wanted = _fold(email)
    for user_id, user in db["users"].items():
        if _fold(user["email"]) == wanted:
            return user_id
    raise _not_found("User")


def find_user_id_by_name_zip(db: Record, first_name: str, last_name: str, zip: str) -> str:
    first, last = _fold(first_name), _fold(last_name)
    for user_id, user in db["users"].items():
        if (
            _fold(user["name"]["first_name"]) == first
            and _fold(user["name"]["last_name"]) == last
            and user["address"]["zip"] == zip
        ):
            return user_id
    raise _not_found("User")


def list_all_product_types(db: Record) -> str:
    names = {product["name"]: product["product_id"] for product in db["products"].values()}
    return json.dumps(names, sort_keys=True)


def cancel_pending_order(db: Record, order_id: str, reason: str) -> Record:
    order = _order(db, order_id)
    if order["status"] != "pending":
        raise _conflict("Non-pending order cannot be cancelled")
    if reason not in CANCEL_REASONS:
        raise ToolFailure("Invalid reason")
    refunds = []
    for payment in order["payment_history"]:
        method = _payment_method(db, order["user_id"], payment["payment_method_id"])
        refunds.append(
            {
                "transaction_type": "refund",
                "amount": payment["amount"],
                "payment_method_id": payment["payment_method_id"],
            }
        )
        if _is_gift_card(method):  # a gift card is refunded at once; others in 5-7 days
            method["balance"] = _money(method["balance"] + payment["amount"])
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return order


def modify_pending_order_address(
    db: Record,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Record:
    order = _order(db, order_id)
    if "pending" not in order["status"]:  # 'pending (item modified)' too, as in τ²
        raise _conflict("Non-pending order cannot be modified")
    order["address"] = _address(address1, address2, city, state, country, zip)
    return order


def modify_pending_order_items(
    db: Record, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Record:
    order = _order(db, order_id)
    if order["status"] != "pending":
        raise _conflict("Non-pending order cannot be modified")
    all_item_ids = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > all_item_ids.count(item_id):
            raise ToolFailure(f"{item_id} not found")
    if len(item_ids) != len(new_item_ids):
        raise ToolFailure("The number of items to be exchanged should match")
    difference = 0.0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        if item_id == new_item_id:
            raise ToolFailure("The new item id should be different from the old item id")
        item = _first_item(order, item_id)
        variant = _variant(db, item["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolFailure(f"New item {new_item_id} not found or available")
        difference += variant["price"] - item["price"]
    difference = _money(difference)
    method = _payment_method(db, order["user_id"], payment_method_id)
    if _is_gift_card(method) and method["balance"] < difference:
        raise _conflict("Insufficient gift card balance to pay for the new item")
    order["payment_history"].append(
        {
            "transaction_type": "payment" if difference > 0 else "refund",
            "amount": abs(difference),
            "payment_method_id": payment_method_id,
        }
    )
    if _is_gift_card(method):
        method["balance"] = _money(method["balance"] - difference)
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = _first_item(order, item_id)
        variant = _variant(db, item["product_id"], new_item_id)
        item["item_id"] = new_item_id
        item["price"] = variant["price"]
        item["options"] = copy.deepcopy(variant["options"])
    order["status"] = "pending (item modified)"
    return order


def modify_pending_order_payment(db: Record, order_id: str, payment_method_id: str) -> Record:
    order = _order(db, order_id)
    if "pending" not in order["status"]:
        raise _conflict("Non-pending order cannot be modified")
    method = _payment_method(db, order["user_id"], payment_method_id)
    history = order["payment_history"]
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise _conflict("There should be exactly one payment for a pending order")
    old_method_id = history[0]["payment_method_id"]
    if old_method_id == payment_method_id:
        raise ToolFailure("The new payment method should be different from the current one")
    amount = history[0]["amount"]
    if _is_gift_card(method) and method["balance"] < amount:
        raise _conflict("Insufficient gift card balance to pay for the order")
    history.extend(
        [
            {
                "transaction_type": "payment",
                "amount": amount,
                "payment_method_id": payment_method_id,
            },
            {"transaction_type": "refund", "amount": amount, "payment_method_id": old_method_id},
        ]
    )
    if _is_gift_card(method):
        method["balance"] = _money(method["balance"] - amount)
    old_method = _payment_method(db, order["user_id"], old_method_id)
    if _is_gift_card(old_method):
        old_method["balance"] = _money(old_method["balance"] + amount)
    return order


def modify_user_address(
    db: Record,
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Record:
    user = _user(db, user_id)
    user["address"] = _address(address1, address2, city, state, country, zip)
    return user


def return_delivered_order_items(
    db: Record, order_id: str, item_ids: list[str], payment_method_id: str
) -> Record:
    order = _order(db, order_id)
    if order["status"] != "delivered":
        raise _conflict("Non-delivered order cannot be returned")
    user = _user(db, order["user_id"])
    method = _payment_method(db, user["user_id"], payment_method_id)
    if (
        not _is_gift_card(method)
        and payment_method_id != order["payment_history"][0]["payment_method_id"]
    ):
        raise ToolFailure("Payment method should be the original payment method")
    all_item_ids = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > all_item_ids.count(item_id):
            raise ToolFailure("Some item not found")
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return order


def exchange_delivered_order_items(
    db: Record, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Record:
    order = _order(db, order_id)
    if order["status"] != "delivered":
        raise _conflict("Non-delivered order cannot be exchanged")
    all_item_ids = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > all_item_ids.count(item_id):
            raise ToolFailure(f"Number of {item_id} not found.")
    if len(item_ids) != len(new_item_ids):
        raise ToolFailure("The number of items to be exchanged should match.")
    difference = 0.0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = _first_item(order, item_id)
        variant = _variant(db, item["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolFailure(f"New item {new_item_id} not found or available")
        difference += variant["price"] - item["price"]
    difference = _money(difference)
    method = _payment_method(db, order["user_id"], payment_method_id)
    if _is_gift_card(method) and method["balance"] < difference:
        raise _conflict("Insufficient gift card balance to pay for the price difference")
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = difference
    return order


_READS: dict[str, Callable[..., Any]] = {
    "find_user_id_by_email": find_user_id_by_email,
    "find_user_id_by_name_zip": find_user_id_by_name_zip,
    "get_user_details": lambda db, user_id: _user(db, user_id),
    "get_order_details": lambda db, order_id: _order(db, order_id),
    "get_product_details": lambda db, product_id: _product(db, product_id),
    "list_all_product_types": list_all_product_types,
}
_WRITES: dict[str, Callable[..., Record]] = {
    "cancel_pending_order": cancel_pending_order,
    "modify_pending_order_address": modify_pending_order_address,
    "modify_pending_order_items": modify_pending_order_items,
    "modify_pending_order_payment": modify_pending_order_payment,
    "modify_user_address": modify_user_address,
    "return_delivered_order_items": return_delivered_order_items,
    "exchange_delivered_order_items": exchange_delivered_order_items,
}
assert tuple(_READS) == READ_TOOLS and tuple(_WRITES) == WRITE_TOOLS


# --- beyond τ²'s thirteen: what a shop's server offers besides (supportbot's `extra_tools`) ----


def calculate(db: Record, expression: str) -> str:
    """τ²'s calculator: + - * / and parentheses on numbers, rounded to 2 decimals."""
    if not expression or any(c not in "0123456789+-*/(). " for c in expression):
        raise ToolFailure("Invalid characters in expression")
    try:
        value = eval(compile(expression, "<calc>", "eval"), {"__builtins__": {}}, {})
    except Exception as exc:
        raise ToolFailure(f"Invalid expression: {exc}") from None
    return str(round(float(value), 2))


def request_callback(db: Record, user_id: str, phone: str) -> Record:
    """Not in τ²: ask the shop's team to call the user back at `phone`."""
    user = _user(db, user_id)
    if not phone.strip() or len(phone) > 30:
        raise ToolFailure("Invalid phone number")
    user.setdefault("callback_requests", []).append({"phone": phone.strip()})
    return user


EXTRA_READS: dict[str, Callable[..., Any]] = {"calculate": calculate}
EXTRA_WRITES: dict[str, Callable[..., Record]] = {"request_callback": request_callback}


# --- the file ------------------------------------------------------------------------------------


class Store:
    """The shop database in one JSON file, shared safely by threads and by processes."""

    def __init__(self, path: str | os.PathLike[str], seed: str | os.PathLike[str] | None = None):
        self.path = Path(path).resolve()
        self.seed = Path(seed) if seed is not None else DEFAULT_SEED
        self._lock = threading.Lock()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._data: Record | None = None
        self._key: tuple[int, int, int] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            if not self.path.exists():
                if not self.seed.is_file():
                    raise FileNotFoundError(f"seed database {self.seed} does not exist")
                self._replace_with(lambda tmp: shutil.copyfile(self.seed, tmp))
        self._snapshot()  # fails now, not at the first call, if the file is not a database

    def call(self, tool: str, **arguments: Any) -> Any:
        """Run one tool by its τ² name. Raises `ToolFailure` for a refusal."""
        if tool in _READS:
            return _READS[tool](self._snapshot(), **arguments)
        if tool in EXTRA_READS:
            return EXTRA_READS[tool](self._snapshot(), **arguments)
        if tool in _WRITES or tool in EXTRA_WRITES:
            change = _WRITES.get(tool) or EXTRA_WRITES[tool]
            return self._change(lambda db: change(db, **arguments))
        raise KeyError(f"unknown tool {tool!r}")

    def snapshot(self) -> Record:
        """The whole database as last read (do not mutate it)."""
        return self._snapshot()

    # A change works on a copy just read from the file and replaces the file with it; the copy
    # readers hold is never mutated, so records handed out stay as they were.
    def _change(self, apply: Callable[[Record], Record]) -> Record:
        with self._exclusive():
            data, key = self._read()
            result = apply(data)  # a ToolFailure leaves the file (and the cache) untouched
            text = json.dumps(data, indent=4)

            def write(tmp: str) -> None:
                with open(tmp, "w", encoding="utf-8") as out:
                    out.write(text)

            key = self._replace_with(write)
            self._data, self._key = data, key
            return result

    def _snapshot(self) -> Record:
        with self._lock:
            stat = os.stat(self.path)
            if self._data is None or self._key != (stat.st_ino, stat.st_mtime_ns, stat.st_size):
                self._data, self._key = self._read()
            return self._data

    def _read(self) -> tuple[Record, tuple[int, int, int]]:
        with open(self.path, encoding="utf-8") as src:
            stat = os.fstat(src.fileno())
            data = _check_shape(json.load(src), self.path)
        return data, (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _replace_with(self, fill: Callable[[str], object]) -> tuple[int, int, int]:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        os.close(fd)
        try:
            fill(tmp)
            with open(tmp, "rb+") as written:
                os.fsync(written.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        stat = os.stat(self.path)
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        # The file lock is on a separate file: the database itself is replaced by every write.
        with self._lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
