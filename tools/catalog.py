"""Product look-ups: public catalog data, so no verification is needed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.catalog import describe_product, match_products
from tools.intent import Intent
from tools.registry import tool
from tools.tool_context import ToolContext


def _plan(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    wanted = intent.about_products and not intent.about_orders and not planned
    return [{"query": intent.text[:500]}] if wanted else []


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _render(data: Any) -> str:
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


@tool(
    label="Checking the catalog",
    guidance="For product questions (stock, price, colors, sizes, variants) use product_info; "
    "it needs no verification.",
    plan=_plan,
    render=_render,
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
    match = match_products(session=ctx.session, query=query, options=options)
    result: dict[str, Any] = {
        "products": [
            describe_product(
                session=ctx.session,
                product=p,
                query=query,
                options=options,
                available_only=available_only,
            ).model_dump()
            for p in match.products[:3]
        ]
    }
    if match.ask:
        result["candidates"] = [p.name for p in match.ask]
        result["note"] = "Several products fit: ask the customer which one they mean."
    elif not match.products:
        result["suggestions"] = [p.name for p in match.suggestions]
        result["note"] = "No product in the catalog matches that." + (
            " Ask whether the customer means one of the suggestions." if match.suggestions else ""
        )
    return result
