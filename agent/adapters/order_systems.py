"""Which order system the product runs on, from settings: the built-in store (the default),
or a shop's own system through a connector (agent/adapters/connectors/): a connector file
(SUPPORTBOT_CONNECTOR_FILE), or a τ²-retail MCP server named by one setting
(SUPPORTBOT_TAU2_SERVER: its URL, or the command that starts it)."""

from __future__ import annotations

from typing import Any

from agent.adapters.builtin_orders import NAME as BUILTIN
from agent.adapters.builtin_orders import BuiltinOrders
from agent.adapters.connectors import ConnectorSpec, RemoteOrders, connect
from agent.adapters.connectors.spec import load, tau2_server
from agent.config import Settings
from tools.order_system import OrderSystem


def connector_spec(settings: Settings) -> ConnectorSpec | None:
    """The connector the settings name, checked (ConnectorError says what is wrong); None for
    the built-in store."""
    if settings.connector_file is not None:
        return load(settings.connector_file)
    if settings.tau2_server:
        return tau2_server(settings.tau2_server)
    return None


class OrderSystems:
    """The order system for a session: the built-in store works on it; a connector
    (`remote`) holds its own connection and serves every session."""

    def __init__(self, remote: RemoteOrders | None = None) -> None:
        self.remote = remote

    def __call__(self, session: Any) -> OrderSystem:
        return self.remote if self.remote is not None else BuiltinOrders(session)

    @property
    def name(self) -> str:
        return self.remote.name if self.remote is not None else BUILTIN


def order_system(settings: Settings) -> OrderSystems:
    """What the settings name (ConnectorError when a connector file is wrong)."""
    spec = connector_spec(settings)
    return OrderSystems(connect(spec) if spec is not None else None)
