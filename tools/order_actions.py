"""Store-changing tools: the order actions of the store's policy (agent.store.actions), named
and shaped as the τ²-bench retail domain's. Each is declared `kind=Kind.CHANGE`: a call the
model makes is checked against every rule and held as a proposal until the customer confirms
(agent.engine.consent); only then does it run, with every rule checked again."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from agent.store import actions
from agent.store.actions import ActionRefused
from agent.store.addresses import ADDRESS_FIELDS, plain_line
from tools.intent import Intent
from tools.registry import Kind, tool
from tools.tool_context import ToolContext, ToolError

# Every argument of a change is checked before anything is proposed: ids are ids, and text is
# one plain line (no control or direction-changing characters: what the customer confirms,
# and what is stored, is exactly what they read).
_ID = r"^[A-Za-z0-9_-]+$"
OrderId = Annotated[
    str,
    Field(description="The order number, e.g. #W2611340", max_length=40,
          pattern=r"^\s*#?\s*[A-Za-z0-9]{1,32}\s*$"),
]  # fmt: skip
ItemIds = Annotated[
    list[Annotated[str, Field(max_length=64, pattern=_ID)]],
    Field(description="Item ids of the order's items (an item ordered twice may appear twice)",
          min_length=1, max_length=50),
]  # fmt: skip
NewItemIds = Annotated[
    list[Annotated[str, Field(max_length=64, pattern=_ID)]],
    Field(description="For each item, in the same order, the item id of the new variant: the "
          "same product with other options, available", min_length=1, max_length=50),
]  # fmt: skip
PaymentMethodId = Annotated[
    str,
    Field(description="One of the customer's payment method ids (see payment_methods)",
          max_length=64, pattern=_ID),
]  # fmt: skip
Line = Annotated[str, Field(max_length=200), AfterValidator(plain_line)]
Zip = Annotated[str, Field(max_length=20), AfterValidator(plain_line)]

CONFIRMING = (
    "Order changes (cancel_pending_order, modify_pending_order_*, modify_user_address, "
    "return_delivered_order_items, exchange_delivered_order_items) are carried out only when "
    "the customer confirms: call the tool once you have every detail (all items to change, "
    "the payment method, the reason); the customer is then shown the change to confirm and "
    "you receive the outcome as the tool's result. One change at a time."
)


def _run(name: str, ctx: ToolContext, **arguments: Any) -> dict[str, Any]:
    try:
        return actions.ACTIONS[name](ctx.session, ctx.require_customer(), **arguments)
    except ActionRefused as exc:
        raise ToolError(str(exc)) from exc


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items())


def _swaps(result: dict[str, Any]) -> str:
    return "; ".join(
        f"{c['name']} ({_options(c['from'])}) for {_options(c['to'])} at {c['new_price']}"
        for c in result.get("changes", [])
    )


def _difference(result: dict[str, Any]) -> str:
    signed = result["price_difference"]
    amount, method = signed[1:], result["payment_method"]
    if amount == "$0.00":
        return "No price difference."
    if signed.startswith("+"):
        return f"You pay the difference of {amount} with your {method}."
    return f"The difference of {amount} is refunded to your {method}."


def _address(args: dict[str, Any]) -> str:
    parts = [args.get(k) for k in ("address1", "address2", "city", "state", "zip", "country")]
    return ", ".join(str(p) for p in parts if p)


_FIELD_NAMES = {"address1": "street", "address2": "second line", "city": "city",
                "state": "state", "country": "country", "zip": "zip code"}  # fmt: skip


def _address_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Every field that changes, old and new: a blanked line is said, never hidden."""

    def shown(value: Any) -> str:
        return f"“{value}”" if value else "(blank)"

    changed = [
        f"{_FIELD_NAMES[k]} {shown(before.get(k))} → {shown(after.get(k))}"
        for k in ADDRESS_FIELDS
        if (before.get(k) or "") != (after.get(k) or "")
    ]
    return "Changes: " + "; ".join(changed) + "."


# -- cancel ---------------------------------------------------------------------------------

_REASONS = {
    "ordered by mistake": re.compile(r"\b(by mistake|mistaken|accident|wrong order)", re.I),
    "no longer needed": re.compile(r"\b(no longer need|don'?t need|do not need|not needed)", re.I),
}
_CANCEL_RE = re.compile(r"\bcancel", re.IGNORECASE)


def _plan_cancel(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Offline: "cancel order #W… because I ordered it by mistake" (the order and the reason
    both said)."""
    if not _CANCEL_RE.search(intent.text) or len(intent.order_ids) != 1:
        return []
    reason = next((r for r, pattern in _REASONS.items() if pattern.search(intent.text)), None)
    return [{"order_id": intent.order_ids[0], "reason": reason}] if reason else []


def _summarize_cancel(args: dict[str, Any], result: dict[str, Any]) -> str:
    refunds = "; ".join(f"{r['amount']} back to your {r['to']}" for r in result["refunds"])
    return (f"Cancel order {result['order_id']} (reason: {args['reason']})."
            + (f" Refund: {refunds}." if refunds else ""))  # fmt: skip


def _render_cancel(data: Any) -> str:
    refunds = "; ".join(f"{r['amount']} to your {r['to']}" for r in data.get("refunds", []))
    return (f"Done: order {data['order_id']} is cancelled."
            + (f" Refund: {refunds} (a gift card at once, other methods in 5-7 business days)."
               if refunds else ""))  # fmt: skip


@tool(
    label=lambda a: f"Cancelling order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    guidance=CONFIRMING,
    plan=_plan_cancel,
    render=_render_cancel,
    summarize=_summarize_cancel,
)
def cancel_pending_order(
    ctx: ToolContext,
    order_id: OrderId,
    reason: Annotated[
        Literal["no longer needed", "ordered by mistake"],
        Field(description="The customer's reason, exactly one of these"),
    ],
) -> dict[str, Any]:
    """Cancel one of the verified customer's pending orders. Every payment is refunded to the
    method it came from (a gift card at once, others in 5-7 business days). Only for orders
    with status 'pending'."""
    return _run("cancel_pending_order", ctx, order_id=order_id, reason=reason)


# -- pending order: address, items, payment --------------------------------------------------


@tool(
    label=lambda a: f"Changing the address of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    render=lambda d: f"Done: order {d['order_id']} now ships to {_address(d['shipping_address'])}.",
    summarize=lambda a, r: (
        f"Ship order {r['order_id']} to {_address(r['shipping_address'])}. "
        + _address_change(r["previous_address"], r["shipping_address"])
    ),
)
def modify_pending_order_address(
    ctx: ToolContext,
    order_id: OrderId,
    address1: Line,
    address2: Line,
    city: Line,
    state: Line,
    country: Line,
    zip: Zip,
) -> dict[str, Any]:
    """Change the shipping address of one of the verified customer's pending orders
    (status 'pending' or 'pending (item modified)'). address2 may be empty."""
    return _run("modify_pending_order_address", ctx, order_id=order_id, address1=address1,
                address2=address2, city=city, state=state, country=country, zip=zip)  # fmt: skip


@tool(
    label=lambda a: f"Changing items of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    render=lambda d: f"Done: order {d['order_id']} is updated ({_swaps(d)}). " + _difference(d),
    summarize=lambda a, r: (
        f"Change order {r['order_id']}: {_swaps(r)}. "
        f"{_difference(r)} This can be done only once for the order."
    ),
)
def modify_pending_order_items(
    ctx: ToolContext,
    order_id: OrderId,
    item_ids: ItemIds,
    new_item_ids: NewItemIds,
    payment_method_id: PaymentMethodId,
) -> dict[str, Any]:
    """Swap items of a pending order (status 'pending') for other options of the same
    product. Possible once per order: collect every item to change first. The price
    difference is paid with, or refunded to, payment_method_id (a gift card must cover it)."""
    return _run("modify_pending_order_items", ctx, order_id=order_id, item_ids=item_ids,
                new_item_ids=new_item_ids, payment_method_id=payment_method_id)  # fmt: skip


@tool(
    label=lambda a: f"Changing the payment of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    render=lambda d: (
        f"Done: order {d['order_id']} is now paid with your {d['payment_method']} ({d['amount']})."
    ),
    summarize=lambda a, r: (
        f"Pay order {r['order_id']} ({r['amount']}) with your "
        f"{r['payment_method']} instead; the {r['amount']} already paid goes back to your "
        f"{r['refunded_to_method'] or r['refunded_to']}."
    ),
)
def modify_pending_order_payment(
    ctx: ToolContext, order_id: OrderId, payment_method_id: PaymentMethodId
) -> dict[str, Any]:
    """Pay a pending order with another of the customer's payment methods. Only for an
    order paid with a single payment; a gift card must cover the whole amount."""
    return _run("modify_pending_order_payment", ctx, order_id=order_id,
                payment_method_id=payment_method_id)  # fmt: skip


# -- the account's address -----------------------------------------------------------------


@tool(
    label="Changing your address",
    kind=Kind.CHANGE,
    render=lambda d: f"Done: your default address is now {_address(d['default_address'])}.",
    summarize=lambda a, r: (
        f"Make {_address(r['default_address'])} your account's default address (orders already "
        "placed keep theirs). " + _address_change(r["previous_address"], r["default_address"])
    ),
)
def modify_user_address(
    ctx: ToolContext,
    address1: Line,
    address2: Line,
    city: Line,
    state: Line,
    country: Line,
    zip: Zip,
) -> dict[str, Any]:
    """Change the verified customer's default address. Orders already placed keep theirs."""
    return _run("modify_user_address", ctx, address1=address1, address2=address2, city=city,
                state=state, country=country, zip=zip)  # fmt: skip


# -- delivered order: return, exchange ------------------------------------------------------


def _returned(result: dict[str, Any]) -> str:
    return "; ".join(f"{i['name']} ({_options(i['options'])})" for i in result["items"])


@tool(
    label=lambda a: f"Arranging a return for order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    render=lambda d: (
        f"Done: the return for order {d['order_id']} is requested ({_returned(d)}). "
        f"{d['refund']} will be refunded to your {d['refund_method']}; you'll get an email on how "
        "to send the items back."
    ),
    summarize=lambda a, r: (
        f"Return from order {r['order_id']}: {_returned(r)}. Refund of "
        f"{r['refund']} to your {r['refund_method']}."
    ),
)
def return_delivered_order_items(
    ctx: ToolContext, order_id: OrderId, item_ids: ItemIds, payment_method_id: PaymentMethodId
) -> dict[str, Any]:
    """Request the return of items of a delivered order (status 'delivered'). The refund goes
    to the order's original payment method or to one of the customer's gift cards."""
    return _run("return_delivered_order_items", ctx, order_id=order_id, item_ids=item_ids,
                payment_method_id=payment_method_id)  # fmt: skip


@tool(
    label=lambda a: f"Arranging an exchange for order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    render=lambda d: (
        f"Done: the exchange for order {d['order_id']} is requested ({_swaps(d)}). "
        + _difference(d)
        + " You'll get an email on how to send the items back."
    ),
    summarize=lambda a, r: (
        f"Exchange from order {r['order_id']}: {_swaps(r)}. "
        f"{_difference(r)} This can be done only once for the order."
    ),
)
def exchange_delivered_order_items(
    ctx: ToolContext,
    order_id: OrderId,
    item_ids: ItemIds,
    new_item_ids: NewItemIds,
    payment_method_id: PaymentMethodId,
) -> dict[str, Any]:
    """Exchange items of a delivered order (status 'delivered') for other options of the same
    product. Possible once per order: collect every item first. The price difference is paid
    with, or refunded to, payment_method_id (a gift card must cover it)."""
    return _run("exchange_delivered_order_items", ctx, order_id=order_id, item_ids=item_ids,
                new_item_ids=new_item_ids, payment_method_id=payment_method_id)  # fmt: skip


ORDER_ACTIONS = (
    cancel_pending_order,
    modify_pending_order_address,
    modify_pending_order_items,
    modify_pending_order_payment,
    modify_user_address,
    return_delivered_order_items,
    exchange_delivered_order_items,
)
