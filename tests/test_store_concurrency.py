"""Many turns writing at once: SQLite must queue them, never fail with 'database is locked'."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlmodel import Session

from agent.store.conversations import (
    append_message,
    create_conversation,
    load_messages,
    lock_conversation,
)
from agent.store.db import make_engine, transaction


def test_concurrent_turns_on_sqlite_all_land(tmp_path: Path) -> None:
    """Each turn reads its conversation and then writes. In WAL mode a transaction that began
    as a reader cannot become a writer once another commit has landed (SQLITE_BUSY at once,
    whatever the busy timeout), so write transactions must take the write lock up front."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}", pool_size=16)
    with transaction(engine) as session:
        ids = [create_conversation(session=session, channel="api").id for _ in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(ids))

    def turns(conversation_id: str) -> None:
        start.wait()
        try:
            for i in range(25):
                with transaction(engine) as session:
                    lock_conversation(session=session, conversation_id=conversation_id)
                    load_messages(session=session, conversation_id=conversation_id)
                    append_message(
                        session=session,
                        conversation_id=conversation_id,
                        role="user",
                        content=[{"type": "text", "text": f"message {i}"}],
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=turns, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        for cid in ids:
            rows = load_messages(session=session, conversation_id=cid)
            assert [r.sequence for r in rows] == list(range(1, 26))
