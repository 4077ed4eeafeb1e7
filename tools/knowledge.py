"""Knowledge-base search: numbered passages the model cites as [n]."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from pydantic import Field

from tools.registry import tool
from tools.tool_context import ToolContext, ToolError

log = logging.getLogger(__name__)


@tool(
    label="Searching the help centre",
    guidance="For questions about policies, shipping, returns, warranty or products, call "
    "search_knowledge_base and answer only from the passages it returns. Cite each fact with "
    "its source number in brackets, like [1]. If nothing relevant is found, say you don't know "
    "and offer to connect the customer with a person; never invent policies or product facts.",
)
def search_knowledge_base(
    ctx: ToolContext,
    query: Annotated[
        str,
        Field(
            description="What to look up: the customer's question or keywords",
            min_length=2,
            max_length=500,
        ),
    ],
) -> dict[str, Any]:
    """Search the help centre: store policies, shipping, returns and refunds, warranty, and
    product manuals. Returns numbered passages; answer only from them and cite them as [n].
    When nothing relevant is found, say you don't know and offer a human."""
    if ctx.kb is None:
        raise ToolError("The help centre is unavailable right now. Offer to connect a human.")
    try:
        hits = ctx.kb.search(query, k=ctx.settings.kb_search_results)
    except Exception:  # a Chroma server outage must not end the conversation
        log.exception("knowledge-base search failed")
        raise ToolError(
            "The help centre is unavailable right now. Offer to connect a human."
        ) from None
    if not hits:
        return {
            "found": False,
            "message": "Nothing relevant in the help centre. Say you don't know; offer a human.",
        }
    results = []
    for hit in hits:
        entry: dict[str, Any] = {"source": ctx.cite(hit), "title": hit.title}
        if hit.section:
            entry["section"] = hit.section
        if hit.page:
            entry["page"] = hit.page
        if hit.url:
            entry["url"] = hit.url
        entry["text"] = hit.text
        results.append(entry)
    return {"found": True, "results": results}
