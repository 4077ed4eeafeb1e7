"""The offline model: a deterministic local responder behind the same interface as Claude.

It reads the customer's latest message, calls the same tools Claude would (verification, order
look-ups, hand-off), and then answers extractively from the tool results. It is used when no API
key is configured and as the fallback when Claude stays unavailable.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

from agent.models.base import ModelReply, ModelRequest, TextDelta
from agent.prompts import OFFLINE_NOTICE

ORDER_RE = re.compile(r"#?\s?\b(W\d{7})\b", re.IGNORECASE)
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ZIP_RE = re.compile(r"\b\d{5}\b")
HUMAN_RE = re.compile(
    r"\b(human|real person|a person|someone|representative|agent|operator|talk to staff)\b",
    re.IGNORECASE,
)
ORDERS_RE = re.compile(r"\border(s)?\b|\bpurchase|\bdeliver|\bship|\btracking", re.IGNORECASE)
# Product questions: stock, price, variants.
PRODUCT_RE = re.compile(
    r"\b(in stock|available|availability|price|how much|colou?rs?|sizes?|capacity|variants?|"
    r"options?|do you (have|sell))\b",
    re.IGNORECASE,
)
# Questions about how things work go to the help centre, even when they mention orders.
HOWTO_RE = re.compile(
    r"\b(how|can i|could i|policy|policies|return|refund|exchange|warranty|guarantee|cost|"
    r"manual|clean|descal|assembl|instructions?|what is|what's|do you)\b",
    re.IGNORECASE,
)

HEADER = f"({OFFLINE_NOTICE}: answering from our records without the AI assistant.)"
NO_IMAGES = (
    "I can't look at photos while I'm in offline mode. If something arrived damaged, say "
    "'human' and a colleague will look at your photo."
)
HELP = (
    "I can look up your orders: send your order number (like #W1234567) and, if you're not "
    "verified yet, the email address on your account. Say 'human' to talk to a person."
)

Block = dict[str, Any]


class OfflineModel:
    name = "offline"
    offline = True

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[TextDelta | ModelReply]:
        last = request.messages[-1]["content"]
        if any(b.get("type") == "tool_result" for b in last):
            calls = request.messages[-2]["content"] if len(request.messages) > 1 else []
            reply = self._final(f"{HEADER}\n\n{answer_from_results(calls, last)}")
        else:
            text = " ".join(b.get("text", "") for b in last if b.get("type") == "text")
            available = {t["name"] for t in request.tools}
            photos = any(b.get("type") == "image" for b in last)
            plan = [] if photos and not HUMAN_RE.search(text) else plan_tool_calls(text, available)
            if plan:
                turn = len(request.messages)
                blocks = [
                    {
                        "type": "tool_use",
                        "id": f"toolu_offline_{turn:04d}_{i}",
                        "name": n,
                        "input": a,
                    }
                    for i, (n, a) in enumerate(plan)
                ]
                reply = ModelReply(blocks, "tool_use", self.name, _no_usage())
            else:
                reply = self._final(f"{HEADER}\n\n{NO_IMAGES if photos else HELP}")
        if stream and reply.stop_reason == "end_turn":
            yield TextDelta(reply.text())
        yield reply

    async def respond_async(
        self, request: ModelRequest, *, stream: bool = False
    ) -> AsyncGenerator[TextDelta | ModelReply, None]:
        for item in self.respond(request, stream=stream):  # local and quick: no thread needed
            yield item

    async def aclose(self) -> None:
        return None

    def _final(self, text: str) -> ModelReply:
        return ModelReply([{"type": "text", "text": text}], "end_turn", self.name, _no_usage())


def _no_usage() -> dict[str, int]:
    return {"input_tokens": 0, "output_tokens": 0}


def plan_tool_calls(text: str, available: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls a careful agent would make for `text`, in the order they must run."""
    plan: list[tuple[str, dict[str, Any]]] = []
    if HUMAN_RE.search(text) and "escalate_to_human" in available:
        summary = text.strip()[:500]
        return [
            ("escalate_to_human", {"reason": "Customer asked for a person", "summary": summary})
        ]
    order_ids = list(dict.fromkeys(f"#{m.upper()}" for m in ORDER_RE.findall(text)))
    email = EMAIL_RE.search(text)
    zip_code = ZIP_RE.search(ORDER_RE.sub(" ", text))
    if email and (order_ids or zip_code) and "verify_customer" in available:
        facts: dict[str, Any] = {"email": email.group(0)}
        if order_ids:
            facts["order_id"] = order_ids[0]
        else:
            facts["zip_code"] = zip_code.group(0) if zip_code else None
        plan.append(("verify_customer", facts))
    if order_ids and "order_status" in available:
        plan.extend(("order_status", {"order_id": oid}) for oid in order_ids)
    elif plan:
        pass  # verification alone
    elif "product_info" in available and PRODUCT_RE.search(text) and not ORDERS_RE.search(text):
        plan.append(("product_info", {"query": text.strip()[:500]}))
    elif "search_knowledge_base" in available and (
        HOWTO_RE.search(text) or not ORDERS_RE.search(text)
    ):
        plan.append(("search_knowledge_base", {"query": text.strip()[:500]}))
    elif ORDERS_RE.search(text) and "list_orders" in available:
        plan.append(("list_orders", {"limit": 5}))
    return plan


def answer_from_results(calls: list[Block], results: list[Block]) -> str:
    by_id = {b["id"]: b for b in calls if b.get("type") == "tool_use"}
    parts: list[str] = []
    for result in results:
        if result.get("type") != "tool_result":
            continue
        call = by_id.get(result.get("tool_use_id", ""), {})
        name, args = call.get("name", "tool"), call.get("input", {})
        content = _result_text(result)
        if result.get("is_error"):
            parts.append(_explain_error(name, args, content))
            continue
        render = RENDERERS.get(name)
        data = _json_or_text(content)
        text = render(data) if render else f"{name}: {content[:500]}"
        if text:
            parts.append(text)
    # The same explanation for several calls (e.g. not verified) need only be said once.
    return "\n\n".join(dict.fromkeys(parts)) or HELP


def _result_text(result: Block) -> str:
    content = result.get("content", "")
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if b.get("type") == "text")
    return str(content)


def _json_or_text(content: str) -> Any:
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return content


def _explain_error(name: str, args: dict[str, Any], message: str) -> str:
    if "not verified" in message:
        return (
            "Before I can share order details I need to verify your identity: please send the "
            "email address on your account plus the order number or your zip code."
        )
    if name == "verify_customer":
        return f"I couldn't verify your identity. {message}"
    return f"Sorry, I couldn't complete that: {message}"


def _verified(data: Any) -> str:
    customer = data.get("customer") if isinstance(data, dict) else None
    return f"Thanks, {customer['name']}: you're verified." if customer else ""


def _order(data: Any) -> str:
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
    if tracking:
        lines.append(f"Tracking number(s): {', '.join(tracking)}.")
    else:
        lines.append("It has not shipped yet, so there is no tracking number.")
    address = data.get("shipping_address") or {}
    if address:
        where = ", ".join(
            str(address[k])
            for k in ("address1", "address2", "city", "state", "zip")
            if address.get(k)
        )
        lines.append(f"Shipping to: {where}.")
    return "\n".join(lines)


def _orders(data: Any) -> str:
    if not data:
        return "I found no orders on your account."
    lines = ["Your most recent orders:"]
    lines += [
        f"- {o['order_id']}: {o['status']}, {o['item_count']} item(s), {o['total']}" for o in data
    ]
    return "\n".join(lines)


def _handoff(data: Any) -> str:
    return (
        f"I've passed this conversation to a human colleague (ticket #{data['ticket_id']}). "
        "They'll reply here as soon as they can."
    )


def _passages(data: Any) -> str:
    if not data.get("found"):
        return "I couldn't find anything about that in our help centre. " + HELP
    best = data["results"][0]
    where = " > ".join(p for p in (best["title"], best.get("section")) if p)
    text = best["text"].strip()
    if len(text) > 700:
        text = text[:700].rsplit(" ", 1)[0] + " …"
    cite = f"[{best['source']}] {where}" + (f" ({best['url']})" if best.get("url") else "")
    return f"From our help centre [{best['source']}]:\n\n{text}\n\nSource: {cite}"


def _products(data: Any) -> str:
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
    return "\n\n".join(parts)


RENDERERS: dict[str, Callable[[Any], str]] = {
    "product_info": _products,
    "search_knowledge_base": _passages,
    "verify_customer": _verified,
    "order_status": _order,
    "list_orders": _orders,
    "escalate_to_human": _handoff,
}
