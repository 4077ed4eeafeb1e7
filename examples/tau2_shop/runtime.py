"""What both faces share: running a tool with the test faults, and the bearer-token gate.

Faults are off by default and read from the environment once, at start:

- `TAU2_SHOP_DELAY_SECONDS`: sleep that long before answering every tool call;
  `TAU2_SHOP_DELAY_TOOLS` (a comma list of tool names) limits the delay to those tools.
- `TAU2_SHOP_HOLD_DIR`: a folder; a call of a tool the delay applies to (every tool when
  `TAU2_SHOP_DELAY_TOOLS` is unset) first leaves a file `<tool>.<uuid>.arrived` there, then
  waits until a file `release` appears before it runs and answers: a test sees that the
  call is in flight, keeps it there as long as it needs, and counts the calls that came.
- `TAU2_SHOP_CRASH_ON`: a tool name (or a comma list); when it is called the process exits at
  once with `os._exit(1)`, AFTER a change tool's change is written: the change happened, the
  caller never hears. A refused change crashes too, having written nothing.
- `TAU2_SHOP_MALFORMED`: a tool name (or a comma list); it answers a record with the needed
  fields missing (an order without `user_id` and `status`, a user without `user_id`, `email`
  and `orders`, a product without `product_id` and `variants`, a found user id as empty text
  over MCP or `{}` over REST, the product types as a list of names). A change still happens.
- `TAU2_SHOP_HUGE`: a tool name (or a comma list); it answers about 5 MB: a record gains a
  `padding` field of 5,000,000 characters, a text answer is followed by as many.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.tau2_shop.store import Store

log = logging.getLogger("tau2_shop")

HUGE_PADDING = 5_000_000

# The fields a client needs and a malformed answer leaves out, by the kind of record a tool answers.
_MALFORMED_DROP = {
    "order": ("user_id", "status"),
    "user": ("user_id", "email", "orders"),
    "product": ("product_id", "variants"),
    "user_id": ("user_id",),
}
_TOOL_KIND = {
    "find_user_id_by_email": "user_id",
    "find_user_id_by_name_zip": "user_id",
    "get_user_details": "user",
    "get_order_details": "order",
    "get_product_details": "product",
    "list_all_product_types": "product_types",
    "modify_user_address": "user",
}  # every other change answers an order


def _names(value: str | None) -> frozenset[str]:
    return frozenset(name.strip() for name in (value or "").split(",") if name.strip())


@dataclass(frozen=True)
class Faults:
    delay_seconds: float = 0.0
    delay_tools: frozenset[str] = field(default_factory=frozenset)  # empty: every tool
    crash_on: frozenset[str] = field(default_factory=frozenset)
    malformed: frozenset[str] = field(default_factory=frozenset)
    huge: frozenset[str] = field(default_factory=frozenset)
    hold_dir: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Faults:
        env = dict(os.environ) if env is None else env
        return cls(
            delay_seconds=float(env.get("TAU2_SHOP_DELAY_SECONDS") or 0),
            delay_tools=_names(env.get("TAU2_SHOP_DELAY_TOOLS")),
            crash_on=_names(env.get("TAU2_SHOP_CRASH_ON")),
            malformed=_names(env.get("TAU2_SHOP_MALFORMED")),
            huge=_names(env.get("TAU2_SHOP_HUGE")),
            hold_dir=env.get("TAU2_SHOP_HOLD_DIR") or "",
        )

    def describe(self) -> str:
        parts = []
        if self.delay_seconds:
            where = ",".join(sorted(self.delay_tools)) or "every tool"
            parts.append(f"delay {self.delay_seconds}s on {where}")
        for label, names in (("crash on", self.crash_on), ("malformed", self.malformed)):
            if names:
                parts.append(f"{label} {','.join(sorted(names))}")
        if self.huge:
            parts.append(f"huge {','.join(sorted(self.huge))}")
        if self.hold_dir:
            parts.append(f"held in {self.hold_dir}")
        return "; ".join(parts) or "none"

    async def delay(self, tool: str) -> None:
        if self.delay_tools and tool not in self.delay_tools:
            return
        if self.hold_dir:
            folder = Path(self.hold_dir)
            (folder / f"{tool}.{uuid.uuid4().hex}.arrived").touch()
            while not (folder / "release").exists():
                await anyio.sleep(0.02)
        if self.delay_seconds > 0:
            await anyio.sleep(self.delay_seconds)

    def crash(self, tool: str) -> None:
        if tool in self.crash_on:
            log.error("TAU2_SHOP_CRASH_ON=%s: exiting without answering", tool)
            for stream in (sys.stderr, sys.stdout):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(1)

    def shape(self, tool: str, result: Any, *, rest: bool = False) -> Any:
        """The answer as the faults make it. `rest`: a found user id is `{"user_id": ...}`."""
        if rest and _TOOL_KIND.get(tool) == "user_id":
            result = {"user_id": result}
        elif rest and tool == "list_all_product_types":
            result = json.loads(result)
        if tool in self.malformed:
            result = _malformed(tool, result)
        if tool in self.huge:
            result = _huge(result)
        return result


def _malformed(tool: str, result: Any) -> Any:
    kind = _TOOL_KIND.get(tool, "order")
    if kind == "product_types":
        names = json.loads(result) if isinstance(result, str) else result
        return json.dumps(sorted(names)) if isinstance(result, str) else sorted(names)
    if isinstance(result, str):
        return ""
    return {key: value for key, value in result.items() if key not in _MALFORMED_DROP[kind]}


def _huge(result: Any) -> Any:
    padding = ("padding " * (HUGE_PADDING // 8 + 1))[:HUGE_PADDING]
    if isinstance(result, dict):
        return {**result, "padding": padding}
    if isinstance(result, list):
        return [*result, padding]
    return f"{result}\n{padding}"


async def run_tool(store: Store, faults: Faults, tool: str, arguments: dict[str, Any]) -> Any:
    """Run a tool with the faults around it. Raises `ToolFailure` for a refusal."""
    await faults.delay(tool)
    try:
        # The store blocks (a file lock, a file write): off the event loop.
        return await anyio.to_thread.run_sync(partial(store.call, tool, **arguments))
    finally:
        faults.crash(tool)


class BearerGate:
    """ASGI middleware: with a token, every HTTP request needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token:
            sent = b""
            for name, value in scope.get("headers", ()):
                if name.lower() == b"authorization":
                    sent = value
                    break
            if not hmac.compare_digest(sent, b"Bearer " + self.token.encode()):
                body = json.dumps({"error": "missing or wrong bearer token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="tau2_shop"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr only: in stdio mode stdout carries the protocol and nothing else."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
