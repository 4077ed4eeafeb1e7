"""What a customer's message asks for, as the offline model reads it: plain rules on the text.

Each tool's offline planner (its `plan=` in `tools/`) decides from these facts whether the
offline model should call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.models.offline_phrases import heard
from agent.store.orders import normalize_order_id

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

# Order numbers as customers write them, whatever the store's format (ids are 3-30 letters and
# digits: the τ² store's "#W2611340", a CSV's "X1001" or "ORD1017"): after "#" or the word
# "order" ("order X1001", "order number: ORD1017"), any such token with three or more digits;
# on its own, a letter and four or more digits ("W2611340", "x1001"). Plain text rules, nothing
# read per message: the order tools check each id against the verified customer's own orders
# ("not found" otherwise).
_ID = r"[a-z0-9]{3,30}(?![\w-]|[./]\d)"  # not a date's "2024" of 2024-05-01
ORDER_RE = re.compile(
    rf"#\s?(?P<tagged>{_ID})"
    rf"|\border\b(?:\s+(?:number|no\.?|num|id))?\s*(?:is\s+|was\s+|:\s*)?#?\s?(?P<named>{_ID})"
    r"|\b(?P<bare>[a-z]\d{4,})\b",
    re.IGNORECASE,
)


def find_order_ids(text: str) -> list[str]:
    """The order numbers in `text`, as the store keeps them ("#X1001"), first mention first."""
    found = []
    for match in ORDER_RE.finditer(EMAIL_RE.sub(" ", text)):  # not "b1234" of b1234@x.com
        token = match.group("tagged") or match.group("named") or match.group("bare")
        if sum(c.isdigit() for c in token) >= 3:
            found.append(normalize_order_id(token))
    return list(dict.fromkeys(found))


ZIP_RE = re.compile(r"\b\d{5}\b")
HUMAN_RE = re.compile(
    r"\b(human|real person|a person|someone|representative|agent|operator|talk to staff|"
    rf"{heard('human')})\b",
    re.IGNORECASE,
)
ORDERS_RE = re.compile(r"\border(s)?\b|\bpurchase|\bdeliver|\bship|\btracking|\bpedido|"
                       r"\bbestellung|\bcommande", re.IGNORECASE)  # fmt: skip
# Product questions: stock, price, variants.
PRODUCT_RE = re.compile(
    r"\b(in stock|available|availability|price|how much|colou?rs?|sizes?|capacity|variants?|"
    r"options?|do you (have|sell))\b",
    re.IGNORECASE,
)
# Questions about how things work go to the help centre, even when they mention orders.
HOWTO_RE = re.compile(
    r"\b(how|can i|could i|policy|policies|return|refund|exchange|warranty|guarantee|cost|"
    rf"manual|clean|descal|assembl|instructions?|what is|what's|do you|{heard('policy')})\b",
    re.IGNORECASE,
)


# Requests to change an order or the account (the offline model proposes only what it reads
# unambiguously: see tools/order_actions.py).
CHANGE_RE = re.compile(rf"\b(cancel|modify|change my address|{heard('cancel')})", re.IGNORECASE)


@dataclass(frozen=True)
class Intent:
    text: str
    order_ids: list[str]
    email: str | None
    zip_code: str | None
    wants_human: bool
    about_orders: bool
    about_products: bool
    how_to: bool
    wants_change: bool = False

    @classmethod
    def read(cls, text: str) -> Intent:
        email = EMAIL_RE.search(text)
        order_ids = find_order_ids(text)
        zip_code = ZIP_RE.search(ORDER_RE.sub(" ", EMAIL_RE.sub(" ", text)))
        return cls(
            text=text.strip(),
            order_ids=order_ids,
            email=email.group(0) if email else None,
            zip_code=zip_code.group(0) if zip_code else None,
            wants_human=bool(HUMAN_RE.search(text)),
            about_orders=bool(ORDERS_RE.search(text)),
            about_products=bool(PRODUCT_RE.search(text)),
            how_to=bool(HOWTO_RE.search(text)),
            wants_change=bool(CHANGE_RE.search(text)),
        )
