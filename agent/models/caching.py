"""Prompt caching: where a request's cache breakpoints go (tools, system prompt, latest turn)."""

from __future__ import annotations

import copy
import json
from typing import Any

CACHE = {"type": "ephemeral"}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_last_tools: tuple[list[dict[str, Any]], int] | None = None


def _tools_chars(tools: list[dict[str, Any]]) -> int:
    """The tool definitions' JSON length. They are one list object for the life of the
    registry, so it is measured once, not on every request."""
    global _last_tools
    if _last_tools is None or _last_tools[0] is not tools:
        _last_tools = (tools, len(_json(tools)))
    return _last_tools[1]


def with_cache_breakpoints(
    params: dict[str, Any],
    *,
    ttl: str = "5m",
    min_tokens: int = 0,
    chars_per_token: float = 3.5,
) -> dict[str, Any]:
    """Request parameters with cache_control on the last tool, the system prompt and the
    latest message. The inputs are not modified (the stored history stays as it was).

    The stable prefix (tools and system prompt) is cached for `ttl` ("1h" suits deployments
    with minutes between requests; it must come before any 5-minute breakpoint, which it
    does). A breakpoint whose prefix is shorter than the model's minimum cacheable length
    (`min_tokens`, estimated from characters) is left out: the API would not cache it."""
    params = dict(params)
    stable = {**CACHE, "ttl": "1h"} if ttl == "1h" else CACHE
    tools = list(params.get("tools") or [])
    system = params.get("system")
    head_chars = _tools_chars(params.get("tools") or []) + (
        len(system) if isinstance(system, str) else 0
    )
    head_fits = head_chars / chars_per_token >= min_tokens
    if tools and head_fits:
        tools[-1] = {**tools[-1], "cache_control": stable}
        params["tools"] = tools
    if isinstance(system, str) and system and head_fits:
        params["system"] = [{"type": "text", "text": system, "cache_control": stable}]
    messages = list(params.get("messages") or [])
    if messages and (head_fits or (head_chars + len(_json(messages))) / chars_per_token
                     >= min_tokens):  # fmt: skip
        last = copy.deepcopy(messages[-1])
        last["content"][-1]["cache_control"] = CACHE
        messages[-1] = last
        params["messages"] = messages
    return params
