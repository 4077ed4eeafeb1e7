"""Product look-ups: public catalog data, so no verification is needed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.catalog import describe_product, find_products, product_names
from tools.context import ToolContext, ToolError


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
    variants. Public data: no verification needed."""
    products = find_products(session=ctx.session, query=query)
    if not products:
        names = ", ".join(product_names(session=ctx.session))
        raise ToolError(f"No product in the catalog matches that. Products we sell: {names}.")
    views = [
        describe_product(
            session=ctx.session,
            product=p,
            query=query,
            options=options,
            available_only=available_only,
        ).model_dump()
        for p in products[:3]
    ]
    return {"products": views}
