"""Other tools of a shop's MCP server, offered to the model because the connector file lists
them (`extra_tools`), and only those.

Each becomes a tool of the registry with the server's own input schema, less the arguments
the file fills from the verified customer (`customer_arguments`: the model never sees or sets
them). A tool the server does not annotate `readOnlyHint: true`, or that the file says
`changes: true`, is a change: held for the customer's confirmation like the seven, and sent to
the server only once they confirm, once. What the server answers is the tool's result.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import ConfigDict, create_model

from agent.adapters.connectors.mcp_link import ToolInfo
from agent.adapters.connectors.mcp_orders import McpOrdersLink
from agent.adapters.connectors.remote import NoAnswer, NotSent, RemoteOrders, TooLarge
from agent.adapters.connectors.spec import ExtraTool, Operation
from tools.order_system import BadAnswer, OutcomeUnknown, SystemRefused, Unreachable
from tools.registry import Kind, Tool
from tools.tool_context import ToolContext, ToolError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteTool(Tool):
    """A tool whose schema is the server's (less the customer's arguments)."""

    server_schema: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.server_schema or {"type": "object"}}  # fmt: skip


def extra_tools(system: RemoteOrders, taken: set[str]) -> list[Tool]:
    """The tools the connector file lists, as the server describes them now; a tool missing
    from the server, or named like one of ours, is left out and logged."""
    link = system.link
    if not system.spec.extra_tools or not isinstance(link, McpOrdersLink):
        return []
    try:
        offered = {t.name: t for t in link.link.tools()}
    except Exception as exc:
        log.error("order system %s: its extra tools are not offered (cannot list them: %s)",
                  system.name, exc)  # fmt: skip
        return []
    made: list[Tool] = []
    for wanted in system.spec.extra_tools:
        info = offered.get(wanted.tool)
        if info is None or wanted.tool in taken:
            why = "is not on the server" if info is None else "clashes with a tool of ours"
            log.error("order system %s: extra tool %s %s; not offered", system.name, wanted.tool,
                      why)  # fmt: skip
            continue
        made.append(_tool(system, wanted, info))
    return made


def _tool(system: RemoteOrders, wanted: ExtraTool, info: ToolInfo) -> Tool:
    hidden = set(wanted.customer_arguments)
    schema = dict(info.input_schema or {"type": "object"})
    visible = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                        if k not in hidden},
               "required": [r for r in schema.get("required", []) if r not in hidden]}  # fmt: skip
    changes = wanted.changes if wanted.changes is not None else not info.read_only
    kind = Kind.CHANGE if changes else Kind.READ
    name = info.name

    def run(ctx: ToolContext, **arguments: Any) -> Any:
        if hidden:
            customer_id = ctx.require_customer()
            arguments = {**arguments, **{k: customer_id for k in hidden}}
        try:
            jsonschema.validate(arguments, schema)
        except jsonschema.ValidationError as exc:
            raise ToolError(f"Invalid input for {name}: {exc.message}") from None
        if kind == Kind.CHANGE and ctx.dry_run:
            return {"tool": name, "arguments": {k: v for k, v in arguments.items()
                                                if k not in hidden}}  # fmt: skip
        return _call(system, name, arguments, change=kind == Kind.CHANGE, ctx=ctx)

    model = create_model(f"{name}_input", __config__=ConfigDict(extra="allow"))
    return RemoteTool(
        name=name,
        description=wanted.description or info.description or f"The shop's {name} tool.",
        fn=run,
        input_model=model,
        context_param="ctx",
        label=lambda _args: f"Using {name}",
        kind=kind,
        summarize=(lambda a, r: f"Run {name} in the shop's system with "
                   f"{json.dumps(r.get('arguments', a), ensure_ascii=False)}.")
        if kind == Kind.CHANGE else None,
        server_schema=visible,
    )  # fmt: skip


def _call(
    system: RemoteOrders, name: str, arguments: dict[str, Any], *, change: bool, ctx: ToolContext
) -> Any:
    """One call through the connector (its breaker, its stats); reads are not retried here:
    the model may ask again."""
    operation = Operation(tool=name, arguments={k: f"{{{k}}}" for k in arguments}, result="id")
    try:
        answer = system.send(name, operation, arguments)
    except NotSent as exc:
        raise Unreachable(f"{name}: {exc}") from exc
    except (NoAnswer, TooLarge) as exc:
        if change:
            raise OutcomeUnknown(f"{name}: {exc}") from exc
        raise BadAnswer(f"{name}: {exc}") from exc
    if answer.is_error:
        if change:
            raise SystemRefused(answer.text[:500])
        raise ToolError(answer.text[:2000])
    if change:
        ctx.receipts.append(answer.text[:20_000])
    return answer.structured if answer.structured is not None else answer.text
