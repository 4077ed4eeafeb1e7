"""What a customer's message asks for, as the offline model reads it: plain rules on the text.

Each tool's offline planner (its `plan=` in `tools/`) decides from these facts whether the
offline model should call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# Requests to change an order or the account (the offline model proposes only what it reads
# unambiguously: see tools/order_actions.py).
CHANGE_RE = re.compile(r"\b(cancel|modify|change my address)\b", re.IGNORECASE)


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
        zip_code = ZIP_RE.search(ORDER_RE.sub(" ", text))
        return cls(
            text=text.strip(),
            order_ids=list(dict.fromkeys(f"#{m.upper()}" for m in ORDER_RE.findall(text))),
            email=email.group(0) if email else None,
            zip_code=zip_code.group(0) if zip_code else None,
            wants_human=bool(HUMAN_RE.search(text)),
            about_orders=bool(ORDERS_RE.search(text)),
            about_products=bool(PRODUCT_RE.search(text)),
            how_to=bool(HOWTO_RE.search(text)),
            wants_change=bool(CHANGE_RE.search(text)),
        )
