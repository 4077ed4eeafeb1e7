"""Connectors: supportbot on a shop's own order system, through its MCP server or its HTTP
API, as a connector file (spec.py) maps the order-system port onto it (remote.py)."""

from __future__ import annotations

from agent.adapters.connectors.remote import RemoteOrders
from agent.adapters.connectors.spec import ConnectorSpec


def connect(spec: ConnectorSpec) -> RemoteOrders:
    """The port on the system `spec` describes; it connects lazily, on the first call."""
    if spec.mcp is not None:
        from agent.adapters.connectors.mcp_orders import McpOrdersLink

        return RemoteOrders(spec, McpOrdersLink(spec))
    from agent.adapters.connectors.http_link import HttpLink

    return RemoteOrders(spec, HttpLink(spec))


__all__ = ["ConnectorSpec", "RemoteOrders", "connect"]
