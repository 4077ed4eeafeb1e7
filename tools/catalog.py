"""Product look-ups: public catalog data, so no verification is needed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.catalog import describe_product, match_products
from tools.order_system import ProductRecord
from tools.registry import tool
from tools.tool_context import ToolContext


@tool(
    reads_orders=True,
    label="Checking the catalog",
    guidance="For product questions (stock, price, colors, sizes, variants) use product_info; "
    "it needs no verification.",
)
def product_info(
    ctx: ToolContext,
    query: Annotated[
        str,
        Field(
            description="The product's name or id, or the customer's question about it, "
            "e.g. 'is the 1000ml glass water bottle in stock in blue?'",
            max_length=500,
        ),
    ],
    options: Annotated[
        dict[str, str] | None,
        Field(description="Exact option filters, e.g. {'color': 'blue', 'capacity': '1000ml'}"),
    ] = None,
    available_only: Annotated[bool, Field(description="Only variants in stock")] = False,
) -> dict[str, Any]:
    """Look up a product in the catalog: its variants (options such as color, size, capacity),
    whether each is in stock, and its price. Option values named in `query` filter the
    variants. Partial names, plurals and typos are understood; when several products fit
    equally, `candidates` lists them: ask the customer which one they mean. Public data: no
    verification needed."""
    records: dict[str, ProductRecord | None] = {}

    def read(product_id: str) -> ProductRecord | None:
        if product_id not in records:
            records[product_id] = ctx.orders.product(product_id)
        return records[product_id]

    def variants_of(ids: list[str]) -> dict[str, list[Any]]:
        return {pid: list(record.variants) for pid in ids if (record := read(pid)) is not None}

    match = match_products(names=ctx.orders.products(), variants_of=variants_of, query=query,
                           options=options)  # fmt: skip
    described = []
    for product in match.products[:3]:
        record = read(product.id)
        if record is None:
            continue
        described.append(
            describe_product(product=product, variants=record.variants, query=query,
                             options=options, available_only=available_only).model_dump()
        )  # fmt: skip
    result: dict[str, Any] = {"products": described}
    if match.ask:
        result["candidates"] = [p.name for p in match.ask]
        result["note"] = "Several products fit: ask the customer which one they mean."
    elif not match.products:
        result["suggestions"] = [p.name for p in match.suggestions]
        result["note"] = "No product in the catalog matches that." + (
            " Ask whether the customer means one of the suggestions." if match.suggestions else ""
        )
    return result
