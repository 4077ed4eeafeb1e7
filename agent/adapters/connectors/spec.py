"""A connector file: how supportbot reaches a shop's order system (an MCP server, or an HTTP
API) and how each operation of the order-system port maps to it.

YAML, its path in SUPPORTBOT_CONNECTOR_FILE. Secrets never live in the file: `${NAME}` in a
server's command, URL, headers or environment is replaced by the environment variable NAME
when the file is loaded (a missing one is an error). `extends: tau2` starts from the shipped
mapping for systems that speak the τ²-bench retail tool set (tau2.yaml beside this module), so
a file only says where the server is. The README's "Connecting the shop's order system" is the
reference.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.errors import SupportbotError
from tools.order_system import CHANGES

TAU2 = Path(__file__).with_name("tau2.yaml")

# The port's operations (tools/order_system.py); every one must be mapped but the name + zip
# look-up, which no tool of ours needs.
READS = ("customer_by_email", "customer", "order", "product", "products")
# The values each operation's templates may use.
VALUES = {
    "customer_by_email": ("email",),
    "customer_by_name_zip": ("first_name", "last_name", "zip"),
    "customer": ("customer_id",),
    "order": ("order_id",),
    "product": ("product_id",),
    "products": (),
    "cancel_pending_order": ("order_id", "reason"),
    "modify_pending_order_address": ("order_id", "address1", "address2", "city", "state",
                                     "country", "zip"),
    "modify_pending_order_items": ("order_id", "item_ids", "new_item_ids", "payment_method_id"),
    "modify_pending_order_payment": ("order_id", "payment_method_id"),
    "modify_user_address": ("user_id", "address1", "address2", "city", "state", "country",
                            "zip"),
    "return_delivered_order_items": ("order_id", "item_ids", "payment_method_id"),
    "exchange_delivered_order_items": ("order_id", "item_ids", "new_item_ids",
                                       "payment_method_id"),
}  # fmt: skip
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConnectorError(SupportbotError):
    """A connector file that cannot be used; the message says what and where, in one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Operation(_Strict):
    """One operation: an MCP tool (`tool`, `arguments`) or an HTTP request (`method`, `path`,
    `query`, `body`), and what its answer is (`result`), found at `at` (a dotted path) in it."""

    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str | None = None
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    result: Literal["id", "customer", "order", "product", "products"]
    at: str | None = None


class McpServer(_Strict):
    command: list[str] | None = None  # stdio: the server's command line
    url: str | None = None  # Streamable HTTP
    headers: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None

    @model_validator(mode="after")
    def _one(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of mcp.command and mcp.url")
        return self


class HttpServer(_Strict):
    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)


class ExtraTool(_Strict):
    """Another tool of the MCP server offered to the model, as the file lists it."""

    tool: str
    # A change (held for the customer's confirmation) unless the server annotates it
    # readOnlyHint: true and this does not say it changes something.
    changes: bool | None = None
    # Arguments filled from the verified customer's id, never by the model (and hidden from
    # its schema).
    customer_arguments: list[str] = Field(default_factory=list)
    description: str | None = None


class ConnectorSpec(_Strict):
    name: str = "shop"
    extends: Literal["tau2"] | None = None
    mcp: McpServer | None = None
    http: HttpServer | None = None
    money: Literal["dollars", "cents"] = "dollars"
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    call_timeout: float = Field(default=10.0, gt=0, le=300)
    read_retries: int = Field(default=2, ge=0, le=10)  # reads only: a change is never retried
    retry_backoff: float = Field(default=0.2, ge=0, le=10)  # seconds, doubled each retry
    breaker_failures: int = Field(default=5, ge=1)  # failures in a row that open the breaker
    breaker_cooldown: float = Field(default=30.0, gt=0)  # seconds before it tries again
    max_answer_bytes: int = Field(default=1_000_000, ge=1000)
    operations: dict[str, Operation]
    fields: dict[str, dict[str, str]] = Field(default_factory=dict)
    extra_tools: list[ExtraTool] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ConnectorSpec:
        if (self.mcp is None) == (self.http is None):
            raise ValueError("give exactly one of mcp: and http:")
        missing = [op for op in (*READS, *CHANGES) if op not in self.operations]
        if missing:
            raise ValueError(f"operations not mapped: {', '.join(missing)}")
        unknown = set(self.operations) - set(VALUES)
        if unknown:
            raise ValueError(f"unknown operations: {', '.join(sorted(unknown))}")
        for name, op in self.operations.items():
            if self.mcp is not None and not op.tool:
                raise ValueError(f"operation {name} needs tool: (an MCP server)")
            if self.http is not None and not op.path:
                raise ValueError(f"operation {name} needs path: (an HTTP API)")
            used = set(_TEMPLATE.findall(yaml.safe_dump(
                [op.arguments, op.path, op.query, op.body])))  # fmt: skip
            if wrong := used - set(VALUES[name]):
                raise ValueError(
                    f"operation {name} uses {', '.join(sorted(wrong))}; it has "
                    f"{', '.join(VALUES[name]) or 'no values'}"
                )
        if self.http is not None and self.extra_tools:
            raise ValueError("extra_tools are offered by MCP servers only")
        return self

    @property
    def where(self) -> str:
        """The server, for logs and checks (never a header)."""
        if self.mcp is not None:
            return self.mcp.url or " ".join(self.mcp.command or [])
        assert self.http is not None
        return self.http.base_url

    def field(self, record: str, name: str) -> str:
        return self.fields.get(record, {}).get(name, name)


def load(path: Path) -> ConnectorSpec:
    """The connector file at `path`, checked; ConnectorError says what is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectorError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ConnectorError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if not isinstance(raw, dict):
        raise ConnectorError(f"{path}: expected a mapping at the top")
    return build(raw, str(path))


def tau2_server(target: str, name: str = "tau2") -> ConnectorSpec:
    """The one-setting connection to a τ²-retail MCP server: a Streamable HTTP URL, or the
    command that starts it over stdio."""
    target = target.strip()
    server: dict[str, Any] = (
        {"url": target} if target.startswith(("http://", "https://"))
        else {"command": shlex.split(target)}
    )  # fmt: skip
    return build({"name": name, "extends": "tau2", "mcp": server}, "SUPPORTBOT_TAU2_SERVER")


def build(raw: dict[str, Any], origin: str) -> ConnectorSpec:
    if raw.get("extends") == "tau2":
        raw = _merged(yaml.safe_load(TAU2.read_text(encoding="utf-8")), raw)
    try:
        raw = {**raw, **{k: _env(raw[k], origin) for k in ("mcp", "http") if k in raw}}
        return ConnectorSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ConnectorError(f"{origin}: {problems}") from None


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A file over the mapping it extends: its settings replace the mapping's; an operation it
    names replaces the keys it gives (`arguments` whole), and `fields` of a record replace one
    field at a time."""
    merged = {**base, **over}
    for section in ("operations", "fields"):
        if isinstance(base.get(section), dict) and isinstance(over.get(section), dict):
            merged[section] = {
                **base[section],
                **{
                    name: {**base[section].get(name, {}), **value}
                    if isinstance(value, dict) else value
                    for name, value in over[section].items()
                },
            }  # fmt: skip
    return merged


def _env(value: Any, origin: str) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConnectorError(f"{origin}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _env(v, origin) for k, v in value.items()}
    if isinstance(value, list):
        return [_env(v, origin) for v in value]
    return value
