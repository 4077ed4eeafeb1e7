"""A lean Messages API for load tests: canned replies a fixed delay after each request
arrives, served by aiohttp on uvloop in a process of its own.

tests/fake_anthropic.py is the fake the test suite uses (scripted replies, errors, streaming,
prompt-cache simulation, batches); it parses every request in threads and costs the load
generator more CPU than the server it measures. This one does only what bench/load.py needs:
a valid non-streaming message, or, when `--tool` is set and the last message does not yet
carry its result, a tool call: `search_knowledge_base` for a message that starts with "help:"
(a help-centre question), `list_orders` otherwise.

    python bench/fake_load.py --port 8123 --delay-ms 500 [--tool]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from typing import Any

import uvloop
from aiohttp import web

USAGE = {"input_tokens": 1200, "output_tokens": 12, "cache_creation_input_tokens": 0,
         "cache_read_input_tokens": 0}  # fmt: skip
ANSWER = [{"type": "text", "text": "Here is what I found about your orders."}]


def _message(number: int, model: str, content: list[dict[str, Any]], stop: str) -> bytes:
    return json.dumps({
        "id": f"msg_load{number:08d}", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": USAGE,
    }).encode()  # fmt: skip


def app(delay: float, tool: bool) -> web.Application:
    ids = itertools.count(1)
    loop = asyncio.get_running_loop()

    async def messages(request: web.Request) -> web.Response:
        received = loop.time()
        body = json.loads(await request.read())
        number = next(ids)
        content, stop = ANSWER, "end_turn"
        last = body["messages"][-1]["content"]
        if tool and not any(b.get("type") == "tool_result" for b in last):
            said = next((b.get("text", "") for b in last if b.get("type") == "text"), "")
            call = ("search_knowledge_base", {"query": said[5:].strip()}) if said.startswith(
                "help:") else ("list_orders", {"limit": 3})  # fmt: skip
            content = [{"type": "tool_use", "id": f"toolu_load{number:08d}", "name": call[0],
                        "input": call[1]}]  # fmt: skip
            stop = "tool_use"
        await asyncio.sleep(max(0.0, received + delay - loop.time()))
        return web.Response(
            body=_message(number, body["model"], content, stop),
            content_type="application/json",
            headers={"request-id": f"req_load{number:08d}"},
        )

    application = web.Application()
    application.router.add_post("/v1/messages", messages)
    return application


async def serve(port: int, delay: float, tool: bool) -> None:
    runner = web.AppRunner(app(delay, tool), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=500)
    parser.add_argument("--tool", action="store_true")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.delay_ms / 1000, args.tool))


if __name__ == "__main__":
    main()
