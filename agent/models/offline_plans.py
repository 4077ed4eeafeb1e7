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
from agent.models.offline_phrases import say, status
from agent.models.offline_tasks import order_line
from tools import order_actions as changes

# The calls a tool plans for a message (given what the tools before it already planned), and
# its words for a result in the customer's language ("en", "es", "de", "fr": offline_phrases.py).
Plan = Callable[[Intent, list[tuple[str, dict[str, Any]]]], list[dict[str, Any]]]
Render = Callable[[Any, str], str]


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


def _render_verify(data: Any, language: str) -> str:
    customer = data.get("customer") if isinstance(data, dict) else None
    return say("verified", language, name=customer["name"]) if customer else ""


# -- order look-ups --------------------------------------------------------------------------


def _plan_status(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    if intent.wants_change:  # the change's own tool looks the order up
        return []
    return [{"order_id": order_id} for order_id in intent.order_ids]


def _render_order(data: Any, language: str) -> str:
    lines = [say("order", language, order_id=data["order_id"],
                 status=status(data["status"], language), total=data["total"])]  # fmt: skip
    lines.append(say("items", language))
    for item in data["items"]:
        options = ", ".join(f"{k}: {v}" for k, v in item.get("options", {}).items())
        lines.append(
            f"- {item['name']} ({options}) {item['price']}"
            if options
            else f"- {item['name']} {item['price']}"
        )
    tracking = [t for s in data.get("shipments", []) for t in s.get("tracking_ids", [])]
    if data["status"] == "cancelled":
        lines.append(say("order_cancelled", language))
    elif tracking:
        lines.append(say("tracking", language, numbers=", ".join(tracking)))
    elif data["status"].startswith(("pending", "processed")):
        lines.append(say("not_shipped", language))
    else:
        lines.append(say("no_tracking", language))
    address = data.get("shipping_address") or {}
    if address:
        where = ", ".join(
            str(address[k])
            for k in ("address1", "address2", "city", "state", "zip")
            if address.get(k)
        )
        lines.append(say("shipping_to", language, address=where))
    return "\n".join(lines)


def _plan_list(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    wanted = intent.about_orders and not intent.how_to and not intent.order_ids
    return [{"limit": 5}] if wanted and not planned else []


def _render_orders(data: Any, language: str) -> str:
    if not data:
        return say("no_orders", language)
    lines = [say("recent_orders", language)]
    lines += [f"- {order_line(o, language)}" for o in data]
    return "\n".join(lines)


def _render_methods(data: Any, language: str) -> str:
    if not data:
        return say("no_methods", language)
    lines = [say("your_methods", language)]
    for m in data:
        if m["kind"] == "credit_card":
            brand = (m.get("brand") or "card").title()
            lines.append("- " + say("card", language, brand=brand, last_four=m["last_four"]))
        elif m["kind"] == "gift_card":
            lines.append("- " + say("gift_card", language, balance=m["balance"]))
        else:
            lines.append("- PayPal")
    return "\n".join(lines)


# -- product_info -------------------------------------------------------------------------


def _plan_product(
    intent: Intent, planned: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    wanted = intent.about_products and not intent.about_orders and not planned
    return [{"query": intent.text[:500]}] if wanted else []


def _one_of(names: list[str], language: str) -> str:
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} {say('or', language)} {names[-1]}"


def _render_product(data: Any, language: str) -> str:
    parts = []
    for p in data.get("products", []):
        wanted = ", ".join(p["filters"].values())
        head = f"{p['name']}" + (f" ({wanted})" if wanted else "")
        if not p["matching_variants"]:
            parts.append(say("no_such_variant", language, product=head))
            continue
        available, matching = p["available_variants"], p["matching_variants"]
        lines = [say("variants_in_stock", language, product=head, available=available,
                     matching=matching)]  # fmt: skip
        for v in p["variants"][:6]:
            options = ", ".join(f"{k}: {val}" for k, val in v["options"].items())
            stock = say("in_stock" if v["available"] else "out_of_stock", language)
            lines.append(f"- {options}: {v['price']}, {stock}")
        parts.append("\n".join(lines))
    if data.get("candidates"):
        parts.append(say("which_product", language, choices=_one_of(data["candidates"], language)))
    elif not parts:
        suggestions = data.get("suggestions") or []
        parts.append(
            say("not_in_catalog", language) + " "
            + (say("did_you_mean", language, choices=_one_of(suggestions, language))
               if suggestions else say("name_the_product", language))
        )  # fmt: skip
    return "\n\n".join(parts)


# -- search_knowledge_base ----------------------------------------------------------------


def _plan_search(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    product = intent.about_products and not intent.about_orders  # product_info's
    words = re.findall(r"[^\W\d_]{2,}", intent.text)
    wanted = (intent.how_to or not intent.about_orders) and len(words) >= 2
    return [{"query": intent.text[:500]}] if wanted and not product and not planned else []


def _render_search(data: Any, language: str) -> str:
    # The offline model cannot translate: when the customer's words are not English, it says
    # how it searched (tools/knowledge.py adds a language_note to such a result), and shows a
    # passage as the help centre has it, in English, saying so.
    note = say("english_only", language) if data.get("language_note") else ""
    if not data.get("found"):
        return f"{say('not_found', language)} {note or say('help', language)}"
    results = data["results"]
    best = results[0]
    shown = [best] + [r for r in results[1:2] if _same_page_as_close(r, best)]
    parts = []
    for n, result in enumerate(shown):
        text = result["text"].strip()
        if len(text) > 700:
            text = text[:700].rsplit(" ", 1)[0] + " …"
        head = (
            say("from_help_centre", language, source=result["source"])
            if n == 0
            else f"[{result['source']}] {_where(result)}:"
        )
        parts.append(f"{head}\n\n{text}")
    cites = ", ".join(
        f"[{r['source']}] {_where(r)}" + (f" ({r['url']})" if r.get("url") else "") for r in shown
    )
    label = say("sources" if len(shown) > 1 else "source", language)
    answer = "\n\n".join(parts) + f"\n\n{label} {cites}"
    return f"{answer}\n\n{note}" if note else answer


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


def _render_hand_off(data: Any, language: str) -> str:
    return say("hand_off", language, ticket=data["ticket_id"])


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


def _render_cancel(data: Any, language: str) -> str:
    refunds = "; ".join(say("refund_to", language, amount=r["amount"], method=r["to"])
                        for r in data.get("refunds", []))  # fmt: skip
    done = say("cancelled", language, order_id=data["order_id"])
    return done + (say("refund_line", language, refunds=refunds) if refunds else "")


def _render_modify_pending_order_address(d: Any, language: str) -> str:
    return say("order_address_changed", language, order_id=d["order_id"],
               address=changes.address_line(d["shipping_address"]))  # fmt: skip


def _render_modify_pending_order_items(d: Any, language: str) -> str:
    return say("items_changed", language, order_id=d["order_id"], swaps=changes.swaps(d, language),
               difference=changes.difference_line(d, language))  # fmt: skip


def _render_modify_pending_order_payment(d: Any, language: str) -> str:
    return say("payment_changed", language, order_id=d["order_id"], method=d["payment_method"],
               amount=d["amount"])  # fmt: skip


def _render_modify_user_address(d: Any, language: str) -> str:
    return say("user_address_changed", language,
               address=changes.address_line(d["default_address"]))  # fmt: skip


def _render_return_delivered_order_items(d: Any, language: str) -> str:
    return say("return_requested", language, order_id=d["order_id"], items=changes.returned(d),
               refund=d["refund"], method=d["refund_method"])  # fmt: skip


def _render_exchange_delivered_order_items(d: Any, language: str) -> str:
    return say("exchange_requested", language, order_id=d["order_id"],
               swaps=changes.swaps(d, language),
               difference=changes.difference_line(d, language))  # fmt: skip


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
