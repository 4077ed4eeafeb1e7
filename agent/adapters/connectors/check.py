"""`supportbot connectors check`: a connector file against the live system. Every mapped MCP
tool exists and its arguments fit the tool's input schema, the extra tools exist, and a sample
read works (the product list, one product; a customer and their newest order when an email is
given). Each problem is one line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema

from agent.adapters.connectors import connect
from agent.adapters.connectors.mcp_orders import McpOrdersLink
from agent.adapters.connectors.remote import RemoteOrders, render
from agent.adapters.connectors.spec import VALUES, ConnectorSpec
from tools.order_system import CHANGES
from tools.tool_context import ToolError

_SAMPLE: dict[str, Any] = {"item_ids": ["1"], "new_item_ids": ["2"]}


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def check(spec: ConnectorSpec, *, email: str | None = None) -> list[Finding]:
    system = connect(spec)
    try:
        return [*_tools(spec, system), *_reads(system, email)]
    finally:
        system.close()


def _tools(spec: ConnectorSpec, system: RemoteOrders) -> list[Finding]:
    link = system.link
    if not isinstance(link, McpOrdersLink):
        return []
    try:
        tools = {t.name: t for t in link.link.tools()}
    except Exception as exc:
        return [Finding(False, f"cannot list the server's tools: {exc}")]
    found = [Finding(True, f"{len(tools)} tools on {spec.where}")]
    for name, operation in spec.operations.items():
        tool = tools.get(operation.tool or "")
        if tool is None:
            found.append(Finding(False, f"{name}: tool {operation.tool!r} is not on the server"))
            continue
        values = {v: _SAMPLE.get(v, "x") for v in VALUES[name]}
        arguments = render(operation.arguments, values)
        try:
            jsonschema.validate(arguments, tool.input_schema)
        except jsonschema.ValidationError as exc:
            found.append(Finding(False, f"{name}: arguments {sorted(arguments)} do not fit "
                                        f"{tool.name}'s schema: {exc.message}"))  # fmt: skip
            continue
        if name in CHANGES and tool.read_only:
            found.append(Finding(False, f"{name}: {tool.name} is annotated read-only, but it is "
                                        "mapped to a change"))  # fmt: skip
    for extra in spec.extra_tools:
        if extra.tool not in tools:
            found.append(Finding(False, f"extra tool {extra.tool!r} is not on the server"))
    return found


def _reads(system: RemoteOrders, email: str | None) -> list[Finding]:
    found: list[Finding] = []
    try:
        names = system.products()
        found.append(Finding(bool(names), f"products: {len(names)} listed"))
        if names:
            name, product_id = next(iter(names.items()))
            product = system.product(product_id)
            found.append(Finding(product is not None,
                                 f"product {product_id} ({name}): "
                                 + (f"{len(product.variants)} variants" if product
                                    else "not found")))  # fmt: skip
        if email:
            customer_id = system.customer_by_email(email)
            customer = system.customer(customer_id) if customer_id else None
            found.append(Finding(customer is not None, f"customer {email}: "
                                 + (customer.id if customer else "not found")))  # fmt: skip
            if customer is not None and customer.order_ids:
                newest = customer.order_ids[-1]
                order = system.order(newest)
                found.append(Finding(
                    order is not None and order.customer_id == customer.id,
                    f"order {newest}: " + (f"{order.status}, owner {order.customer_id}"
                                           if order else "not found"),
                ))  # fmt: skip
    except ToolError as exc:
        found.append(Finding(False, f"sample read failed: {getattr(exc, 'detail', '') or exc}"))
    return found
