"""A scripted fake of Anthropic's Messages API, served on 127.0.0.1 for the real SDK.

Tests enqueue the replies they need, in order; every request is recorded with its headers,
body and arrival time. Both JSON and server-sent-event responses are produced the way the real
API shapes them, and errors carry the real API's body and headers (`request-id`,
`retry-after`), so the SDK's own parsing, retries and stream accumulation are what is tested.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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


def refusal() -> Reply:
    return Reply([], "refusal")


def error(status: int, message: str = "", *, retry_after: float | None = None) -> ErrorReply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return ErrorReply(
        status, ERROR_TYPES.get(status, "api_error"), message or "fake error", headers
    )


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
        self._cached: set[str] = set()  # prompt-cache prefixes written so far
        self.usages: list[dict[str, int]] = []  # usage of every reply sent, in order
        # Message Batches: outcome per request ("expired", "canceled", an ErrorReply or a Reply).
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_result: Callable[[str, dict[str, Any]], Scripted | str] | None = None
        self.batch_polls = 1  # retrieves that still answer "in_progress"

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
            self.usages.clear()
            self.batches.clear()
            self.batch_result = None
            self.batch_polls = 1

    def usage_for(self, body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, int]:
        """Usage as the real API reports it, prompt caching included: the longest cache
        breakpoint prefix written before is read from the cache; the last breakpoint's prefix
        is written. Tokens are counted as characters / 4."""
        total, boundaries = _prompt_layout(body)
        marked = [i for i, (_, _, is_breakpoint) in enumerate(boundaries) if is_breakpoint]
        read = created = 0
        with self._lock:
            if marked:
                # Like the API: a hit may sit up to 20 blocks before the last breakpoint.
                last = marked[-1]
                for digest, tokens, _ in reversed(boundaries[max(0, last - 20) : last + 1]):
                    if digest in self._cached:
                        read = tokens
                        break
                created = max(0, boundaries[last][1] - read)
                self._cached.update(boundaries[i][0] for i in marked)
        return {
            "input_tokens": max(1, total - read - created),
            "output_tokens": max(1, len(json.dumps(output)) // 4),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

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
                message = _message(body, scripted, fake.usage_for(body, scripted.content))
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


def _prompt_layout(body: dict[str, Any]) -> tuple[int, list[tuple[str, int, bool]]]:
    """(prompt tokens, [(prefix hash, prefix tokens, is a cache breakpoint) after each block]),
    in the API's prefix order: tools, then system, then messages."""
    import hashlib

    parts: list[tuple[Any, bool]] = []
    for t in body.get("tools") or []:
        parts.append((t, "cache_control" in t))
    system = body.get("system")
    if isinstance(system, str):
        parts.append((system, False))
    for block in system or [] if not isinstance(system, str) else []:
        parts.append((block, "cache_control" in block))
    for message in body.get("messages") or []:
        content = message["content"]
        marked = isinstance(content, list) and any("cache_control" in b for b in content)
        parts.append((message, marked))
    digest = hashlib.sha256(str(body.get("model")).encode())
    chars = 0
    boundaries = []
    for part, marked in parts:
        text = json.dumps(_strip_cache(part), sort_keys=True)
        digest.update(text.encode())
        chars += len(text)
        boundaries.append((digest.hexdigest(), chars // 4, marked))
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
        "usage": usage,
    }


def _chunks(value: str, size: int = 8) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _sse_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
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
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
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
