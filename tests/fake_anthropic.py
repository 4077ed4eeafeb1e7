"""A scripted fake of Anthropic's Messages API, served on 127.0.0.1 for the real SDK.

Tests enqueue the replies they need, in order; every request is recorded with its headers,
body and arrival time. Both JSON and server-sent-event responses are produced the way the real
API shapes them, and errors carry the real API's body and headers (`request-id`,
`retry-after`), so the SDK's own parsing, retries and stream accumulation are what is tested.

It enforces the documented request rules of the current models (claude-sonnet-5-5 and the
other 5.x families; see `_violation`): forced tool choice, sampling parameters, assistant
prefill, `thinking: disabled` and thinking budgets are a 400 `invalid_request_error`. Like
those models it thinks by default and signs its thinking blocks, binding each to the model and
to the request prefix it was written after: a block that comes back altered, after its prefix
changed, or missing from a tool loop is a 400; a block signed by a model the target cannot read
is dropped (as the API does). Text written before a tool call comes back as a progress-update
thinking block, readable only where the thinking display returns it. Prompt caching follows
the API: prefixes below the model's minimum are not cached, and entries live 5 minutes or an
hour (`ttl`) from their last use on the fake's clock (`advance`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_ids = itertools.count(1)


@dataclass
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    delay: float = 0.0
    usage: dict[str, int] | None = None
    stop_details: dict[str, Any] | None = None
    # Extended thinking: the thinking the model writes before this reply's content (a
    # reasoning block, returned empty unless the display is "summarized").
    reasoning: str = "Let me look at what the customer needs."


@dataclass
class ErrorReply:
    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Scripted = Reply | ErrorReply


def text(value: str, *, stop_reason: str = "end_turn", delay: float = 0.0) -> Reply:
    return Reply([{"type": "text", "text": value}], stop_reason, delay)


def tool_use(name: str, input: dict[str, Any], *, say: str | None = None) -> Reply:
    """One tool call, optionally after a sentence, as Claude often does."""
    return tool_uses((name, input), say=say)


def tool_uses(*calls: tuple[str, dict[str, Any]], say: str | None = None) -> Reply:
    """Several tool calls in one response (parallel tool use)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": say}] if say else []
    blocks += [
        {"type": "tool_use", "id": f"toolu_fake{next(_ids):05d}", "name": n, "input": i}
        for n, i in calls
    ]
    return Reply(blocks, "tool_use")


def refusal(category: str | None = "general_harms", explanation: str | None = None) -> Reply:
    details = {"type": "refusal", "category": category, "explanation": explanation}
    if category and explanation is None:
        details["explanation"] = f"This request was declined ({category})."
    return Reply([], "refusal", stop_details=details)


def structured(value: dict[str, Any]) -> Reply:
    """A structured-output reply: the JSON as the text of the text block."""
    return Reply([{"type": "text", "text": json.dumps(value)}])


def error(status: int, message: str = "", *, retry_after: float | None = None) -> ErrorReply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return ErrorReply(
        status, ERROR_TYPES.get(status, "api_error"), message or "fake error", headers
    )


# -- the current models' rules ------------------------------------------------------------------

# Families as the docs describe them (model overview, Sonnet 5.5 migration guide).
_RULES: dict[str, dict[str, Any]] = {
    "claude-sonnet-5-5": {"thinking": {"adaptive", "between_tools"}, "forced_tools": False,
                          "min_cache": 512, "reads": {"claude-sonnet-5", "claude-haiku-4-5"}},
    "claude-opus-5-5": {"thinking": {"adaptive"}, "forced_tools": False, "min_cache": 512,
                        "reads": {"claude-sonnet-5-5"}},
    "claude-sonnet-5": {"thinking": {"adaptive", "disabled"}, "forced_tools": True,
                        "min_cache": 1024, "reads": {"claude-haiku-4-5"}},
    "claude-haiku-4-5": {"thinking": {"disabled", "enabled"}, "forced_tools": True,
                         "min_cache": 4096, "legacy": True, "reads": set()},
    "claude-sonnet-4-5": {"thinking": {"disabled", "enabled"}, "forced_tools": True,
                          "min_cache": 1024, "legacy": True, "reads": set(),
                          "retired": date(2026, 11, 30)},
}  # fmt: skip
_LEGACY = {"thinking": {"disabled", "enabled"}, "forced_tools": True, "min_cache": 1024,
           "legacy": True, "reads": set()}  # fmt: skip
_SIGNING_KEY = b"fake-anthropic-signing-key"
_EFFORTS = {"low", "medium", "high", "xhigh", "max"}
DISPLAY_UPDATES_BETA = "thinking-display-updates-2026-08-18"


def family_of(model: str) -> str:
    name = str(model).lower().split("anthropic.", 1)[-1].split("@", 1)[0]
    return re.sub(r"(-\d{8})?(-v\d+(:\d+)?)?$", "", name)


def rules_for(model: str) -> dict[str, Any]:
    return _RULES.get(family_of(model), _LEGACY)


def retired(model: str, today: date | None = None) -> str | None:
    """The API's answer to a request for a model past its retirement date (model deprecations
    page: requests to a retired model fail), or None while it serves."""
    on = rules_for(model).get("retired")
    if on is None or on > (today or datetime.now(UTC).date()):
        return None
    return f"model: {model}"


def _thinking_on(body: dict[str, Any]) -> dict[str, Any] | None:
    """The thinking the request runs with (None: no thinking)."""
    rules = rules_for(body.get("model", ""))
    thinking = body.get("thinking")
    if thinking is None:
        return None if rules.get("legacy") else {"type": "adaptive", "display": "omitted"}
    if thinking.get("type") == "adaptive":
        return {"display": "omitted", **thinking}
    if thinking.get("type") in ("between_tools", "enabled"):
        return thinking
    return None


def _unpaired_tool_use(messages: list[dict[str, Any]]) -> str | None:
    """The API's rule for tool use (tool-use docs): each tool_use has its tool_result in the
    next message, the results first in that message's content; a result answers a call of the
    message before it."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        if message.get("role") == "user":
            results = [b.get("tool_use_id") for b in content if b.get("type") == "tool_result"]
            before = messages[i - 1].get("content") if i else None
            calls = {b.get("id") for b in before if b.get("type") == "tool_use"} if isinstance(
                before, list) else set()  # fmt: skip
            if results and not set(results) <= calls:
                return (f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                        "blocks. Each `tool_result` block must have a corresponding `tool_use` "
                        "block in the previous message.")  # fmt: skip
            leading = 0
            while leading < len(content) and content[leading].get("type") == "tool_result":
                leading += 1
            if leading != len(results):
                return (f"messages.{i}.content: `tool_result` blocks must come first in the "
                        "content of a user message.")  # fmt: skip
            continue
        ids = [b.get("id") for b in content if b.get("type") == "tool_use"]
        if not ids:
            continue
        after = messages[i + 1].get("content") if i + 1 < len(messages) else None
        answered = {b.get("tool_use_id") for b in after if b.get("type") == "tool_result"} if (
            isinstance(after, list)) else set()  # fmt: skip
        missing = [x for x in ids if x not in answered]
        if missing:
            return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message.")  # fmt: skip
    return None


def _violation(body: dict[str, Any], headers: dict[str, str]) -> str | None:
    """The 400 message the current models answer this request with, or None."""
    model = str(body.get("model", ""))
    rules = rules_for(model)
    legacy = bool(rules.get("legacy"))
    if not legacy:
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                return f"`{name}` is deprecated for this model."
        messages = body.get("messages") or []
        if messages and messages[-1].get("role") == "assistant":
            return ("This model does not support assistant message prefill. The conversation "
                    "must end with a user message.")  # fmt: skip
    pairing = _unpaired_tool_use(body.get("messages") or [])
    if pairing:
        return pairing
    choice = (body.get("tool_choice") or {}).get("type")
    if choice in ("tool", "any") and not rules["forced_tools"]:
        return 'tool_choice: type "tool" and "any" are not supported for this model.'
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if thinking is not None and kind not in rules["thinking"]:
        if kind == "disabled":
            return ('"thinking.type.disabled" is not supported for this model. Use '
                    '"thinking.type.between_tools" for the lowest thinking setting, or '
                    '"thinking.type.adaptive" and "output_config.effort" to control thinking '
                    "behavior.")  # fmt: skip
        return (f'"thinking.type.{kind}" is not supported for this model. Use '
                '"thinking.type.adaptive" and "output_config.effort" to control thinking '
                "behavior.")  # fmt: skip
    if kind == "between_tools" and set(thinking) != {"type"}:
        return "thinking.between_tools: no other field may be sent with this type."
    if kind == "adaptive":
        display = thinking.get("display", "omitted")
        if display not in ("omitted", "summarized", "updates"):
            return f"thinking.display: unknown value {display!r}"
        if display == "updates" and DISPLAY_UPDATES_BETA not in headers.get("anthropic-beta", ""):
            return "thinking.display: unknown value 'updates'"
    config = body.get("output_config") or {}
    effort = config.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            return f"output_config.effort: unknown value {effort!r}"
        if legacy:
            return "output_config.effort: not supported on this model."
        if kind == "between_tools" and effort in ("xhigh", "max"):
            return (f"output_config.effort '{effort}' is not supported when thinking is "
                    "disabled on this model. Use effort 'high' or below, or enable thinking.")  # fmt: skip
    if config.get("format") is not None:
        problem = _schema_problem(config["format"])
        if problem:
            return f"output_config.format: {problem}"
    return None


def _schema_problem(fmt: dict[str, Any]) -> str | None:
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        return 'type must be "json_schema" with a schema'
    unsupported = {"minimum", "maximum", "multipleOf", "minLength", "maxLength"}

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, dict):
            if node.get("type") == "object" and node.get("additionalProperties") is not False:
                return f"{path}: objects must set additionalProperties to false"
            for key in unsupported & set(node):
                return f"{path}: '{key}' is not supported"
            for key, value in node.items():
                if (problem := walk(value, f"{path}.{key}")) is not None:
                    return problem
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if (problem := walk(value, f"{path}[{index}]")) is not None:
                    return problem
        return None

    return walk(fmt["schema"], "schema")


def _canonical(value: Any) -> str:
    return json.dumps(_strip_cache(value), sort_keys=True, separators=(",", ":"))


def prefix_digest(body: dict[str, Any], upto: int) -> str:
    """What a thinking block is bound to: the system prompt, the tools and the messages before
    it (cache_control aside)."""
    return _Prefixes(body)(upto)


class _Prefixes:
    """`prefix_digest(body, i)` for every `i` of one request, each message hashed once: a
    request is checked before each of its thinking blocks, and hashing from the start for each
    made a long conversation's request cost the fake time quadratic in its length (which a
    benchmark at latency 0 then measured as the server's turns waiting longer)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._messages = body.get("messages") or []
        self._digest = hashlib.sha256()
        self._digest.update(system_text(body).encode())
        self._digest.update(_canonical(body.get("tools") or []).encode())
        self._known = [self._digest.hexdigest()]  # [i]: the digest of the first i messages

    def __call__(self, upto: int) -> str:
        while len(self._known) <= upto:
            self._digest.update(_canonical(self._messages[len(self._known) - 1]).encode())
            self._known.append(self._digest.hexdigest())
        return self._known[upto]


def _sign(model: str, prefix: str, text: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(
        {"m": family_of(model), "p": prefix, "t": hashlib.sha256(text.encode()).hexdigest()}
    ).encode()).decode()  # fmt: skip
    mac = hmac.new(_SIGNING_KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{payload}.{mac}"


def _signed(signature: str) -> dict[str, str] | None:
    payload, _, mac = str(signature).partition(".")
    expected = hmac.new(_SIGNING_KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]
    if not mac or not hmac.compare_digest(mac, expected):
        return None
    try:
        return dict(json.loads(base64.urlsafe_b64decode(payload.encode())))
    except ValueError:
        return None


def _thinking_text(block: dict[str, Any]) -> str:
    return str(block.get("thinking", "")) if block["type"] == "thinking" else str(block["data"])


def _check_thinking(
    body: dict[str, Any], issued: dict[str, tuple[str, str, list[str]]], dropped: list[str]
) -> tuple[dict[str, Any], str | None]:
    """(the request as the model sees it, a 400 message or None). Each replayed thinking block
    must carry a signature this fake issued, for the same text; blocks of a model the target
    cannot read are dropped; a block whose prefix changed is rejected; a tool loop must carry
    the blocks written with its tool calls."""
    target = family_of(body.get("model", ""))
    reads = {target, *rules_for(target)["reads"]}
    messages = body.get("messages") or []
    prefixes = _Prefixes(body)
    kept_messages = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or not isinstance(message.get("content"), list):
            kept_messages.append(message)
            continue
        kept = []
        for j, block in enumerate(message["content"]):
            if block.get("type") not in ("thinking", "redacted_thinking"):
                kept.append(block)
                continue
            where = f"messages.{i}.content.{j}"
            claim = _signed(block.get("signature", "") if block["type"] == "thinking"
                            else block.get("data", "").rpartition("|")[2])  # fmt: skip
            if claim is None:
                return body, f"{where}: Invalid `signature` in `thinking` block"
            text = _thinking_text(block)
            if block["type"] == "redacted_thinking":
                text = text.rpartition("|")[0]
            # Text placed in an omitted block's empty field is ignored, as the API does.
            omitted = claim["t"] == hashlib.sha256(b"").hexdigest()
            if not omitted and hashlib.sha256(text.encode()).hexdigest() != claim["t"]:
                return body, (
                    "`thinking` or `redacted_thinking` blocks in the latest assistant message "
                    "cannot be modified"
                )
            if claim["m"] not in reads:
                dropped.append(where)
                continue
            if claim["p"] != prefixes(i):
                return body, (
                    f"{where}: Invalid `signature` in `thinking` block. The block is bound to a "
                    "different conversation. Remove the block, or set "
                    '`thinking.block_binding.prefix_mismatch_behavior` to "drop_block".'
                )
            kept.append(block)
        kept_messages.append({**message, "content": kept})
    # The latest assistant message of a tool loop carries the thinking written with its calls.
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.get("role") != "assistant" or not isinstance(message.get("content"), list):
            continue
        sent = {b.get("signature") for b in message["content"] if b.get("type") == "thinking"}
        for block in message["content"]:
            if block.get("type") != "tool_use" or block.get("id") not in issued:
                continue
            model, prefix, signatures = issued[block["id"]]
            if model in reads and prefix == prefixes(i) and not set(signatures) <= sent:
                return body, (
                    f"messages.{i}: the `thinking` blocks written with this tool use must be "
                    "passed back unchanged in a tool-use loop"
                )
        break
    return {**body, "messages": kept_messages}, None


def _with_thinking(
    body: dict[str, Any], scripted: Reply, headers: dict[str, str]
) -> list[dict[str, Any]]:
    """The scripted content as the model would return it under the request's thinking
    settings, with signed thinking blocks."""
    thinking = _thinking_on(body)
    if thinking is None:
        return scripted.content
    model = body.get("model", "")
    prefix = prefix_digest(body, len(body.get("messages") or []))
    kind, display = thinking.get("type"), thinking.get("display", "omitted")
    sonnet55 = family_of(model) == "claude-sonnet-5-5"

    def block(text: str, readable: bool) -> dict[str, Any]:
        return {"type": "thinking", "thinking": text if readable else "",
                "signature": _sign(model, prefix, text if readable else "")}  # fmt: skip

    out: list[dict[str, Any]] = []
    if kind != "between_tools" and scripted.reasoning:  # up-front thinking
        out.append(block(scripted.reasoning, display == "summarized" or kind == "enabled"))
    content = scripted.content
    for index, item in enumerate(content):
        before_tool = index + 1 < len(content) and content[index + 1].get("type") == "tool_use"
        if sonnet55 and item.get("type") == "text" and before_tool:
            # Notes between tool calls come back as progress-update thinking blocks.
            readable = kind == "between_tools" or display in ("updates", "summarized")
            out.append(block(item["text"], readable))
        else:
            out.append(item)
    return out


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: with many clients connecting at once the
    # kernel drops SYNs and each retry waits a second, which a load test would blame on us.
    request_queue_size = 1024


class FakeAnthropic:
    """Start with `FakeAnthropic().start()`; point the SDK at `.url`."""

    def __init__(self) -> None:
        self._queue: deque[Scripted] = deque()
        self._lock = threading.RLock()  # batch results compute usage under the lock
        self.requests: list[Recorded] = []
        self.default: Callable[[dict[str, Any]], Scripted] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._cached: dict[str, float] = {}  # prompt-cache prefix -> expiry on the fake's clock
        self._clock = 0.0  # seconds added to the real clock (`advance`)
        # Thinking blocks signed with tool calls: tool_use id -> (family, prefix, signatures).
        self.issued: dict[str, tuple[str, str, list[str]]] = {}
        self.dropped_thinking: list[str] = []  # blocks dropped as unreadable by the target
        self.rejected: list[str] = []  # 400s for broken request rules, in order
        self.usages: list[dict[str, int]] = []  # usage of every reply sent, in order
        # Message Batches: outcome per request ("expired", "canceled", an ErrorReply or a Reply).
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_result: Callable[[str, dict[str, Any]], Scripted | str] | None = None
        self.batch_polls = 1  # retrieves that still answer "in_progress"
        # Every Batches request answers this error while it is set (e.g. a 401).
        self.batch_error: ErrorReply | None = None

    # -- scripting ------------------------------------------------------------------------
    def enqueue(self, *replies: Scripted) -> FakeAnthropic:
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = None
            self._cached.clear()
            self._clock = 0.0
            self.issued.clear()
            self.dropped_thinking.clear()
            self.rejected.clear()
            self.usages.clear()
            self.batches.clear()
            self.batch_result = None
            self.batch_polls = 1
            self.batch_error = None

    def now(self) -> float:
        return time.monotonic() + self._clock

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (prompt-cache entries expire by it)."""
        with self._lock:
            self._clock += seconds

    def usage_for(self, body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
        """Usage as the real API reports it, prompt caching included: the longest live cache
        breakpoint prefix is read from the cache (a hit may sit up to 20 blocks before each
        breakpoint) and refreshed; each breakpoint's prefix beyond that is written with its
        breakpoint's lifetime. Prefixes shorter than the model's minimum are not cached.
        Tokens are counted as characters / 4."""
        total, boundaries = _prompt_layout(body)
        minimum = rules_for(body.get("model", ""))["min_cache"]
        marked = [i for i, b in enumerate(boundaries) if b[2] is not None and b[1] >= minimum]
        read = 0
        written = {"5m": 0, "1h": 0}
        with self._lock:
            now = self.now()
            # Each breakpoint looks for a hit up to 20 blocks back; the longest hit is read.
            for mark in reversed(marked):
                for digest, tokens, _ttl in reversed(boundaries[max(0, mark - 20) : mark + 1]):
                    if tokens > read and self._cached.get(digest, -1.0) > now:
                        read = tokens
                        self._cached[digest] = max(self._cached[digest], now + 300.0)
                        break
            done = read
            for i in marked:
                digest, tokens, ttl = boundaries[i]
                assert ttl is not None
                if tokens > done:
                    written[ttl] += tokens - done
                    done = tokens
                lifetime = 3600.0 if ttl == "1h" else 300.0
                self._cached[digest] = max(self._cached.get(digest, 0.0), now + lifetime)
        created = written["5m"] + written["1h"]
        return {
            "input_tokens": max(1, total - read - created),
            "output_tokens": max(1, len(json.dumps(output)) // 4),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written["5m"],
                "ephemeral_1h_input_tokens": written["1h"],
            },
        }

    def check(self, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        """The 400 message for a request that breaks the target model's rules, or None."""
        problem = _violation(body, headers)
        if problem is None:
            _, problem = _check_thinking(body, self.issued, self.dropped_thinking)
        if problem is not None:
            with self._lock:
                self.rejected.append(problem)
        return problem

    def respond(
        self, body: dict[str, Any], scripted: Reply, headers: dict[str, str]
    ) -> dict[str, Any]:
        """The message for a scripted reply under the request's thinking settings."""
        content = _with_thinking(body, scripted, headers)
        signatures = [b["signature"] for b in content if b.get("type") == "thinking"]
        if signatures:
            prefix = prefix_digest(body, len(body.get("messages") or []))
            model = family_of(body.get("model", ""))
            with self._lock:
                for b in content:
                    if b.get("type") == "tool_use":
                        self.issued[b["id"]] = (model, prefix, signatures)
        shaped = Reply(content, scripted.stop_reason, scripted.delay, scripted.usage,
                       scripted.stop_details, scripted.reasoning)  # fmt: skip
        return _message(body, shaped, self.usage_for(body, content))

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path.endswith("/messages")]

    # -- Message Batches --------------------------------------------------------------------
    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        ended = batch["status"] == "ended"
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            for line in batch["results"]:
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch["requests"])
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": batch["status"],
            "request_counts": counts,
            "created_at": "2026-11-25T10:00:00Z",
            "expires_at": "2026-11-26T10:00:00Z",
            "ended_at": "2026-11-25T10:05:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": batch.get("cancel_at"),
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _finish_batch(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        lines = []
        for request in batch["requests"]:
            custom_id, params = request["custom_id"], request["params"]
            outcome: Scripted | str
            if batch.get("cancel_at"):
                outcome = "canceled"
            elif (problem := _violation(params, {})) is not None:  # as the Messages API would
                outcome = ErrorReply(400, "invalid_request_error", problem)
            elif self.batch_result is not None:
                outcome = self.batch_result(custom_id, params)
            else:
                outcome = text("ok")
            if isinstance(outcome, str):
                result: dict[str, Any] = {"type": outcome}
            elif isinstance(outcome, ErrorReply):
                result = {"type": "errored", "error": _error_body(outcome.type, outcome.message)}
            else:
                message = _message(params, outcome, self.usage_for(params, outcome.content))
                result = {"type": "succeeded", "message": message}
            lines.append({"custom_id": custom_id, "result": result})
        batch["results"], batch["status"] = lines, "ended"

    def _batches(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.removeprefix("/v1/messages/batches").strip("/").split("/")
        with self._lock:
            if self.batch_error is not None:
                failure = self.batch_error
                return failure.status, _error_body(failure.type, failure.message)
            if method == "POST" and parts == [""]:
                batch_id = f"msgbatch_fake{next(_ids):05d}"
                self.batches[batch_id] = {"requests": body["requests"], "status": "in_progress",
                                          "polls": 0}  # fmt: skip
                return 200, self._batch_object(batch_id)
            batch_id = parts[0]
            if batch_id not in self.batches:
                return 404, _error_body("not_found_error", f"no batch {batch_id}")
            batch = self.batches[batch_id]
            if method == "POST" and parts[1:] == ["cancel"]:
                batch["cancel_at"] = "2026-11-25T10:01:00Z"
                batch["status"] = "canceling"
                return 200, self._batch_object(batch_id)
            if parts[1:] == ["results"]:
                if batch["status"] != "ended":
                    return 400, _error_body("invalid_request_error", "batch has not ended")
                return 200, "\n".join(json.dumps(line) for line in batch["results"]) + "\n"
            batch["polls"] += 1
            if batch["status"] != "ended" and batch["polls"] > self.batch_polls:
                self._finish_batch(batch_id)
            return 200, self._batch_object(batch_id)

    def _next(self, body: dict[str, Any]) -> Scripted:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return self.default(body)
        return ErrorReply(500, "api_error", "fake: no scripted reply left for this request")

    # -- serving --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's
            # algorithm holds the body until the client's delayed ACK (~40 ms a response).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self, path: str, body: dict[str, Any]) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(Recorded(path, headers, body, time.monotonic()))

            def do_POST(self) -> None:
                received = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                self._record(path, body)
                if path.startswith("/v1/messages/batches"):
                    self._send_batch(*fake._batches("POST", path, body))
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if path in ("/v1/messages", "/v1/messages/count_tokens"):
                    if (gone := retired(str(body.get("model", "")))) is not None:
                        self._send_json(404, _error_body("not_found_error", gone))
                        return
                    problem = fake.check(body, headers)
                    if problem is not None:
                        self._send_json(400, _error_body("invalid_request_error", problem))
                        return
                if path == "/v1/messages/count_tokens":
                    self._send_json(200, {"input_tokens": _prompt_layout(body)[0]})
                    return
                if path != "/v1/messages":
                    self._send_json(404, _error_body("not_found_error", f"no route {path}"))
                    return
                scripted = fake._next(body)
                if isinstance(scripted, ErrorReply):
                    self._send_json(
                        scripted.status,
                        _error_body(scripted.type, scripted.message),
                        scripted.headers,
                    )
                    return
                message = fake.respond(body, scripted, headers)
                if scripted.delay:  # the reply leaves `delay` after the request arrived,
                    # however long this fake took to parse it and simulate the prompt cache
                    time.sleep(max(0.0, received + scripted.delay - time.monotonic()))
                with fake._lock:
                    fake.usages.append(message["usage"])
                if body.get("stream"):
                    self._send_sse(message)
                else:
                    self._send_json(200, message)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                self._record(path, {})
                if path.startswith("/v1/messages/batches"):
                    self._send_batch(*fake._batches("GET", path, {}))
                else:
                    self._send_json(404, _error_body("not_found_error", f"no route {path}"))

            def _send_batch(self, status: int, payload: Any) -> None:
                if isinstance(payload, str):  # JSON Lines results
                    data = payload.encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/binary")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._send_json(status, payload)

            def _send_json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_fake{next(_ids):05d}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _send_sse(self, message: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("request-id", f"req_fake{next(_ids):05d}")
                self.send_header("connection", "close")
                self.end_headers()
                for event, data in _sse_events(message):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_fake{next(_ids):05d}",
    }


def _strip_cache(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache(v) for v in value]
    return value


def _ttl(block: Any) -> str | None:
    """The cache lifetime a block's breakpoint asks for, or None when it is not one."""
    if not isinstance(block, dict) or "cache_control" not in block:
        return None
    return str(block["cache_control"].get("ttl", "5m"))


def _prompt_layout(body: dict[str, Any]) -> tuple[int, list[tuple[str, int, str | None]]]:
    """(prompt tokens, [(prefix hash, prefix tokens, breakpoint ttl or None) after each block]),
    in the API's prefix order: tools, then system, then messages."""
    parts: list[tuple[Any, str | None]] = []
    for t in body.get("tools") or []:
        parts.append((t, _ttl(t)))
    system = body.get("system")
    if isinstance(system, str):
        parts.append((system, None))
    for block in system or [] if not isinstance(system, str) else []:
        parts.append((block, _ttl(block)))
    for message in body.get("messages") or []:
        content = message["content"]
        ttls = [_ttl(b) for b in content] if isinstance(content, list) else []
        parts.append((message, next((t for t in ttls if t), None)))
    digest = hashlib.sha256(str(family_of(body.get("model", ""))).encode())
    chars = 0
    boundaries = []
    for part, ttl in parts:
        text = json.dumps(_strip_cache(part), sort_keys=True)
        digest.update(text.encode())
        chars += len(text)
        boundaries.append((digest.hexdigest(), chars // 4, ttl))
    return max(1, chars // 4), boundaries


def _message(body: dict[str, Any], scripted: Reply, usage: dict[str, int]) -> dict[str, Any]:
    usage = scripted.usage or usage
    return {
        "id": f"msg_fake{next(_ids):05d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": scripted.content,
        "stop_reason": scripted.stop_reason,
        "stop_sequence": None,
        "stop_details": scripted.stop_details if scripted.stop_reason == "refusal" else None,
        "usage": usage,
    }


def _chunks(value: str, size: int = 8) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _sse_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "stop_details": None}  # fmt: skip
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            events += [
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                for piece in _chunks(block["text"])
            ]
        elif block["type"] == "thinking":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            events += [
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    },
                )
                for piece in _chunks(block["thinking"])
            ]
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    },
                )
            )
        elif block["type"] == "redacted_thinking":
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
        elif block["type"] == "tool_use":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                )
            )
            events += [
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
                for piece in _chunks(json.dumps(block["input"]), 12)
            ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": None,
                    "stop_details": message.get("stop_details"),
                },
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def system_text(body: dict[str, Any]) -> str:
    """The system prompt of a recorded request, whether sent as a string or as blocks."""
    system = body.get("system") or ""
    if isinstance(system, str):
        return system
    return "".join(b.get("text", "") for b in system)
