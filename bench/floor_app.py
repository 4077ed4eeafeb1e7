"""The least a server can do per turn: a reference for bench/load.py (`--floor`).

The same HTTP surface as supportbot for the two requests the load generator sends, served the
same way (uvicorn, httptools, uvloop), and each message forwarded to the Messages API through
the SDK's async client over aiohttp, as supportbot does. Nothing else: no API keys, no rate
limits, no database, no history, no tools. What it reaches is what the benchmark allows on
the machine it runs on.

    ANTHROPIC_BASE_URL=http://127.0.0.1:8123 uvicorn bench.floor_app:app --workers 2
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import anthropic
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
_client: anthropic.AsyncAnthropic | None = None
SYSTEM = "You are the customer-support assistant of a shop. " * 40  # about our prompt's size


class Message(BaseModel):
    text: str


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/conversations", status_code=201)
async def create() -> dict[str, str]:
    return {"id": str(uuid.uuid4())}


@app.post("/v1/conversations/{conversation_id}/messages")
async def message(conversation_id: str, body: Message) -> dict[str, Any]:
    global _client
    if _client is None:
        _client = anthropic.AsyncAnthropic(
            base_url=os.environ["ANTHROPIC_BASE_URL"],
            api_key="not-needed",
            http_client=anthropic.DefaultAioHttpClient(),
        )
    reply = await _client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        system=SYSTEM,
        messages=[{"role": "user", "content": body.text}],
    )
    text = "".join(b.text for b in reply.content if b.type == "text")
    return {"conversation_id": conversation_id, "reply": text, "usage": reply.usage.model_dump()}
