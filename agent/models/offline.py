"""The offline model: a deterministic local responder behind the same interface as Claude.

It reads the customer's latest message, calls the same tools Claude would (verification, order
look-ups, hand-off), and then answers extractively from the tool results. It is used when no API
key is configured and as the fallback when Claude stays unavailable.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from agent.models.base import ModelReply, ModelRequest, TextDelta
from agent.models.intent import Intent
from agent.models.offline_dialogue import Dialogue, parsed, result_text
from agent.models.offline_plans import PLANS, Offline
from agent.models.offline_tasks import PERSON, Calls, Reply, next_step
from tools.registry import ToolRegistry
from tools.tool_context import CHECKS_PAUSED

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
        reply = self._reply(request)
        if stream and reply.stop_reason == "end_turn":
            yield TextDelta(reply.text())
        yield reply

    def _reply(self, request: ModelRequest) -> ModelReply:
        last = request.messages[-1]["content"]
        text = " ".join(b.get("text", "") for b in last if b.get("type") == "text")
        results = [b for b in last if b.get("type") == "tool_result"]
        changes = set(self.tools.changes())
        dialogue = Dialogue.read(request.messages, request.system, changes)
        available = {t["name"] for t in request.tools}
        calls = request.messages[-2]["content"] if len(request.messages) > 1 else []
        # Results with the customer's own words after them: a proposed change they answered
        # in words. "yes" ran it (report it); anything else left it (read their message).
        # (The proposal's own result comes last, after the rest of its round.)
        lapsed = bool(text.strip() and results and results[-1].get("is_error"))
        if results and not lapsed:
            # A change settled or a person called: what came back is the answer.
            settled = any(c.get("name") in changes | {"escalate_to_human"}
                          for c in _calls_of(calls, results))  # fmt: skip
            step = None if settled else next_step(dialogue, available, fresh=False)
            if isinstance(step, Calls):
                return self._calls(request, step.calls)
            if isinstance(step, Reply):
                verified = [
                    r
                    for c, r in dialogue.turn_results(request.messages)
                    if c["name"] == "verify_customer" and not r.get("is_error")
                ]
                said = answer_from_results(self.plans, calls, verified) if verified else ""
                return self._final(f"{HEADER}\n\n" + "\n\n".join(filter(None, [said, step.text])))
            return self._final(f"{HEADER}\n\n{answer_from_results(self.plans, calls, last)}")
        photos = any(b.get("type") == "image" for b in last)
        intent = Intent.read(text)
        if photos and not intent.wants_human:
            return self._final(f"{HEADER}\n\n{NO_IMAGES}")
        step = None if intent.wants_human else next_step(dialogue, available)
        if isinstance(step, Calls):
            return self._calls(request, step.calls)
        if isinstance(step, Reply):
            return self._final(f"{HEADER}\n\n{step.text}")
        chat = small_talk(text)
        if chat is not None and not (intent.email or intent.order_ids):
            return self._final(f"{HEADER}\n\n{chat}")
        plan = self.plan(intent, available)
        if [n for n, _ in plan] == ["verify_customer"] and len(dialogue.said) > 1:
            # Verified now: answer what they asked before they had to verify.
            earlier = Intent.read(" ".join(s.text for s in dialogue.said[:-1]))
            plan += [c for c in self.plan(earlier, available) if c[0] != "verify_customer"]
        if plan:
            return self._calls(request, plan)
        return self._final(f"{HEADER}\n\n{HELP}")

    def _calls(self, request: ModelRequest, plan: list[tuple[str, dict[str, Any]]]) -> ModelReply:
        turn = len(request.messages)
        blocks = [
            {"type": "tool_use", "id": f"toolu_offline_{turn:04d}_{i}", "name": n, "input": a}
            for i, (n, a) in enumerate(plan)
        ]
        return ModelReply(blocks, "tool_use", self.name, _no_usage())

    async def respond_async(
        self, request: ModelRequest, *, stream: bool = False
    ) -> AsyncGenerator[TextDelta | ModelReply, None]:
        for item in self.respond(request, stream=stream):  # local and quick: no thread needed
            yield item

    async def aclose(self) -> None:
        return None

    def _final(self, text: str) -> ModelReply:
        return ModelReply([{"type": "text", "text": text}], "end_turn", self.name, _no_usage())


_THANKS = re.compile(r"^\s*(thanks?( you)?( so much| very much)?|thx|ty|cheers|great|perfect|"
                     r"awesome|cool)[\s!.,]*(that'?s all|bye)?[\s!.]*$", re.I)  # fmt: skip
_YES = re.compile(r"^\s*(yes|yeah|yep|ok|okay|sure|alright|fine)\b[\s!.]*$", re.I)
_NO = re.compile(r"^\s*(no|nope|nah|never ?mind|no,? (thanks|thank you|keep it|leave it)|"
                 r"keep it|forget it)[\s!.,]*(keep it|leave it|thanks)?[\s!.]*$", re.I)  # fmt: skip
_HELLO = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b[\s!.,]*$", re.I)


def small_talk(text: str) -> str | None:
    """A short reply to a message that asks for nothing (with nothing pending)."""
    if _THANKS.search(text):
        return "You're welcome! Is there anything else I can help with?"
    if _NO.search(text):
        return "All right, I'll leave everything as it is. Anything else I can help with?"
    if _YES.search(text):
        return "There's nothing waiting for a yes right now. What would you like to do? " + HELP
    if _HELLO.search(text):
        return f"Hello! {HELP}"
    return None


def _calls_of(calls: list[Block], results: list[Block]) -> list[Block]:
    by_id = {b["id"]: b for b in calls if b.get("type") == "tool_use"}
    return [by_id[r["tool_use_id"]] for r in results if r.get("tool_use_id") in by_id]


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
        content = result_text(result)
        if result.get("is_error"):
            parts.append(_explain_error(name, args, content))
            continue
        render = plans[name].render if name in plans else None
        data = parsed(result)
        text = render(data) if render else f"{name}: {content[:500]}"
        if text:
            parts.append(text)
    # The same explanation for several calls (e.g. not verified) need only be said once.
    return "\n\n".join(dict.fromkeys(parts)) or HELP


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
        return _verification_words(message)
    return f"Sorry, I couldn't complete that: {message} {PERSON}"


def _verification_words(message: str) -> str:
    """What the customer is told when a verification did not go through: the tool's message
    is written for the model (what to do next), not for them."""
    if message.startswith(CHECKS_PAUSED):
        wait = re.search(r"paused for (\d+) seconds", message)
        seconds = f"another {wait.group(1)} seconds" if wait else "a little while"
        return (
            f"To keep your account safe, I can't check your details for {seconds}, after the "
            "earlier attempts that didn't match. Please double-check your email address and your "
            "order number or zip code, then send them again."
        )
    if "locked" in message or "no more are allowed" in message:
        return (
            "To keep your account safe, I can't check your details again in this conversation. "
            "Say 'human' and a colleague will help you."
        )
    if "typed in this conversation" in message:
        return ("Please type the email address on your account and your order number or zip "
                "code yourself, and I'll check them.")  # fmt: skip
    if "already verified" in message:
        return ("This conversation is already verified for one customer. For another account, "
                "please start a new conversation.")  # fmt: skip
    return f"I couldn't verify your identity. {message}"
