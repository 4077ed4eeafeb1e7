"""Turns typed functions into Claude tools and runs the calls the model asks for.

A tool is a plain function with type hints and a docstring. Its `input_schema` is derived from
the signature; a parameter typed `ToolContext` is injected by the registry and never appears in
the schema, so the model cannot choose whose data a tool reads.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ValidationError, create_model

from agent.tracing import tool_call
from tools.order_system import OutcomeUnknown
from tools.tool_context import ToolContext, ToolError

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a tool does to the store."""

    READ = "read"  # looks things up (or records what the conversation itself needs)
    CHANGE = "change"  # changes the customer's orders or account: needs their confirmation


# The prompt's line about changes, for the registered ones.
CONFIRMING = (
    "Order changes ({names}) are carried out only when the customer confirms: call the tool "
    "once you have every detail (all items to change, the payment method, the reason); the "
    "customer is then shown the change to confirm and you receive the outcome as the tool's "
    "result. One change at a time."
)


Label = Callable[[dict[str, Any]], str]
# What a store-changing call would do, in the customer's words: (its arguments, the result of
# its dry run, the customer's language: "en", "es", "de" or "fr") -> "Cancel order #W2611340:
# $1,093.34 back to your Visa ending in 7711." A summary with no words for a language says it
# in English (its facts are what matter: the customer confirms exactly these). A summarize
# of two parameters (written before summaries had languages) is still called, with two.
Summarize = Callable[[dict[str, Any], Any, str], str] | Callable[[dict[str, Any], Any], str]
# What a tool that records in the store reads first, before the round's write transaction
# (its answers are remembered for the call itself): (context, validated input) -> the
# customer the call would verify, if it verifies one (the calls after it are read ahead for
# them; whether it does is decided by the call).
Prefetch = Callable[[ToolContext, Any], str | None]


@dataclass(frozen=True)
class Tool:
    """One tool, declared in one place: its function (the schema comes from the signature),
    what the customer sees while it runs, its kind, the line of the system prompt that tells
    the model when to use it, and for a change, how its proposal reads. (How the offline model
    plans and words it lives beside that model: agent/models/offline_plans.py.)"""

    name: str
    description: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    context_param: str | None
    label: Label
    kind: Kind = Kind.READ
    guidance: str | None = None  # a bullet of the system prompt's "How you work"
    summarize: Summarize | None = None  # CHANGE tools: the proposal the customer confirms
    # It records in the store itself (a verification attempt, a ticket): it runs inside the
    # round's write transaction. Every other call of a round runs before it, with no write
    # lock held (agent.engine.loop); `prefetch` reads what it will need from the order
    # system there too.
    writes: bool = False
    prefetch: Prefetch | None = None
    # It reads only through the order system (ctx.orders): after a call that `writes` in the
    # same round, it may be run ahead for the customer that call would verify, to read what
    # it needs before the write transaction (changes, checked in a dry run, always may).
    reads_orders: bool = False

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": _strip_titles(self.input_model.model_json_schema()),
        }


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool
    # A change sent to the order system that did not answer: whether it happened is unknown.
    unknown: bool = False


@dataclass(frozen=True)
class Preview:
    """A store-changing call that would succeed now: what to hold for the customer."""

    arguments: dict[str, Any]  # validated, as they will run
    summary: str
    content: str  # the call's result, as the model would see it


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    label: str | Label | None = None,
    kind: Kind = Kind.READ,
    guidance: str | None = None,
    summarize: Summarize | None = None,
    writes: bool = False,
    prefetch: Prefetch | None = None,
    reads_orders: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    label: str | Label | None = None,
    kind: Kind = Kind.READ,
    guidance: str | None = None,
    summarize: Summarize | None = None,
    writes: bool = False,
    prefetch: Prefetch | None = None,
    reads_orders: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Declare a tool: `@tool(label=..., kind=..., guidance=...)` above
    its function (or `tool(fn)` with the defaults). The name comes from the function and the
    model's manual from its docstring. A store-changing tool (`kind=Kind.CHANGE`) also says
    how its proposal reads (`summarize=`)."""

    def declare(fn: Callable[..., Any]) -> Tool:
        hints = get_type_hints(fn, include_extras=True)
        fields: dict[str, Any] = {}
        context_param = None
        for name, param in inspect.signature(fn).parameters.items():
            annotation = hints.get(name, Any)
            if annotation is ToolContext:
                context_param = name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[name] = (annotation, default)
        model = create_model(f"{fn.__name__}_input", **fields)
        description = inspect.getdoc(fn)
        if not description:
            raise ValueError(f"tool {fn.__name__} needs a docstring: it is the model's manual")
        if kind == Kind.CHANGE and summarize is None:
            raise ValueError(f"tool {fn.__name__} changes the store: it needs summarize=")
        shown = _label(label, fn.__name__)
        return Tool(fn.__name__, description, fn, model, context_param, shown, kind, guidance,
                    summarize, writes, prefetch, reads_orders)  # fmt: skip

    return declare(fn) if fn is not None else declare


def _label(label: str | Label | None, name: str) -> Label:
    if callable(label):
        return label
    text = label if label is not None else f"Using {name}"

    def fixed(args: dict[str, Any]) -> str:
        return text

    return fixed


def _strip_titles(schema: Any) -> Any:
    """Pydantic's auto-generated titles only add tokens to every request."""
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _to_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {t.name: t for t in tools}
        # Built once: identical bytes on every request (a stable, cacheable prefix).
        self._schemas = [t.schema() for t in self._tools.values()]

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return self._schemas

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def label(self, name: str, args: dict[str, Any]) -> str:
        """What the customer sees while a call runs ("Looking up order #W2611340")."""
        found = self._tools.get(name)
        return found.label(args or {}) if found else f"Using {name}"

    def guidance(self) -> list[str]:
        """The system prompt's lines about the tools, in the registry's (fixed) order: each
        tool's own line, and where the first change appears, how every change is confirmed
        (derived from the changes registered, so a new one needs no other edit)."""
        lines: list[str] = []
        changes = self.changes()
        for t in self._tools.values():
            if changes and t.name == changes[0]:
                lines.append(CONFIRMING.format(names=", ".join(changes)))
            if t.guidance:
                lines.append(t.guidance)
        return lines

    def changes(self) -> list[str]:
        """The store-changing tools, in the registry's order."""
        return [t.name for t in self._tools.values() if t.kind == Kind.CHANGE]

    def kind(self, name: str) -> Kind:
        found = self._tools.get(name)
        return found.kind if found else Kind.READ

    def writes(self, name: str) -> bool:
        """Whether a call of `name` records in the store itself (it runs in the round's write
        transaction)."""
        found = self._tools.get(name)
        return found is not None and found.writes

    def reads_ahead(self, name: str) -> bool:
        """Whether a call of `name` may be run ahead on a remembering order system (its
        result thrown away): it reads only through the order system, or is a change (a dry
        run)."""
        found = self._tools.get(name)
        return found is not None and (found.reads_orders or found.kind == Kind.CHANGE)

    def prefetch(self, name: str, raw_input: Any, ctx: ToolContext) -> str | None:
        """Read ahead, with no write lock held, what a call of a tool that `writes` will read
        from the order system (a remembering one: agent.engine.loop): the customer it would
        verify, if any. Never raises: the call itself reports any failure."""
        found = self._tools.get(name)
        if found is None or found.prefetch is None:
            return None
        try:
            return found.prefetch(ctx, found.input_model.model_validate(raw_input or {}))
        except Exception as exc:  # the call reads again, and says what failed
            log.debug("prefetch for %s: %s", name, exc)
            return None

    def run(self, name: str, raw_input: Any, ctx: ToolContext) -> ToolOutcome:
        """Run one call. Never raises: every failure becomes an error result for the model.

        Each call runs in a savepoint: a crash inside a tool undoes its writes, and so does a
        store-changing tool's refusal, while a read tool's ToolError keeps them (a failed
        verification attempt must still count).
        """
        outcome, _ = self._call(name, raw_input, ctx, keep=True)
        return outcome

    def preview(
        self,
        name: str,
        raw_input: Any,
        ctx: ToolContext,
        *,
        apply: bool = False,
        language: str = "en",
    ) -> Preview | ToolOutcome:
        """A store-changing call run against the store as it is now and rolled back: the
        proposal to hold for the customer, its summary in their `language` (kb/language.py),
        or the error result the model gets at once (a rule refuses it, the customer is not
        verified, the input is invalid). With `apply` the call is kept (staff, who confirm a
        change themselves)."""
        found = self._tools.get(name)
        outcome, arguments = self._call(name, raw_input, ctx, keep=apply)
        if outcome.is_error or found is None or found.summarize is None:
            return outcome
        try:
            summary = _summary(found.summarize, arguments, json.loads(outcome.content), language)
        except Exception:
            log.exception("summarizing a proposed %s failed", name)
            return ToolOutcome(f"The {name} tool failed unexpectedly. Try again later.", True)
        return Preview(arguments, summary, outcome.content)

    def _call(
        self, name: str, raw_input: Any, ctx: ToolContext, *, keep: bool
    ) -> tuple[ToolOutcome, dict[str, Any]]:
        with tool_call(name, dry_run=not keep) as done:  # an `execute_tool` span, when tracing
            outcome, arguments = self._execute(name, raw_input, ctx, keep=keep)
            done(outcome.is_error)
            return outcome, arguments

    def _execute(
        self, name: str, raw_input: Any, ctx: ToolContext, *, keep: bool
    ) -> tuple[ToolOutcome, dict[str, Any]]:
        found = self._tools.get(name)
        if found is None:
            known = ", ".join(self._tools)
            return ToolOutcome(f"Unknown tool {name!r}. Available: {known}", True), {}
        try:
            args = found.input_model.model_validate(raw_input or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return ToolOutcome(f"Invalid input for {name}: {problems}", True), {}
        arguments = args.model_dump(mode="json")
        kwargs = dict(args)
        if found.context_param:
            kwargs[found.context_param] = ctx
        if found.kind == Kind.CHANGE:
            ctx.dry_run = not keep  # a proposal is checked; only a confirmed change is sent
        savepoint = ctx.session.begin_nested()
        try:
            result = found.fn(**kwargs)
        except ToolError as exc:
            if keep and found.kind == Kind.READ:
                savepoint.commit()
            else:
                _undo(ctx, savepoint)
            detail = getattr(exc, "detail", None)
            if detail:
                log.warning("tool %s: %s (%s)", name, type(exc).__name__, detail)
            return ToolOutcome(str(exc), True, isinstance(exc, OutcomeUnknown)), arguments
        except Exception:
            _undo(ctx, savepoint)
            log.exception("tool %s failed", name)
            return ToolOutcome(f"The {name} tool failed unexpectedly. Try again later.", True), {}
        content = _to_json(result)
        if keep:
            savepoint.commit()
        else:
            _undo(ctx, savepoint)
        return ToolOutcome(content, False), arguments


def _undo(ctx: ToolContext, savepoint: Any) -> None:
    """Roll a call's savepoint back, and forget what the session had loaded (rows the call
    changed would otherwise be read back as it left them)."""
    savepoint.rollback()
    expire = getattr(ctx.session, "expire_all", None)
    if expire is not None:
        expire()


def _summary(summarize: Summarize, arguments: dict[str, Any], result: Any, language: str) -> str:
    """The proposal in the customer's `language`; a summarize that takes no language (a
    shop's tool written before) says it as it always did."""
    try:
        inspect.signature(summarize).bind(arguments, result, language)
    except TypeError:
        return summarize(arguments, result)  # type: ignore[call-arg]
    return summarize(arguments, result, language)  # type: ignore[call-arg]
