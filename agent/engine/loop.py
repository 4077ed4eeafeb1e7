"""One customer turn: call the model, run the tools it asks for, repeat until it ends its turn.

Every step is persisted atomically: the customer's message first, then each tool round (the
assistant's tool_use message and the user's tool_result message together, with the tools' own
writes), then the final answer. A crash at any point leaves a history the API accepts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agent.config import Settings
from agent.domain import ConversationState, utcnow
from agent.engine import consent
from agent.engine.budget import TokenCounter, fit_to_budget, truncate_tool_result
from agent.engine.drive import Steps, TurnWatch, drive, drive_async
from agent.engine.events import (
    ActionProposed,
    Degraded,
    Event,
    Outcome,
    ToolCall,
    ToolFinished,
    ToolStarted,
    TurnFinished,
    TurnResult,
)
from agent.engine.history import UNREADABLE, readable, validate
from agent.engine.port import (
    Admission,
    CustomerFacts,
    Decision,
    NewMessage,
    PendingAction,
    Proposal,
    Round,
    TurnStart,
    TurnStore,
    new_lease,
)
from agent.engine.prompts import system_prompt
from agent.engine.replies import reply as reply_in
from agent.engine.summary import extractive, summary_request
from agent.errors import InvalidInput
from agent.models.base import (
    ContextTooLong,
    ImageRejected,
    Model,
    ModelCall,
    ModelReply,
    ModelRequest,
    ModelUnavailable,
)
from agent.models.thinking import THINKING_TYPES
from kb import KnowledgeBase
from kb.language import language_of
from tools.order_system import OrderSystem, Remembering
from tools.registry import Kind, Preview, ToolOutcome, ToolRegistry
from tools.tool_context import Citation, ToolContext, waits, waits_for_verification

log = logging.getLogger(__name__)

CONTINUE_PROMPT = "Please continue exactly where you stopped, without repeating anything."
# The engine's own replies (a refusal, an empty answer, one cut short, the tool-round cap) are
# in the customer's language: agent/engine/replies.py.

# Stretches of a turn that end with a value: they yield what the turn yields and are sent
# what it is sent (see agent.engine.drive.Steps).
ModelStep = Generator[Event | ModelCall, ModelReply | None, ModelReply]
RequestStep = Generator[Event | ModelCall, ModelReply | None, ModelRequest]
SummaryStep = Generator[Event | ModelCall, ModelReply | None, tuple[str, dict[str, int]]]
Admit = Admission  # the name callers used before the port


@dataclass(frozen=True)
class Said:
    """What a customer's message says: its text and its photos (image content blocks)."""

    text: str = ""
    images: list[dict[str, Any]] | None = None


class Turn:
    """A turn's steps, to be driven by the caller's choice of driver (agent.engine.drive)."""

    def __init__(self, steps: Steps, stream: bool, watch: TurnWatch | None) -> None:
        self.steps, self.stream, self.watch = steps, stream, watch

    def events(self) -> Generator[Event, None, None]:
        """Driven on this thread: model calls block it."""
        return drive(self.steps, self.watch)

    def events_async(self) -> AsyncGenerator[Event, None]:
        """Driven on the running event loop."""
        return drive_async(self.steps, streaming=self.stream, watch=self.watch)

    def result(self) -> TurnResult:
        for event in self.events():
            if isinstance(event, TurnFinished):
                return event.result
        raise AssertionError("the turn ended without TurnFinished")  # pragma: no cover

    async def result_async(self) -> TurnResult:
        events = self.events_async()
        async with aclosing(events):
            async for event in events:
                if isinstance(event, TurnFinished):
                    return event.result
        raise AssertionError("the turn ended without TurnFinished")  # pragma: no cover


class Agent:
    def __init__(
        self,
        *,
        settings: Settings,
        model: Model,
        fallback: Model,
        tools: ToolRegistry,
        kb: KnowledgeBase | None = None,
        store: TurnStore,
        summarizer: Model | None = None,
        watch: Callable[[str], TurnWatch] | None = None,
        orders: Callable[[Any], OrderSystem],
    ) -> None:
        # Everything a turn records goes through this port (agent.engine.port); the turn
        # never opens a transaction itself.
        self.store: TurnStore = store
        self.settings = settings
        self.model = model
        self.fallback = fallback
        self.tools = tools
        self.kb = kb
        # The shop's order system for a session (tools/order_system.py): what tools read and
        # change orders through.
        self.orders = orders
        self.summarizer = summarizer or model  # context summaries (may be a cheaper model)
        self.guidance = tools.guidance()  # the system prompt's lines about the tools
        exact = getattr(model, "count_tokens", None) if settings.count_tokens_api else None
        self.counter = TokenCounter(exact=exact)
        # What watches each turn (metrics, traces, log fields; agent.observability.turns).
        self.watch = watch

    def start_conversation(self, *, customer_id: str | None = None, channel: str = "api") -> str:
        return self.store.start_conversation(customer_id=customer_id, channel=channel)

    def turn(
        self,
        conversation_id: str,
        said: Said | Decision,
        *,
        stream: bool = False,
        admit: Admit | None = None,
    ) -> Turn:
        """The one way into a turn: the customer's message (`Said`: text and photos, image
        content blocks as agent.features.attachments makes them) or their answer to a
        proposed change (`Decision`). It gives the turn's steps; the caller chooses the driver
        (`Turn.events()` blocks the calling thread on model calls, `Turn.events_async()`
        awaits them on the running event loop, with the database and tool work between them
        in worker threads). Nothing runs until the caller drives it.

        `admit` runs first in the transaction that stores the customer's message and returns
        the conversation, locked (the API checks the caller and counts the request against
        its rate limits there); if it raises, nothing is stored."""
        if isinstance(said, Decision):
            steps = self._steps(conversation_id, "", stream, None, admit, said)
        else:
            steps = self._steps(conversation_id, said.text, stream, said.images, admit)
        return Turn(steps, stream, self._watch(conversation_id))

    def ask(
        self,
        conversation_id: str,
        text: str,
        images: list[dict[str, Any]] | None = None,
        admit: Admit | None = None,
    ) -> TurnResult:
        """One message's turn run to completion, blocking (the terminal, scripts, tests)."""
        return self.turn(conversation_id, Said(text, images), admit=admit).result()

    def _watch(self, conversation_id: str) -> TurnWatch | None:
        return self.watch(conversation_id) if self.watch is not None else None

    def _steps(
        self,
        conversation_id: str,
        text: str,
        stream: bool,
        images: list[dict[str, Any]] | None,
        admit: Admit | None,
        decision: Decision | None = None,
    ) -> Steps:
        if decision is None:
            text = self.check_text(text, allow_empty=bool(images))
        content = [*(images or []), *([{"type": "text", "text": text}] if text else [])]
        lease = new_lease()
        speaker = getattr(admit, "speaker", None) or "customer"
        opening = consent.TurnOpening(self.tools, self._tool_context(conversation_id), text=text,
                                      decision=decision, speaker=speaker)  # fmt: skip
        begun = self.store.open_turn(
            conversation_id, content, lease=lease, opening=opening, admit=admit
        )
        human = begun.state == ConversationState.HUMAN  # no turn runs, and no lease is held
        turn = _Turn(self, conversation_id, stream, lease, begun, getattr(admit, "client", None))
        try:
            if begun.settled is not None:
                pending, settled = begun.settled
                yield ToolFinished(pending.tool_use_id, pending.tool, settled.is_error,
                                   settled.content)  # fmt: skip
            if human:
                yield TurnFinished(
                    TurnResult(
                        conversation_id,
                        "",
                        Outcome.QUEUED_FOR_HUMAN,
                        False,
                        "",
                        message_id=begun.message_id,
                        state=ConversationState.HUMAN,
                        settled=begun.settled,
                    )
                )
                return
            yield from turn.run()
        finally:
            # An error, or a client that left (even before the turn ran): the conversation is
            # free, and the next turn knows this one's message went unanswered.
            if not (human or turn.recorded):
                self.store.release(conversation_id, lease=lease)

    def _tool_context(self, conversation_id: str) -> Callable[[Any, str | None], ToolContext]:
        def context(session: Any, customer_id: str | None) -> ToolContext:
            return ToolContext(
                session=session,
                settings=self.settings,
                conversation_id=conversation_id,
                customer_id=customer_id,
                orders=self.orders(session),
                kb=self.kb,
            )

        return context

    def check_text(self, text: str, *, allow_empty: bool = False) -> str:
        text = (text or "").strip()
        if not text and not allow_empty:
            raise InvalidInput("The message is empty.")
        limit = self.settings.max_message_chars
        if len(text) > limit:
            raise InvalidInput(
                f"The message is too long ({len(text)} characters; the limit is {limit})."
            )
        return text


class _Turn:
    """The state of one turn in progress."""

    def __init__(
        self,
        agent: Agent,
        conversation_id: str,
        stream: bool,
        lease: str,
        begun: TurnStart,
        client: str | None = None,
    ) -> None:
        self.agent = agent
        self.client = client  # the caller's address, when the channel knows it
        self.settings = agent.settings
        self.store = agent.store
        self.conversation_id = conversation_id
        self.stream = stream
        self.lease = lease
        self.recorded = False  # the answer or hand-off is stored (and the lease released)
        self.degraded = False
        self.calls: list[ToolCall] = []
        self.usage: dict[str, int] = {}
        self.citations: list[Citation] = []
        # The stored history, read once per turn and extended as this turn stores messages.
        self.messages: list[dict[str, Any]] | None = begun.messages
        self.customer: CustomerFacts | None = begun.customer
        self.cut = begun.cut
        self.summary: str | None = begun.summary
        self.pending_usage: dict[str, int] = {}  # calls (summaries) not yet stored with a message
        self.settled = begun.settled  # the proposal this turn answered, if any
        self.message_id = begun.message_id  # the customer's message that opened the turn
        # Its index in `messages` (the last message as the turn opens).
        self.opened_at = len(begun.messages or []) - 1
        if begun.settled is not None:
            pending, settled = begun.settled
            self.calls.append(ToolCall(pending.tool, pending.arguments, settled.is_error))

    def run(self) -> Steps:
        for iteration in range(self.settings.max_tool_iterations + 1):
            request = yield from self._request()
            reply = yield from self._complete(request)
            if reply.stop_reason != "tool_use":
                yield self._finish(reply)
                return
            if iteration == self.settings.max_tool_iterations:
                yield self._hand_off_at_cap(reply)
                return
            proposed = yield from self._run_tools(reply)
            if proposed is not None:
                assert proposed.pending_action is not None
                yield ActionProposed(proposed.pending_action)
                yield TurnFinished(proposed)
                return
        raise AssertionError("unreachable")  # pragma: no cover

    # -- model calls ------------------------------------------------------------------------

    def _request(self) -> RequestStep:
        assert self.messages is not None, "open_turn loads the history"
        validate(self.messages)
        request = ModelRequest(
            system=system_prompt(self.settings, self.customer, guidance=self.agent.guidance),
            messages=list(self.messages),
            tools=self.agent.tools.schemas(),
            max_tokens=self.settings.max_tokens,
        )
        return (yield from self._fit(request, self.settings.context_budget_tokens))

    def _fit(self, request: ModelRequest, budget: int) -> RequestStep:
        """Trim the request to `budget` (see context.fit_to_budget). The cut is stored on the
        conversation so later turns, other workers and restarts start the request at the same
        message (a stable, cacheable prefix)."""
        summarizing = self.settings.context_strategy == "summarize"
        if summarizing and self.summary:
            request = replace(
                request,
                system=system_prompt(
                    self.settings, self.customer, self.summary, self.agent.guidance
                ),
            )
        fitted, cut = fit_to_budget(
            request,
            budget,
            self.agent.counter,
            target=self.settings.context_trim_target,
            previous_cut=self.cut,
            keep_first=not summarizing,
        )
        if cut != self.cut:
            log.info("conversation %s: request now starts at message %d", self.conversation_id, cut)
            if summarizing:
                left = request.messages[self.cut : cut]
                self.summary, usage = yield from self._summarize(left)
                self.pending_usage = _sum(self.pending_usage, usage)
                self.usage = _sum(self.usage, usage)
                fitted = replace(
                    fitted,
                    system=system_prompt(
                        self.settings, self.customer, self.summary, self.agent.guidance
                    ),
                )
            self.cut = cut
            self.store.move_cut(
                self.conversation_id, lease=self.lease, cut=cut, summary=self.summary
            )
        validate(fitted.messages)
        return fitted

    def _summarize(self, messages: list[dict[str, Any]]) -> SummaryStep:
        """(summary of the earlier summary plus `messages`, usage of the call that wrote it).
        Offline, or with Claude unavailable, the summary is extractive."""
        model = self.agent.summarizer
        if not (model.offline or self.degraded):
            try:
                reply = yield from self._call(model, summary_request(self.summary, messages), False)
                return reply.text().strip(), reply.usage
            except (ModelUnavailable, ContextTooLong, ImageRejected) as exc:
                log.warning("conversation %s: summary unavailable (%s)", self.conversation_id, exc)
        return extractive(self.summary, messages), {}

    def _compacted(self, request: ModelRequest) -> RequestStep:
        """After a context-window overflow: the same request at half its size."""
        budget = max(1_000, self.agent.counter.count(request) // 2)
        return (yield from self._fit(request, budget))

    def _call(self, model: Model, request: ModelRequest, stream: bool | None = None) -> ModelStep:
        """One model call, made by the driver running this turn (see agent.engine.drive)."""
        reply = yield ModelCall(model, request, self.stream if stream is None else stream)
        if reply is None:
            raise AssertionError("the driver sends a model call's reply back")
        return reply

    def _respond(self, request: ModelRequest) -> ModelStep:
        """One model call; on an outage the offline model answers the rest of the turn."""
        model = self.agent.fallback if self.degraded else self.agent.model
        try:
            try:
                reply = yield from self._call_reading_images(model, request)
            except ContextTooLong:
                log.warning(
                    "conversation %s: prompt too long; compacting once", self.conversation_id
                )
                reply = yield from self._call(model, (yield from self._compacted(request)))
        except (ModelUnavailable, ContextTooLong) as exc:
            if model is self.agent.fallback:
                raise
            log.warning("model unavailable, answering offline: %s", exc)
            self.degraded = True
            yield Degraded(str(exc))
            reply = yield from self._call(self.agent.fallback, request)
        for key, value in reply.usage.items():
            self.usage[key] = self.usage.get(key, 0) + value
        return reply

    def _call_reading_images(self, model: Model, request: ModelRequest) -> ModelStep:
        """A model call that survives a photo the model cannot process: the photo is set
        aside (kept in the database, a note in its place) and the call made again; first the
        customer's new photos, then, if the model still refuses, every photo."""
        for scope in ("new", "all", None):
            try:
                return (yield from self._call(model, request))
            except ImageRejected as exc:
                if scope is None:
                    raise ModelUnavailable(f"the model could not process an image: {exc}") from exc
                log.warning(
                    "conversation %s: the model could not process a photo (%s); setting %s "
                    "photos aside", self.conversation_id, exc, scope,
                )  # fmt: skip
                ids = [self.message_id] if scope == "new" else None
                self.store.set_aside_images(self.conversation_id, lease=self.lease,
                                            message_ids=ids)  # fmt: skip
                request = self._images_set_aside(request, new_only=scope == "new")
        raise AssertionError("unreachable")  # pragma: no cover

    def _images_set_aside(self, request: ModelRequest, *, new_only: bool) -> ModelRequest:
        """`request` (and the history this turn holds) with photos replaced by the note: the
        customer's message of this turn only, or all of them."""

        def set_aside(message: dict[str, Any], index: int) -> dict[str, Any]:
            if message["role"] != "user" or (new_only and index != self.opened_at):
                return message
            content = [{**b, UNREADABLE: True} if b.get("type") == "image" else b
                       for b in message["content"]]  # fmt: skip
            return {**message, "content": readable(content)}

        if self.messages is not None:
            self.messages = [set_aside(m, i) for i, m in enumerate(self.messages)]
        offset = len(self.messages or []) - len(request.messages)  # the request may start later
        return replace(request, messages=[set_aside(m, i + offset)
                                          for i, m in enumerate(request.messages)])  # fmt: skip

    def _complete(self, request: ModelRequest) -> ModelStep:
        """A reply that is not cut off: truncated text is continued, a truncated tool call is
        asked for again with more room, and an empty answer is asked for once more."""
        reply = yield from self._respond(request)
        if reply.stop_reason == "model_context_window_exceeded":
            request = yield from self._compacted(request)
            reply = _with_usage(
                (yield from self._respond(request)), reply.usage
            )  # the overflowing call was billed too
        continuations = 0
        while continuations < self.settings.max_continuations:
            truncated = reply.stop_reason == "max_tokens"
            said = bool(reply.text().strip())
            empty = reply.stop_reason == "end_turn" and not said and not reply.tool_uses()
            if not (truncated or empty):
                break
            continuations += 1
            if truncated and (reply.tool_uses() or not said):
                # A cut-off tool call, or thinking that used the whole budget before the
                # answer began: the same request with twice the room.
                log.info(
                    "conversation %s: reply cut at max_tokens %d before its answer; asking "
                    "again with more room",
                    self.conversation_id,
                    request.max_tokens,
                )
                request = replace(request, max_tokens=request.max_tokens * 2)
                reply = _with_usage((yield from self._respond(request)), reply.usage)
                continue
            prior = [{"role": "assistant", "content": reply.content}] if said else []
            more_request = replace(
                request,
                messages=[
                    *request.messages,
                    *prior,
                    {"role": "user", "content": [{"type": "text", "text": CONTINUE_PROMPT}]},
                ],
            )
            more = yield from self._respond(more_request)
            reply = _merge(reply, more)
        return reply

    # -- acting on replies ------------------------------------------------------------------

    def _run_tools(self, reply: ModelReply) -> Generator[Event, None, TurnResult | None]:
        """Run a round's tools. A store-changing call is not run but proposed: the round is
        stored with the proposal and the turn ends, waiting for the customer (the result then
        says what was proposed; None otherwise)."""
        uses = reply.tool_uses()
        for use in uses:
            yield ToolStarted(use["id"], use["name"], use.get("input") or {})
        expires_at = utcnow() + timedelta(minutes=self.settings.action_expiry_minutes)
        run_tools = _RoundTools(self, uses, expires_at)
        record = self.store.record_round(
            self.conversation_id,
            lease=self.lease,
            assistant=self._message("assistant", reply.content, reply),
            run_tools=run_tools,
        )
        if record.customer is not None:
            self.customer = record.customer  # verified this round (or before)
        yield from run_tools.finished
        if record.pending is not None:
            self.recorded = True  # the lease is released: the turn waits for the customer
            return self._proposed(reply, record.pending, record.message_id)
        if self.messages is not None:
            self.messages += [
                {"role": "assistant", "content": reply.content},
                {"role": "user", "content": record.results},
            ]
        return None

    def _customer_said(self) -> str:
        """What the customer typed in this conversation: the text of their messages (tool
        results in the same messages are not theirs)."""
        return "\n".join(
            block.get("text", "")
            for message in self.messages or []
            if message["role"] == "user"
            for block in message["content"]
            if block.get("type") == "text"
        )

    def language(self) -> str:
        """The customer's language, as their own messages tell it (never the model's words:
        kb/language.py): the engine's own words are in it (a proposal's summary and question,
        agent/engine/replies.py)."""
        return language_of(
            " ".join(b.get("text", "") for b in message["content"] if b.get("type") == "text")
            for message in self.messages or []
            if message["role"] == "user"
        )

    def _proposed(
        self, reply: ModelReply, pending: PendingAction, message_id: int | None
    ) -> TurnResult:
        said = reply.text().strip()  # a model that words its calls ("I'll cancel that")
        prompt = consent.confirmation_prompt(pending.summary, self.language())
        text = f"{said}\n\n{prompt}" if said else prompt
        result = self._result(text, Outcome.AWAITING_CONFIRMATION, reply.model, message_id,
                              ConversationState.BOT)  # fmt: skip
        result.pending_action = pending
        return result

    def _finish(self, reply: ModelReply) -> TurnFinished:
        outcome = Outcome.ANSWERED
        content = [b for b in reply.content if b.get("type") != "text" or b.get("text", "").strip()]
        if reply.stop_reason == "refusal":
            details = reply.stop_details or {}
            log.warning(
                "conversation %s: the model declined (category %s): %s",
                self.conversation_id,
                details.get("category") or "none",
                details.get("explanation") or "no explanation",
            )
            refusal = reply_in("refusal", self.language())
            outcome, content = Outcome.REFUSED, [{"type": "text", "text": refusal}]
        elif reply.stop_reason in ("max_tokens", "model_context_window_exceeded") and content:
            content = [*content, {"type": "text", "text": reply_in("cut_short", self.language())}]
        elif reply.stop_reason not in ("end_turn", "stop_sequence", "max_tokens"):
            log.warning("unexpected stop_reason %r; answering politely", reply.stop_reason)
        if not any(b.get("type") == "text" for b in content):
            content = [*content, {"type": "text", "text": reply_in("empty", self.language())}]
        text = "\n\n".join(b["text"] for b in content if b.get("type") == "text")
        citations = cited(text, self.citations)
        recorded = self.store.record_answer(
            self.conversation_id,
            lease=self.lease,
            message=self._message(
                "assistant", content, reply, citations=[asdict(c) for c in citations]
            ),
        )
        self.recorded = True
        state = recorded.state
        if outcome == Outcome.ANSWERED and state == ConversationState.HUMAN:
            outcome = Outcome.HANDED_OFF
        return TurnFinished(self._result(text, outcome, reply.model, recorded.message_id, state))

    def _hand_off_at_cap(self, reply: ModelReply) -> TurnFinished:
        """The model wants yet another tool round: stop, open a ticket, tell the customer."""
        log.warning("conversation %s hit the tool-iteration cap", self.conversation_id)
        recorded = self.store.record_hand_off(
            self.conversation_id,
            lease=self.lease,
            message=lambda ticket: self._message(
                "assistant", [{"type": "text", "text": self._cap_reply(ticket)}], reply
            ),
            reason="The assistant hit its tool-call limit for one turn",
            summary=f"Tool calls this turn: {', '.join(c.name for c in self.calls)}",
        )
        self.recorded = True
        text = self._cap_reply(recorded.ticket_id)
        return TurnFinished(
            self._result(
                text, Outcome.ITERATION_CAP, reply.model, recorded.message_id, recorded.state
            )
        )

    def _cap_reply(self, ticket: int | None) -> str:
        return reply_in("cap", self.language(), ticket=ticket)

    def _message(
        self,
        role: str,
        content: list[dict[str, Any]],
        reply: ModelReply,
        citations: list[dict[str, Any]] | None = None,
    ) -> NewMessage:
        """A model reply as a message to store, with the usage it has not yet recorded."""
        return NewMessage(
            role=role,
            content=content,
            stop_reason=reply.stop_reason,
            model=reply.model,
            usage=self._take_pending(reply.usage),
            degraded=self.degraded,
            citations=citations or None,
        )

    def _take_pending(self, usage: dict[str, int]) -> dict[str, int]:
        """`usage` plus that of calls made for this message (a summary), stored once."""
        merged, self.pending_usage = _sum(usage, self.pending_usage), {}
        return merged

    def _result(
        self,
        text: str,
        outcome: Outcome,
        model: str,
        message_id: int | None,
        state: ConversationState,
    ) -> TurnResult:
        return TurnResult(
            conversation_id=self.conversation_id,
            reply=text,
            outcome=outcome,
            degraded=self.degraded,
            model=model,
            tool_calls=self.calls,
            usage=self.usage,
            message_id=message_id,
            citations=cited(text, self.citations),
            state=state,
            settled=self.settled,
        )


@dataclass
class _Done:
    """The calls of a round run so far, in order: their results, events and calls, and the
    proposal among them."""

    customer_id: str | None  # the verified customer they ran for
    count: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    finished: list[ToolFinished] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    proposal: Proposal | None = None


class _RoundTools:
    """A round's calls (agent.engine.port.RunTools), run in two parts so that no tool reads
    with the store's writer held (on SQLite one writer serves every conversation):

    - `prepare`, before the round's write transaction, on a session that takes no write lock:
      the calls in order, up to the first that records in the store itself (`writes`:
      verify_customer, escalate_to_human). With a remote order system it also reads ahead
      for that call and the ones after it (`Remembering`: their answers are remembered for
      this round, and the calls inside the transaction read them from there).
    - the call itself, inside the write transaction, with the conversation's verified
      customer as stored then: the rest of the calls, on the results of the first part when
      they ran for that same customer; if the customer changed meanwhile, every call again
      (a round is never recorded on what another identity was allowed to see).

    Nothing a call decides is taken from the read-ahead: a call reads its facts from the
    remembered order system, and decides whose they are and what they allow on its own."""

    def __init__(self, turn: _Turn, uses: list[dict[str, Any]], expires_at: datetime) -> None:
        self.turn, self.uses, self.expires_at = turn, uses, expires_at
        self.tools = turn.agent.tools
        self.prepared: _Done | None = None
        self.remembered: Remembering | None = None
        self.finished: list[ToolFinished] = []

    def _orders(self, session: Any) -> OrderSystem:
        orders = self.turn.agent.orders(session)
        if getattr(orders, "local", True):  # the built-in store: this session's transaction
            return orders
        if self.remembered is None:
            self.remembered = Remembering(orders)
        return self.remembered

    def _context(self, session: Any, customer_id: str | None) -> ToolContext:
        turn = self.turn
        return ToolContext(
            session=session,
            settings=turn.settings,
            conversation_id=turn.conversation_id,
            customer_id=customer_id,
            orders=self._orders(session),
            kb=turn.agent.kb,
            citations=turn.citations,
            client=turn.client,
            customer_said=turn._customer_said,
        )

    def prepare(self, session: Any, customer_id: str | None) -> None:
        """The calls that need no write transaction, with no write lock held."""
        done = _Done(customer_id)
        ctx = self._context(session, customer_id)
        for use in self.uses:
            if self.tools.writes(use["name"]):
                break
            self._run(use, ctx, done)
        self.prepared = done
        rest = self.uses[done.count :]
        if rest and self.remembered is not None:
            self._read_ahead(rest, self._context(session, customer_id))

    def _read_ahead(self, uses: list[dict[str, Any]], ctx: ToolContext) -> None:
        """Read what the calls from the first that writes on will read from the remote order
        system, as if the customer that call would verify were verified (only the answers
        are kept; every call runs again, for real, in the transaction). Only calls that read
        through the order system run ahead: the knowledge base or an extra tool of the shop's
        server would be asked twice."""
        ctx.citations = list(ctx.citations)  # numbered for real, when the calls run
        for use in uses:
            name, raw = use["name"], use.get("input")
            if self.tools.writes(name):
                ctx.customer_id = self.tools.prefetch(name, raw, ctx) or ctx.customer_id
                continue
            if not self.tools.reads_ahead(name):  # its reads are not remembered: not twice
                continue
            if self.tools.kind(name) == Kind.CHANGE:
                self.tools.preview(name, raw, ctx)
            else:
                self.tools.run(name, raw, ctx)

    def __call__(self, session: Any, customer_id: str | None) -> Round:
        """The rest of the calls, in the round's write transaction."""
        done = self.prepared
        if done is None or done.customer_id != customer_id:
            if done is not None:
                log.warning("conversation %s: the verified customer changed while the round's "
                            "tools ran; running them again", self.turn.conversation_id)  # fmt: skip
            done = _Done(customer_id)
        ctx = self._context(session, customer_id)
        for use in self.uses[done.count :]:
            self._run(use, ctx, done)
        self.turn.calls.extend(done.calls)
        self.finished = done.finished
        return Round(done.results, ctx.customer_id, done.proposal)

    def _run(self, use: dict[str, Any], ctx: ToolContext, done: _Done) -> None:
        tools, settings = self.tools, self.turn.settings
        done.count += 1
        name, raw = use["name"], use.get("input")
        outcome: ToolOutcome | Preview
        if tools.kind(name) != Kind.CHANGE:
            outcome = tools.run(name, raw, ctx)
        elif done.proposal is not None:
            outcome = ToolOutcome(consent.ONE_AT_A_TIME, True)
        else:
            outcome = tools.preview(name, raw, ctx, language=self.turn.language())
        if isinstance(outcome, Preview):  # held: its result comes with the answer
            done.proposal = Proposal(name, outcome.arguments, outcome.summary, use["id"],
                                     self.expires_at)  # fmt: skip
            # A call of this turn all the same (proposed, not failed); the turn that settles
            # it lists it again with its outcome.
            done.calls.append(ToolCall(name, use.get("input") or {}, False))
            return
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": use["id"],
            "content": truncate_tool_result(outcome.content, settings.tool_result_max_chars),
        }
        if outcome.is_error:
            block["is_error"] = True
        done.results.append(block)
        done.finished.append(ToolFinished(use["id"], name, outcome.is_error, outcome.content))
        error, content = outcome.is_error, outcome.content
        done.calls.append(ToolCall(name, use.get("input") or {}, error,
                                   error and waits_for_verification(content),
                                   error and waits(content)))  # fmt: skip


def _merge(first: ModelReply, more: ModelReply) -> ModelReply:
    """A continued reply: the continuation's leading text joins the cut-off text block.

    The continuation's own thinking blocks are left out: they were written after the "please
    continue" exchange, which is not stored, so no later request could carry them back."""
    content = [dict(b) for b in first.content]
    rest = [b for b in more.content if b.get("type") not in THINKING_TYPES]
    if content and rest and content[-1].get("type") == "text" and rest[0].get("type") == "text":
        content[-1]["text"] = content[-1]["text"] + rest.pop(0)["text"]
    return ModelReply(content + rest, more.stop_reason, more.model, _sum(first.usage, more.usage))


def _sum(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}


def _with_usage(reply: ModelReply, earlier: dict[str, int]) -> ModelReply:
    """`reply`, also carrying the usage of a call it replaces (every call is billed)."""
    reply.usage = _sum(reply.usage, earlier)
    return reply


def cited(text: str, citations: list[Citation]) -> list[Citation]:
    """The sources a reply refers to as [n], in the order of their numbers."""
    numbers = {int(n) for n in re.findall(r"\[(\d{1,3})\]", text)}
    return [c for c in citations if c.number in numbers]
