"""The offline model: a deterministic local responder behind the same interface as Claude.

It reads the customer's latest message, calls the same tools Claude would (verification, order
look-ups, hand-off), and then answers extractively from the tool results. It is used when no API
key is configured and as the fallback when Claude stays unavailable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from agent.models.base import ModelReply, ModelRequest, TextDelta
from agent.models.intent import Intent
from agent.models.offline_plans import PLANS, Offline
from tools.registry import ToolRegistry

OFFLINE_NOTICE = "Offline mode"  # how the offline model labels its answers

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
    """Plans and words its tool calls by each tool's entry in `plans` (by name: see
    agent/models/offline_plans.py), for the tools of the registry."""

    name = "offline"
    offline = True

    def __init__(self, tools: ToolRegistry, plans: dict[str, Offline] | None = None) -> None:
        self.tools = tools
        self.plans = PLANS if plans is None else plans

    def plan(self, intent: Intent, available: set[str]) -> list[tuple[str, dict[str, Any]]]:
        """The calls for a message: each available tool's planner, in the registry's order
        (exclusive ones first), sees what the ones before it planned; an exclusive tool's
        calls are the whole plan."""
        planned: list[tuple[str, dict[str, Any]]] = []
        known = [(n, self.plans[n]) for n in self.tools.names() if n in self.plans]
        for name, offline in sorted(known, key=lambda item: not item[1].exclusive):
            if offline.plan is None or name not in available:
                continue
            calls = [(name, args) for args in offline.plan(intent, planned)]
            if calls and offline.exclusive:
                return calls
            planned += calls
        return planned

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[TextDelta | ModelReply]:
        last = request.messages[-1]["content"]
        text = " ".join(b.get("text", "") for b in last if b.get("type") == "text")
        results = [b for b in last if b.get("type") == "tool_result"]
        # Results with the customer's own words after them: a proposed change they answered
        # in words. "yes" ran it (report it); anything else left it (read their message).
        # (The proposal's own result comes last, after the rest of its round.)
        lapsed = bool(text.strip() and results and results[-1].get("is_error"))
        if results and not lapsed:
            calls = request.messages[-2]["content"] if len(request.messages) > 1 else []
            answer = answer_from_results(self.plans, calls, last)
            reply = self._final(f"{HEADER}\n\n{answer}")
        else:
            available = {t["name"] for t in request.tools}
            photos = any(b.get("type") == "image" for b in last)
            intent = Intent.read(text)
            plan = [] if photos and not intent.wants_human else self.plan(intent, available)
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


def answer_from_results(plans: dict[str, Offline], calls: list[Block], results: list[Block]) -> str:
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
        render = plans[name].render if name in plans else None
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
    if "Nothing was changed" in message:  # a proposed change declined, lapsed or expired
        if "in time" in message:
            return "That confirmation timed out, so nothing was changed. Ask again if you like."
        return "All right: I haven't changed anything."
    if "not verified" in message:
        return (
            "Before I can share order details I need to verify your identity: please send the "
            "email address on your account plus the order number or your zip code."
        )
    if name == "verify_customer":
        return f"I couldn't verify your identity. {message}"
    return f"Sorry, I couldn't complete that: {message}"
