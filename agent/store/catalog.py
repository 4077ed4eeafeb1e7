"""The product catalog: public data, no customer needed."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from agent.store.orders import format_cents
from agent.store.tables import Product, ProductVariant


class VariantView(BaseModel):
    item_id: str
    options: dict[str, Any]
    available: bool
    price: str


class ProductView(BaseModel):
    product_id: str
    name: str
    filters: dict[str, str]
    matching_variants: int
    available_variants: int
    variants: list[VariantView]
    option_values: dict[str, list[str]]


def _words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", text.lower()))
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}  # "bottles"


def find_products(*, session: Session, query: str) -> list[Product]:
    """Products named in `query` (or whose id it is), best match first."""
    products = list(session.exec(select(Product).order_by(col(Product.name))).all())
    wanted = query.strip()
    exact = [p for p in products if p.id == wanted or p.name.lower() == wanted.lower()]
    if exact:
        return exact
    words = _words(wanted)
    named = [p for p in products if _words(p.name) <= words]
    named.sort(key=lambda p: -len(p.name))  # "Tea Kettle" before "Kettle"
    return named


def describe_product(
    *,
    session: Session,
    product: Product,
    query: str = "",
    options: dict[str, str] | None = None,
    available_only: bool = False,
    limit: int = 20,
) -> ProductView:
    variants = list(
        session.exec(
            select(ProductVariant)
            .where(ProductVariant.product_id == product.id)
            .order_by(col(ProductVariant.item_id))
        ).all()
    )
    values: dict[str, set[str]] = {}
    for v in variants:
        for key, value in v.options.items():
            values.setdefault(key, set()).add(str(value))
    # Option values the question mentions become filters ("blue", "1000ml", "glass").
    words = _words(query)
    filters = {
        key: next(iter(hits))
        for key, vals in values.items()
        if len(hits := {v for v in vals if _words(v) <= words}) == 1
    }
    filters |= {k.lower(): str(v) for k, v in (options or {}).items()}
    matching = [
        v for v in variants
        if all(str(v.options.get(k, "")).lower() == f.lower() for k, f in filters.items())
    ]  # fmt: skip
    if available_only:
        matching = [v for v in matching if v.available]
    return ProductView(
        product_id=product.id,
        name=product.name,
        filters=filters,
        matching_variants=len(matching),
        available_variants=sum(v.available for v in matching),
        variants=[
            VariantView(
                item_id=v.item_id,
                options=v.options,
                available=v.available,
                price=format_cents(v.price_cents),
            )
            for v in sorted(matching, key=lambda v: (not v.available, v.price_cents))[:limit]
        ],
        option_values={k: sorted(vals) for k, vals in values.items()},
    )


def product_names(*, session: Session) -> list[str]:
    return [p.name for p in session.exec(select(Product).order_by(col(Product.name))).all()]
