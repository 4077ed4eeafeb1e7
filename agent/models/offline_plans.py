"""How the offline model uses each tool, looked up by the tool's name: the calls it plans for
a customer's message, and its words for a result.

The tools themselves (tools/) know nothing of the offline model; what it does with them is
here, beside it (agent/models/offline.py). A tool with no entry is never planned, and its
result is shown as it came.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.models.intent import Intent
from tools import order_actions as changes

# The calls a tool plans for a message (given what the tools before it already planned), and
# its words for a result.
Plan = Callable[[Intent, list[tuple[str, dict[str, Any]]]], list[dict[str, Any]]]
Render = Callable[[Any], str]


@dataclass(frozen=True)
class Offline:
    plan: Plan | None = None
    render: Render | None = None
    exclusive: bool = False  # a planned call of this tool is the whole plan


# -- verify_customer ------------------------------------------------------------------------


def _plan_verify(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    if not (intent.email and (intent.order_ids or intent.zip_code)):
        return []
    facts: dict[str, Any] = {"email": intent.email}
    if intent.order_ids:
        facts["order_id"] = intent.order_ids[0]
    else:
        facts["zip_code"] = intent.zip_code
    return [facts]


def _render_verify(data: Any) -> str:
    customer = data.get("customer") if isinstance(data, dict) else None
    return f"Thanks, {customer['name']}: you're verified." if customer else ""


# -- order look-ups --------------------------------------------------------------------------


def _plan_status(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    if intent.wants_change:  # the change's own tool looks the order up
        return []
    return [{"order_id": order_id} for order_id in intent.order_ids]


def _render_order(data: Any) -> str:
    lines = [f"Order {data['order_id']} is **{data['status']}** (total {data['total']})."]
    lines.append("Items:")
    for item in data["items"]:
        options = ", ".join(f"{k}: {v}" for k, v in item.get("options", {}).items())
        lines.append(
            f"- {item['name']} ({options}) {item['price']}"
            if options
            else f"- {item['name']} {item['price']}"
        )
    tracking = [t for s in data.get("shipments", []) for t in s.get("tracking_ids", [])]
    if data["status"] == "cancelled":
        lines.append("It was cancelled, so nothing will ship.")
    elif tracking:
        lines.append(f"Tracking number(s): {', '.join(tracking)}.")
    elif data["status"].startswith(("pending", "processed")):
        lines.append("It has not shipped yet, so there is no tracking number.")
    else:
        lines.append("There is no tracking number on file for it.")
    address = data.get("shipping_address") or {}
    if address:
        where = ", ".join(
            str(address[k])
            for k in ("address1", "address2", "city", "state", "zip")
            if address.get(k)
        )
        lines.append(f"Shipping to: {where}.")
    return "\n".join(lines)


def _plan_list(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    wanted = intent.about_orders and not intent.how_to and not intent.order_ids
    return [{"limit": 5}] if wanted and not planned else []


def _render_orders(data: Any) -> str:
    if not data:
        return "I found no orders on your account."
    lines = ["Your most recent orders:"]
    lines += [
        f"- {o['order_id']}: {o['status']}, {o['item_count']} item(s), {o['total']}" for o in data
    ]
    return "\n".join(lines)


def _render_methods(data: Any) -> str:
    if not data:
        return "I found no payment methods on your account."
    lines = ["Your payment methods:"]
    for m in data:
        if m["kind"] == "credit_card":
            lines.append(f"- {(m.get('brand') or 'card').title()} ending in {m['last_four']}")
        elif m["kind"] == "gift_card":
            lines.append(f"- Gift card, balance {m['balance']}")
        else:
            lines.append("- PayPal")
    return "\n".join(lines)


# -- product_info -------------------------------------------------------------------------


def _plan_product(
    intent: Intent, planned: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    wanted = intent.about_products and not intent.about_orders and not planned
    return [{"query": intent.text[:500]}] if wanted else []


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _render_product(data: Any) -> str:
    parts = []
    for p in data.get("products", []):
        wanted = ", ".join(p["filters"].values())
        head = f"{p['name']}" + (f" ({wanted})" if wanted else "")
        if not p["matching_variants"]:
            parts.append(f"{head}: we have no variant like that.")
            continue
        lines = [f"{head}: {p['available_variants']} of {p['matching_variants']} matching "
                 "variants are in stock."]  # fmt: skip
        for v in p["variants"][:6]:
            options = ", ".join(f"{k}: {val}" for k, val in v["options"].items())
            stock = "in stock" if v["available"] else "out of stock"
            lines.append(f"- {options}: {v['price']}, {stock}")
        parts.append("\n".join(lines))
    if data.get("candidates"):
        parts.append(f"Which one do you mean: {_one_of(data['candidates'])}?")
    elif not parts:
        suggestions = data.get("suggestions") or []
        parts.append(
            "I couldn't find that in our catalog. "
            + (f"Did you mean the {_one_of(suggestions)}?" if suggestions
               else "Tell me the product's name and I'll look it up.")
        )  # fmt: skip
    return "\n\n".join(parts)


# -- search_knowledge_base ----------------------------------------------------------------


def _plan_search(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    product = intent.about_products and not intent.about_orders  # product_info's
    words = re.findall(r"[^\W\d_]{2,}", intent.text)
    wanted = (intent.how_to or not intent.about_orders) and len(words) >= 2
    return [{"query": intent.text[:500]}] if wanted and not product and not planned else []


# The offline model cannot translate: when the customer's words are not English, it says how
# it searched (tools/knowledge.py adds a language_note to such a result).
ENGLISH_ONLY = (
    "I search our help centre in English, the language it is written in, so I may have missed "
    "what you asked in your language. If you can, ask me in English, or say 'human' to talk to "
    "a person."
)


def _render_search(data: Any) -> str:
    if not data.get("found"):
        if data.get("language_note"):
            return f"I couldn't find anything about that in our help centre. {ENGLISH_ONLY}"
        return (
            "I couldn't find anything about that in our help centre. I can look up your "
            "orders: send your order number (like #W1234567) and, if you're not verified yet, "
            "the email address on your account. Say 'human' to talk to a person."
        )
    results = data["results"]
    best = results[0]
    shown = [best] + [r for r in results[1:2] if _same_page_as_close(r, best)]
    parts = []
    for n, result in enumerate(shown):
        text = result["text"].strip()
        if len(text) > 700:
            text = text[:700].rsplit(" ", 1)[0] + " …"
        head = (
            f"From our help centre [{result['source']}]:"
            if n == 0
            else f"[{result['source']}] {_where(result)}:"
        )
        parts.append(f"{head}\n\n{text}")
    cites = ", ".join(
        f"[{r['source']}] {_where(r)}" + (f" ({r['url']})" if r.get("url") else "") for r in shown
    )
    answer = "\n\n".join(parts) + f"\n\n{'Sources' if len(shown) > 1 else 'Source'}: {cites}"
    return f"{answer}\n\n{ENGLISH_ONLY}" if data.get("language_note") else answer


def _where(result: dict[str, Any]) -> str:
    return " > ".join(p for p in (result["title"], result.get("section")) if p)


# The offline model shows the best passage, and the next one too when it is another section of
# the same page about as relevant: "how long does shipping take?" finds the processing times
# and the table of delivery options, and a customer needs both.
CLOSE = 0.85


def _same_page_as_close(result: dict[str, Any], best: dict[str, Any]) -> bool:
    same_page = (result["title"], result.get("url")) == (best["title"], best.get("url"))
    relevance, top = result.get("relevance"), best.get("relevance")
    if not same_page or relevance is None or not top:
        return False
    return float(relevance) >= CLOSE * float(top)


# -- escalate_to_human --------------------------------------------------------------------


def _plan_hand_off(
    intent: Intent, planned: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    if not intent.wants_human:
        return []
    return [{"reason": "Customer asked for a person", "summary": intent.text[:500]}]


def _render_hand_off(data: Any) -> str:
    return (
        f"I've passed this conversation to a human colleague (ticket #{data['ticket_id']}). "
        "They'll reply here as soon as they can."
    )


# -- the changes ----------------------------------------------------------------------------

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


def _render_cancel(data: Any) -> str:
    refunds = "; ".join(f"{r['amount']} to your {r['to']}" for r in data.get("refunds", []))
    return f"Done: order {data['order_id']} is cancelled." + (
        f" Refund: {refunds} (a gift card at once, other methods in 5-7 business days)."
        if refunds
        else ""
    )


def _render_modify_pending_order_address(d: Any) -> str:
    return (
        f"Done: order {d['order_id']} now ships to {changes.address_line(d['shipping_address'])}."
    )


def _render_modify_pending_order_items(d: Any) -> str:
    return (
        f"Done: order {d['order_id']} is updated ({changes.swaps(d)}). "
        + changes.difference_line(d)
    )


def _render_modify_pending_order_payment(d: Any) -> str:
    return (
        f"Done: order {d['order_id']} is now paid with your {d['payment_method']} ({d['amount']})."
    )


def _render_modify_user_address(d: Any) -> str:
    return f"Done: your default address is now {changes.address_line(d['default_address'])}."


def _render_return_delivered_order_items(d: Any) -> str:
    return (
        f"Done: the return for order {d['order_id']} is requested ({changes.returned(d)}). "
        f"{d['refund']} will be refunded to your {d['refund_method']}; you'll get an email on how "
        "to send the items back."
    )


def _render_exchange_delivered_order_items(d: Any) -> str:
    return (
        f"Done: the exchange for order {d['order_id']} is requested ({changes.swaps(d)}). "
        + changes.difference_line(d)
        + " You'll get an email on how to send the items back."
    )


PLANS: dict[str, Offline] = {
    "verify_customer": Offline(_plan_verify, _render_verify),
    "order_status": Offline(_plan_status, _render_order),
    "list_orders": Offline(_plan_list, _render_orders),
    "payment_methods": Offline(render=_render_methods),
    "cancel_pending_order": Offline(_plan_cancel, _render_cancel),
    "modify_pending_order_address": Offline(render=_render_modify_pending_order_address),
    "modify_pending_order_items": Offline(render=_render_modify_pending_order_items),
    "modify_pending_order_payment": Offline(render=_render_modify_pending_order_payment),
    "modify_user_address": Offline(render=_render_modify_user_address),
    "return_delivered_order_items": Offline(render=_render_return_delivered_order_items),
    "exchange_delivered_order_items": Offline(render=_render_exchange_delivered_order_items),
    "search_knowledge_base": Offline(_plan_search, _render_search),
    "product_info": Offline(_plan_product, _render_product),
    "escalate_to_human": Offline(_plan_hand_off, _render_hand_off, exclusive=True),
}
