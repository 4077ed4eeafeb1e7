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
from agent.models.offline_phrases import ENGLISH, heard, say
from agent.models.offline_plans import PLANS, Offline
from agent.models.offline_tasks import Calls, Reply, next_step
from tools.registry import ToolRegistry
from tools.tool_context import CHECKS_PAUSED

# Its words, in the customer's language, are in agent/models/offline_phrases.py; each answer
# starts with its label, the "header" phrase ("(Offline mode: …)").

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
        language = dialogue.language
        header = say("header", language)
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
                return self._calls(request, step.calls, language)
            if isinstance(step, Reply):
                verified = [
                    r
                    for c, r in dialogue.turn_results(request.messages)
                    if c["name"] == "verify_customer" and not r.get("is_error")
                ]
                said = (
                    answer_from_results(self.plans, calls, verified, language) if verified else ""
                )
                return self._final(f"{header}\n\n" + "\n\n".join(filter(None, [said, step.text])))
            answer = answer_from_results(self.plans, calls, last, language)
            return self._final(f"{header}\n\n{answer}")
        photos = any(b.get("type") == "image" for b in last)
        intent = Intent.read(text)
        if photos and not intent.wants_human:
            return self._final(f"{header}\n\n{say('no_images', language)}")
        step = None if intent.wants_human else next_step(dialogue, available)
        if isinstance(step, Calls):
            return self._calls(request, step.calls, language)
        if isinstance(step, Reply):
            return self._final(f"{header}\n\n{step.text}")
        chat = small_talk(text, language)
        if chat is not None and not (intent.email or intent.order_ids):
            return self._final(f"{header}\n\n{chat}")
        plan = self.plan(intent, available)
        if [n for n, _ in plan] == ["verify_customer"] and len(dialogue.said) > 1:
            # Verified now: answer what they asked before they had to verify.
            earlier = Intent.read(" ".join(s.text for s in dialogue.said[:-1]))
            plan += [c for c in self.plan(earlier, available) if c[0] != "verify_customer"]
        if plan:
            return self._calls(request, plan, language)
        return self._final(f"{header}\n\n{say('help', language)}")

    def _calls(
        self, request: ModelRequest, plan: list[tuple[str, dict[str, Any]]], language: str
    ) -> ModelReply:
        turn = len(request.messages)
        blocks: list[Block] = [
            {"type": "tool_use", "id": f"toolu_offline_{turn:04d}_{i}", "name": n, "input": a}
            for i, (n, a) in enumerate(plan)
        ]
        if language != ENGLISH and any(n in self.tools.changes() for n, _ in plan):
            # A change proposed: the engine shows its summary and asks for a "yes", both in
            # the customer's language; this says first that it can be done.
            words = f"{say('header', language)}\n\n{say('proposal', language)}"
            blocks.insert(0, {"type": "text", "text": words})
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
                     rf"awesome|cool|{heard('thanks')})[\s!.,]*(that'?s all|bye)?[\s!.]*$",
                     re.I)  # fmt: skip
_YES = re.compile(rf"^[\s¡]*(yes|yeah|yep|ok|okay|sure|alright|fine|{heard('yes')})[\s!.]*$", re.I)
_NO = re.compile(r"^\s*(no|nope|nah|never ?mind|no,? (thanks|thank you|keep it|leave it)|"
                 rf"keep it|forget it|{heard('no')})[\s!.,]*(keep it|leave it|thanks)?[\s!.]*$",
                 re.I)  # fmt: skip
_HELLO = re.compile(r"^[\s¡]*(hi|hello|hey|good (morning|afternoon|evening)|"
                    rf"{heard('hello')})[\s!.,]*$", re.I)  # fmt: skip


def small_talk(text: str, language: str = ENGLISH) -> str | None:
    """A short reply to a message that asks for nothing (with nothing pending)."""
    if _THANKS.search(text):
        return say("welcome", language)
    if _NO.search(text):
        return say("left_as_is", language)
    if _YES.search(text):
        return say("nothing_to_confirm", language, help=say("help", language))
    if _HELLO.search(text):
        return say("hello", language, help=say("help", language))
    return None


def _calls_of(calls: list[Block], results: list[Block]) -> list[Block]:
    by_id = {b["id"]: b for b in calls if b.get("type") == "tool_use"}
    return [by_id[r["tool_use_id"]] for r in results if r.get("tool_use_id") in by_id]


def _no_usage() -> dict[str, int]:
    return {"input_tokens": 0, "output_tokens": 0}


def answer_from_results(
    plans: dict[str, Offline], calls: list[Block], results: list[Block], language: str = ENGLISH
) -> str:
    by_id = {b["id"]: b for b in calls if b.get("type") == "tool_use"}
    parts: list[str] = []
    for result in results:
        if result.get("type") != "tool_result":
            continue
        call = by_id.get(result.get("tool_use_id", ""), {})
        name, args = call.get("name", "tool"), call.get("input", {})
        content = result_text(result)
        if result.get("is_error"):
            parts.append(_explain_error(name, args, content, language))
            continue
        render = plans[name].render if name in plans else None
        data = parsed(result)
        text = render(data, language) if render else f"{name}: {content[:500]}"
        if text:
            parts.append(text)
    # The same explanation for several calls (e.g. not verified) need only be said once.
    return "\n\n".join(dict.fromkeys(parts)) or say("help", language)


def _explain_error(name: str, args: dict[str, Any], message: str, language: str) -> str:
    if "Nothing was changed" in message:  # a proposed change declined, lapsed or expired
        if "in time" in message:
            return say("timed_out", language)
        return say("unchanged", language)
    if "not verified" in message:
        return say("verify_first", language)
    if name == "verify_customer":
        return _verification_words(message, language)
    return say("failed", language, message=message, person=say("person", language))


def _verification_words(message: str, language: str) -> str:
    """What the customer is told when a verification did not go through: the tool's message
    is written for the model (what to do next), not for them."""
    if message.startswith(CHECKS_PAUSED):
        wait = re.search(r"paused for (\d+) seconds", message)
        seconds = (say("wait_seconds", language, seconds=wait.group(1)) if wait
                   else say("wait_a_while", language))  # fmt: skip
        return say("checks_paused", language, wait=seconds)
    if "locked" in message or "no more are allowed" in message:
        return say("checks_locked", language)
    if "typed in this conversation" in message:
        return say("type_it_yourself", language)
    if "already verified" in message:
        return say("already_verified", language)
    return say("not_verified", language, message=message)
