"""Many turns writing at once, from several threads and processes (uvicorn workers): every
message lands, numbered without gaps or clashes, and no writer fails with 'database is
locked'."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlmodel import Session

from agent.store.conversations import (
    append_message,
    create_conversation,
    load_messages,
    lock_conversation,
)
from agent.store.db import make_engine, transaction

THREADS, TURNS = 6, 15


def _writer_process(url: str, conversation_ids: list[str], tag: str) -> None:
    """THREADS threads, each appending TURNS messages round-robin over the conversations."""
    engine = make_engine(url, pool_size=THREADS)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def turns(thread: int) -> None:
        start.wait()
        try:
            for i in range(TURNS):
                cid = conversation_ids[(thread + i) % len(conversation_ids)]
                with transaction(engine) as session:
                    lock_conversation(session=session, conversation_id=cid)
                    load_messages(session=session, conversation_id=cid)
                    append_message(
                        session=session,
                        conversation_id=cid,
                        role="user",
                        content=[{"type": "text", "text": f"{tag}-{thread}-{i}"}],
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=turns, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.slow
def test_concurrent_writers_in_two_processes_never_clash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    with transaction(engine) as session:
        ids = [create_conversation(session=session, channel="api").id for _ in range(3)]
    spawn = multiprocessing.get_context("spawn")
    other = spawn.Process(target=_writer_process, args=(url, ids, "b"))
    other.start()
    _writer_process(url, ids, "a")
    other.join(timeout=120)
    assert other.exitcode == 0
    with Session(engine) as session:
        rows = [r for cid in ids for r in load_messages(session=session, conversation_id=cid)]
        for cid in ids:
            sequences = [r.sequence for r in rows if r.conversation_id == cid]
            assert sequences == list(range(1, len(sequences) + 1))
    texts = {r.content[0]["text"] for r in rows}
    assert len(rows) == len(texts) == 2 * THREADS * TURNS  # every message, once
