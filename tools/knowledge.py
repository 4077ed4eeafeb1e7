"""Knowledge-base search: numbered passages the model cites as [n]."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from kb.language import is_foreign
from tools.registry import tool
from tools.tool_context import ToolContext, ToolError

if TYPE_CHECKING:
    from kb import Hit, KnowledgeBase

log = logging.getLogger(__name__)

HELP_CENTRE_LANGUAGE = "en"  # what the help centre's documents are written in
ENGLISH_ONLY = (
    "The help centre is in English and was searched with the customer's words, which are not "
    "English: search again with query_in_english."
)


@tool(
    label="Searching the help centre",
    guidance="For questions about policies, shipping, returns, warranty or products, call "
    "search_knowledge_base and answer only from the passages it returns. Cite each fact with "
    "its source number in brackets, like [1]. If nothing relevant is found, say you don't know "
    "and offer to connect the customer with a person; never invent policies or product facts. "
    "The help centre is in English: for a question in another language also pass "
    "query_in_english, and answer in the customer's language.",
)
def search_knowledge_base(
    ctx: ToolContext,
    query: Annotated[
        str,
        Field(
            description="What to look up, in the customer's words, standing alone (name the "
            "product they mentioned earlier)",
            min_length=2,
            max_length=500,
        ),
    ],
    query_in_english: Annotated[
        str | None,
        Field(
            description="The question in English, when the customer wrote in another language",
            min_length=2,
            max_length=500,
        ),
    ] = None,
) -> dict[str, Any]:
    """Search the help centre: store policies, shipping, returns and refunds, warranty, and
    product manuals. Returns numbered passages; answer only from them and cite them as [n].
    When nothing relevant is found, say you don't know and offer a human."""
    if ctx.kb is None:
        raise ToolError("The help centre is unavailable right now. Offer to connect a human.")
    try:
        hits = _search(ctx.kb, query, query_in_english, ctx.settings.kb_search_results)
    except Exception:  # a Chroma server outage must not end the conversation
        log.exception("knowledge-base search failed")
        raise ToolError(
            "The help centre is unavailable right now. Offer to connect a human."
        ) from None
    # Searched in the customer's words alone, and they are not English: say so (Claude can
    # search again with query_in_english; the offline model tells the customer).
    note = (
        {"language_note": ENGLISH_ONLY}
        if not query_in_english and is_foreign(query, HELP_CENTRE_LANGUAGE)
        else {}
    )
    if not hits:
        return {
            "found": False,
            "message": "Nothing relevant in the help centre. Say you don't know; offer a human.",
            **note,
        }
    results = []
    for hit in hits:
        entry: dict[str, Any] = {
            "source": ctx.cite(hit),
            "title": hit.title,
            "relevance": round(hit.score, 2),
        }
        if hit.section:
            entry["section"] = hit.section
        if hit.page:
            entry["page"] = hit.page
        if hit.url:
            entry["url"] = hit.url
        entry["text"] = hit.text
        results.append(entry)
    return {"found": True, "results": results, **note}


def _search(kb: KnowledgeBase, query: str, in_english: str | None, k: int) -> list[Hit]:
    """The passages for the customer's words and, when given, for the English question: the
    help centre is in English and the encoder matches across languages poorly (a Spanish,
    German or French question finds its passage a third as often: bench/README.md), so the
    English question's passages come first, in its order; passages only the customer's words
    found follow (a name the translation lost)."""
    if not in_english or in_english.strip().casefold() == query.strip().casefold():
        return kb.search(query, k=k)
    by_english, by_words = kb.search_many([in_english, query], k)
    seen = {(h.source, h.text) for h in by_english}
    return [*by_english, *[h for h in by_words if (h.source, h.text) not in seen]][:k]
