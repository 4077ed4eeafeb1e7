"""Store-changing tools: the seven order changes of the store's policy, named and shaped as the
τ²-bench retail domain's. Each is declared once, here: its function is the rule itself (the
checks they share are in tools/order_rules.py), and `@tool(kind=Kind.CHANGE, summarize=...)`
makes it a change. A call the model makes is checked against every rule and held as a proposal
until the customer confirms (agent.engine.consent); only then does it run, every rule checked
again. The prompt's guidance about confirming and the desk's change form are derived from the
registry, so a new change is this declaration and one line in tools.TOOLS.

Each reads through the order system (ctx.orders) and checks every rule above it; only then,
and only when the customer has confirmed (not in the dry run of a proposal), does it ask the
system to carry the change out (`rules.carry_out`), and compares the answer with what the
customer confirmed (`rules.check_answer`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from agent.store.addresses import ADDRESS_FIELDS, plain_line
from agent.store.orders import format_cents
from kb.language import ENGLISH
from tools import order_rules as rules
from tools import order_system
from tools import proposal_words as words
from tools.registry import Kind, tool
from tools.tool_context import ToolContext

# Every argument of a change is checked before anything is proposed: ids are ids, and text is
# one plain line (no control or direction-changing characters: what the customer confirms,
# and what is stored, is exactly what they read).
_ID = r"^[A-Za-z0-9_-]+$"
OrderId = Annotated[
    str,
    Field(
        description="The order number, e.g. #W2611340",
        max_length=40,
        pattern=r"^\s*#?\s*[A-Za-z0-9]{1,32}\s*$",
    ),
]
ItemIds = Annotated[
    list[Annotated[str, Field(max_length=64, pattern=_ID)]],
    Field(
        description="Item ids of the order's items (an item ordered twice may appear twice)",
        min_length=1,
        max_length=50,
    ),
]
NewItemIds = Annotated[
    list[Annotated[str, Field(max_length=64, pattern=_ID)]],
    Field(
        description="For each item, in the same order, the item id of the new variant: the "
        "same product with other options, available",
        min_length=1,
        max_length=50,
    ),
]
PaymentMethodId = Annotated[
    str,
    Field(
        description="One of the customer's payment method ids (see payment_methods)",
        max_length=64,
        pattern=_ID,
    ),
]
Line = Annotated[str, Field(max_length=200), AfterValidator(plain_line)]
Zip = Annotated[str, Field(max_length=20), AfterValidator(plain_line)]


def options_line(options: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items())


def swaps(result: dict[str, Any], language: str = ENGLISH) -> str:
    return "; ".join(
        words.word("swap", language, name=c["name"], old=options_line(c["from"]),
                   new=options_line(c["to"]), price=c["new_price"])
        for c in result.get("changes", [])
    )  # fmt: skip


def difference_line(result: dict[str, Any], language: str = ENGLISH) -> str:
    signed = result["price_difference"]
    amount, method = signed[1:], words.method(result["payment_method"], language)
    if amount == "$0.00":
        return words.word("no_difference", language)
    if signed.startswith("+"):
        return words.word("you_pay", language, amount=amount, method=method)
    return words.word("we_refund", language, amount=amount, method=method)


def address_line(args: dict[str, Any]) -> str:
    parts = [args.get(k) for k in ("address1", "address2", "city", "state", "zip", "country")]
    return ", ".join(str(p) for p in parts if p)


def _address_change(before: dict[str, Any], after: dict[str, Any], language: str) -> str:
    """Every field that changes, old and new: a blanked line is said, never hidden."""

    def shown(value: Any) -> str:
        return f"“{value}”" if value else words.word("blank", language)

    changed = [
        f"{words.field_name(k, language)} {shown(before.get(k))} → {shown(after.get(k))}"
        for k in ADDRESS_FIELDS
        if (before.get(k) or "") != (after.get(k) or "")
    ]
    return words.word("changes", language, changes="; ".join(changed))


def _changes(
    lines: list[order_system.Line], variants: list[order_system.Variant]
) -> list[dict[str, Any]]:
    return [
        {
            "name": line.name,
            "from": dict(line.options),
            "to": dict(variant.options),
            "new_price": format_cents(variant.price_cents),
        }
        for line, variant in zip(lines, variants, strict=True)
    ]


def moved(method: order_system.Method, cents: int) -> str:
    """A method as the customer knows it, with what the change does to a gift card's balance
    ("gift card (balance $17.00, then $170.23)"): said at once, never left to be guessed."""
    if method.source != "gift_card" or not cents:
        return method.label()
    before = method.balance_cents or 0
    return f"gift card (balance {format_cents(before)}, then {format_cents(before + cents)})"


def _signed(cents: int) -> str:
    """+$12.00 the customer pays, -$12.00 refunded to them."""
    return ("-" if cents < 0 else "+") + format_cents(abs(cents))


# -- cancel ---------------------------------------------------------------------------------


# Each change's summary: (its arguments, the result of its dry run, the customer's language)
# -> what they confirm, its fixed words in their language (tools/proposal_words.py).


def _summarize_cancel(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    refunds = "; ".join(
        words.word("back_to", language, amount=r["amount"], method=words.method(r["to"], language))
        for r in result["refunds"]
    )
    reason = words.reason(args["reason"], language)
    return words.word("cancel", language, order_id=result["order_id"], reason=reason) + (
        words.word("refund", language, refunds=refunds) if refunds else ""
    )


def _summarize_order_address(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    address = address_line(result["shipping_address"])
    return words.word("ship_to", language, order_id=result["order_id"], address=address) + (
        _address_change(result["previous_address"], result["shipping_address"], language)
    )


def _summarize_items(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    return words.word("modify_items", language, order_id=result["order_id"],
                      swaps=swaps(result, language), difference=difference_line(result, language),
                      once=words.word("once", language))  # fmt: skip


def _summarize_payment(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    previous = result["refunded_to_method"] or result["refunded_to"]
    return words.word("payment", language, order_id=result["order_id"], amount=result["amount"],
                      method=words.method(result["payment_method"], language),
                      previous=words.method(previous, language))  # fmt: skip


def _summarize_user_address(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    address = address_line(result["default_address"])
    return words.word("default_address", language, address=address) + _address_change(
        result["previous_address"], result["default_address"], language
    )


def _summarize_return(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    return words.word("return", language, order_id=result["order_id"], items=returned(result),
                      refund=result["refund"],
                      method=words.method(result["refund_method"], language))  # fmt: skip


def _summarize_exchange(args: dict[str, Any], result: dict[str, Any], language: str) -> str:
    return words.word("exchange", language, order_id=result["order_id"],
                      swaps=swaps(result, language), difference=difference_line(result, language),
                      once=words.word("once", language))  # fmt: skip


@tool(
    label=lambda a: f"Cancelling order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
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
    order = rules.own_order(ctx, order_id)
    rules.check_status(order, rules.PENDING)
    if reason not in rules.CANCEL_REASONS:
        raise rules.ActionRefused(
            f"The reason must be {' or '.join(repr(r) for r in rules.CANCEL_REASONS)}."
        )
    customer = rules.own_customer(ctx)
    # What each method paid net of earlier refunds (a changed payment method, a refunded
    # price difference): refunding every payment entry would pay some of them back twice.
    refunds = []
    for method_id, cents in order.net_paid().items():
        if cents <= 0:
            continue
        method = customer.method(method_id)
        refunds.append(
            {
                "amount": format_cents(cents),
                "payment_method_id": method_id,
                "to": moved(method, cents) if method else method_id,
            }
        )
    done = rules.carry_out(ctx, "cancel_pending_order", {"order_id": order.id, "reason": reason})
    rules.check_answer(ctx, done, order, status="cancelled", net={})
    return rules.outcome(order, "cancelled", refunds=refunds)


# -- pending order: address, items, payment --------------------------------------------------


@tool(
    label=lambda a: f"Changing the address of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    summarize=_summarize_order_address,
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
    address = rules.valid_address(
        address1=address1, address2=address2, city=city, state=state, country=country, zip=zip
    )
    order = rules.own_order(ctx, order_id)
    rules.check_status(order, rules.PENDING, rules.ITEMS_MODIFIED)
    previous = dict(order.address)
    if rules.same_address(previous, address):
        raise rules.ActionRefused(f"Order {order.id} already ships to that address.")
    done = rules.carry_out(ctx, "modify_pending_order_address", {"order_id": order.id, **address})
    rules.check_answer(ctx, done, order, status=order.status, address=address)
    return rules.outcome(order, order.status, shipping_address=address,
                         previous_address=previous)  # fmt: skip


@tool(
    label=lambda a: f"Changing items of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    summarize=_summarize_items,
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
    order = rules.own_order(ctx, order_id)
    # Once per order: afterwards it is 'pending (item modified)'.
    rules.check_status(order, rules.PENDING)
    customer = rules.own_customer(ctx)
    lines, variants, method, difference = rules.swap(
        ctx, customer, order, item_ids, new_item_ids, payment_method_id
    )
    if difference < 0:
        rules.check_refundable(order, method, -difference)
    net = order.net_paid()
    net[method.id] = net.get(method.id, 0) + difference
    items = [li.item_id for li in order.items]
    for old, new in zip(item_ids, new_item_ids, strict=True):
        items[items.index(old)] = new
    done = rules.carry_out(ctx, "modify_pending_order_items", {
        "order_id": order.id, "item_ids": item_ids, "new_item_ids": new_item_ids,
        "payment_method_id": method.id,
    })  # fmt: skip
    rules.check_answer(ctx, done, order, status=rules.ITEMS_MODIFIED, net=net, items=items)
    return rules.outcome(
        order,
        rules.ITEMS_MODIFIED,
        changes=_changes(lines, variants),
        price_difference=_signed(difference),
        payment_method_id=method.id,
        payment_method=moved(method, -difference),
    )


@tool(
    label=lambda a: f"Changing the payment of order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    summarize=_summarize_payment,
)
def modify_pending_order_payment(
    ctx: ToolContext, order_id: OrderId, payment_method_id: PaymentMethodId
) -> dict[str, Any]:
    """Pay a pending order with another of the customer's payment methods. Only for an
    order paid with a single payment; a gift card must cover the whole amount."""
    order = rules.own_order(ctx, order_id)
    rules.check_status(order, rules.PENDING, rules.ITEMS_MODIFIED)
    holding = {m: cents for m, cents in order.net_paid().items() if cents > 0}
    if len(holding) != 1:
        raise rules.ActionRefused(
            f"Order {order.id} is paid with {len(holding)} payment methods; only "
            "an order paid with one method can change it."
        )
    ((old_id, amount),) = holding.items()
    if old_id == payment_method_id:
        raise rules.ActionRefused("That is already the order's payment method.")
    customer = rules.own_customer(ctx)
    new = rules.own_method(customer, payment_method_id)
    rules.check_covers(new, amount)
    previous = customer.method(old_id)
    done = rules.carry_out(ctx, "modify_pending_order_payment",
                           {"order_id": order.id, "payment_method_id": new.id})  # fmt: skip
    rules.check_answer(ctx, done, order, status=order.status, net={new.id: amount})
    return rules.outcome(
        order,
        order.status,
        amount=format_cents(amount),
        payment_method_id=new.id,
        payment_method=moved(new, -amount),
        refunded_to=old_id,
        refunded_to_method=moved(previous, amount) if previous else None,
    )


# -- the account's address -----------------------------------------------------------------


@tool(
    label="Changing your address",
    kind=Kind.CHANGE,
    summarize=_summarize_user_address,
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
    address = rules.valid_address(
        address1=address1, address2=address2, city=city, state=state, country=country, zip=zip
    )
    customer = rules.own_customer(ctx)
    previous = dict(customer.address)
    if rules.same_address(previous, address):
        raise rules.ActionRefused("That is already the account's address.")
    # The customer's id comes from the verified identity, never from the model.
    done = rules.carry_out(ctx, "modify_user_address", {"user_id": customer.id, **address})
    rules.check_answer(ctx, done, address=address)
    return {"customer_id": customer.id, "default_address": address, "previous_address": previous}


# -- delivered order: return, exchange ------------------------------------------------------


def returned(result: dict[str, Any]) -> str:
    return "; ".join(f"{i['name']} ({options_line(i['options'])})" for i in result["items"])


@tool(
    label=lambda a: f"Arranging a return for order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    summarize=_summarize_return,
)
def return_delivered_order_items(
    ctx: ToolContext, order_id: OrderId, item_ids: ItemIds, payment_method_id: PaymentMethodId
) -> dict[str, Any]:
    """Request the return of items of a delivered order (status 'delivered'). The refund goes
    to the order's original payment method or to one of the customer's gift cards."""
    order = rules.own_order(ctx, order_id)
    rules.check_status(order, "delivered")
    lines = rules.chosen_lines(order, item_ids)
    customer = rules.own_customer(ctx)
    method = rules.own_method(customer, payment_method_id)
    original = {p.method_id for p in order.payments if p.kind == "payment"}
    if method.id not in original and method.source != "gift_card":
        raise rules.ActionRefused(
            "A refund goes to the order's original payment method or to "
            "one of the customer's gift cards."
        )
    done = rules.carry_out(ctx, "return_delivered_order_items", {
        "order_id": order.id, "item_ids": item_ids, "payment_method_id": method.id,
    })  # fmt: skip
    rules.check_answer(ctx, done, order, status="return requested")
    return rules.outcome(
        order,
        "return requested",
        return_items=sorted(item_ids),
        refund_to=method.id,
        refund_method=method.label(),
        refund=format_cents(sum(li.price_cents for li in lines)),
        items=[{"name": li.name, "options": dict(li.options)} for li in lines],
    )


@tool(
    label=lambda a: f"Arranging an exchange for order {a.get('order_id', '')}".strip(),
    kind=Kind.CHANGE,
    summarize=_summarize_exchange,
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
    order = rules.own_order(ctx, order_id)
    rules.check_status(order, "delivered")  # once: afterwards the order is 'exchange requested'
    customer = rules.own_customer(ctx)
    lines, variants, method, difference = rules.swap(
        ctx, customer, order, item_ids, new_item_ids, payment_method_id
    )
    done = rules.carry_out(ctx, "exchange_delivered_order_items", {
        "order_id": order.id, "item_ids": item_ids, "new_item_ids": new_item_ids,
        "payment_method_id": method.id,
    })  # fmt: skip
    rules.check_answer(ctx, done, order, status="exchange requested")
    return rules.outcome(
        order,
        "exchange requested",
        changes=_changes(lines, variants),
        price_difference=_signed(difference),
        payment_method_id=method.id,
        payment_method=method.label(),
    )


ORDER_ACTIONS = (
    cancel_pending_order,
    modify_pending_order_address,
    modify_pending_order_items,
    modify_pending_order_payment,
    modify_user_address,
    return_delivered_order_items,
    exchange_delivered_order_items,
)
