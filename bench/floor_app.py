"""The least a server can do per turn: a reference for bench/load.py (`--floor`).

The same HTTP surface as supportbot for the two requests the load generator sends, served the
same way (uvicorn, httptools, uvloop), and each message forwarded to the Messages API through
the SDK's async client over aiohttp, as supportbot does. Nothing else: no API keys, no rate
limits, no history, no tools. What it reaches is what the benchmark allows on the machine it
runs on.

With `FLOOR_DATABASE_URL` set (`bench/load.py --durable-floor`) it is the least a *durable*
chat server does: each turn stores the customer's message (and reads the conversation's
history back, which it sends) in one write transaction and the answer in another, each in a
worker thread, through SQLAlchemy Core on the same driver, pool and SQLite pragmas as
supportbot, with SQLite's writes taking turns as supportbot's do (a lock in the process, then
an `flock` between processes). Still no keys, limits, leases or tools: what durable turns
cost on this machine, whatever else a server does.

    ANTHROPIC_BASE_URL=http://127.0.0.1:8123 uvicorn bench.floor_app:app --workers 2
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import anthropic
import anyio.to_thread
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
    update,
)

app = FastAPI()
_client: anthropic.AsyncAnthropic | None = None
SYSTEM = "You are the customer-support assistant of a shop. " * 40  # about our prompt's size

_tables = MetaData()
_conversations = Table(
    "floor_conversations", _tables,
    Column("id", String, primary_key=True),
    Column("last_sequence", Integer, nullable=False, default=0),
)  # fmt: skip
_messages = Table(
    "floor_messages", _tables,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String, ForeignKey("floor_conversations.id"), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("role", String, nullable=False),
    Column("content", JSON, nullable=False),
)  # fmt: skip


def make_engine(url: str) -> Engine:
    """The engine as supportbot's agent.store.db makes it: a pool of 20 + 20; on SQLite WAL,
    synchronous=NORMAL and write transactions that begin IMMEDIATE."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=20, max_overflow=20)
    engine = create_engine(url, pool_size=20, max_overflow=20,
                           connect_args={"check_same_thread": False, "timeout": 30})  # fmt: skip

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def prepare(url: str) -> None:
    """The floor's tables, made once before its servers start."""
    engine = make_engine(url)
    _tables.create_all(engine)
    engine.dispose()


_URL = os.environ.get("FLOOR_DATABASE_URL")
_engine = make_engine(_URL) if _URL else None
_threads = threading.Lock()
_lock_file: Any = None


@contextmanager
def _sqlite_writer() -> Iterator[None]:
    """One writer at a time on SQLite, as agent.store.db's: a lock among this process's
    threads, then an flock on a file beside the database among processes."""
    global _lock_file
    with _threads:
        if _lock_file is None:
            assert _URL is not None
            path = Path(_URL.split("///", 1)[-1] + ".writer")
            _lock_file = path.open("a")  # open for the process's life
        fcntl.flock(_lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(_lock_file, fcntl.LOCK_UN)


def _writer() -> Any:
    return _sqlite_writer() if _URL and _URL.startswith("sqlite") else nullcontext()


def _create(conversation_id: str) -> None:
    assert _engine is not None
    with _writer(), _engine.begin() as connection:
        connection.execute(insert(_conversations).values(id=conversation_id, last_sequence=0))


def _store(conversation_id: str, role: str, text: str, history: bool) -> list[dict[str, Any]]:
    """One message stored, numbered after the conversation's last; with `history`, the
    conversation's messages read back in the same transaction."""
    assert _engine is not None
    c = _conversations.c
    with _writer(), _engine.begin() as connection:
        sequence = connection.execute(
            update(_conversations).where(c.id == conversation_id)
            .values(last_sequence=c.last_sequence + 1).returning(c.last_sequence)
        ).scalar_one()  # fmt: skip
        row = {"conversation_id": conversation_id, "sequence": sequence, "role": role}
        connection.execute(insert(_messages).values(**row, content=text))
        if not history:
            return []
        m = _messages.c
        rows = connection.execute(select(m.role, m.content).where(
            m.conversation_id == conversation_id).order_by(m.sequence))  # fmt: skip
        return [{"role": role, "content": content} for role, content in rows]


class Message(BaseModel):
    text: str


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/conversations", status_code=201)
async def create() -> dict[str, str]:
    conversation_id = str(uuid.uuid4())
    if _engine is not None:
        await anyio.to_thread.run_sync(_create, conversation_id)
    return {"id": conversation_id}


@app.post("/v1/conversations/{conversation_id}/messages")
async def message(conversation_id: str, body: Message) -> dict[str, Any]:
    global _client
    if _client is None:
        _client = anthropic.AsyncAnthropic(
            base_url=os.environ["ANTHROPIC_BASE_URL"],
            api_key="not-needed",
            http_client=anthropic.DefaultAioHttpClient(),
        )
    messages: list[dict[str, Any]] = [{"role": "user", "content": body.text}]
    if _engine is not None:
        messages = await anyio.to_thread.run_sync(_store, conversation_id, "user", body.text, True)
    reply = await _client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        system=SYSTEM,
        messages=messages,  # type: ignore[arg-type]
    )
    text = "".join(b.text for b in reply.content if b.type == "text")
    if _engine is not None:
        await anyio.to_thread.run_sync(_store, conversation_id, "assistant", text, False)
    return {"conversation_id": conversation_id, "reply": text, "usage": reply.usage.model_dump()}
